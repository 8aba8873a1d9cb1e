// SPDX-License-Identifier: Apache-2.0

package offsite

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// BucketOptions says which S3 bucket an offsite copy goes to and how to
// reach it.
type BucketOptions struct {
	// Endpoint is the S3 endpoint's URL (https://s3.eu-central-1.amazonaws.com,
	// https://rgw.example.net); empty means AWS S3 of Region.
	Endpoint string
	Bucket   string
	Region   string // default us-east-1
	// Prefix is where this archive's objects go in the bucket
	// ("site-a/"): several sites may share a bucket.
	Prefix string
	// AccessKeyID, SecretAccessKey and SessionToken are the credentials.
	AccessKeyID, SecretAccessKey, SessionToken string
	// InsecureHTTP permits an http:// endpoint on a loopback address, for
	// tests only.
	InsecureHTTP bool
	// Timeout bounds each request but a transfer (default 1 minute).
	Timeout time.Duration
}

// Bucket is an S3 bucket with Object Lock, below a prefix. It speaks S3
// through the AWS SDK (signing, checksums, retries), never by hand. Keys
// given to its methods are relative to the prefix.
type Bucket struct {
	c       *s3.Client
	name    string
	prefix  string
	timeout time.Duration
}

// ObjectVersion is one version of an object in a [Bucket].
type ObjectVersion struct {
	Key       string // relative to the bucket's prefix
	VersionID string
	Size      int64
	Latest    bool
	// SHA256 (hex), Mode and RetainUntil are known after [Bucket.Head]
	// (and [Bucket.Put]), not from [Bucket.List].
	SHA256      string
	Mode        string // "COMPLIANCE", "GOVERNANCE" or "" (not locked)
	RetainUntil time.Time
}

// Errors of the bucket.
var (
	// ErrNoObjectLock reports a bucket without Object Lock (or versioning).
	ErrNoObjectLock = errors.New("offsite: the bucket has no Object Lock")
	// ErrLockedObject reports a version that its lock keeps from being
	// deleted or its retention from being shortened.
	ErrLockedObject = errors.New("offsite: the object version is locked")
	// ErrNotFound reports a missing bucket, object or version.
	ErrNotFound = errors.New("offsite: no such object")
)

// OpenBucket connects to the bucket and checks that it exists, is
// versioned and has Object Lock enabled: a copy that can be deleted is no
// WORM copy, so a bucket without it is refused with the command that
// creates one.
func OpenBucket(ctx context.Context, o BucketOptions) (*Bucket, error) {
	if o.Bucket == "" {
		return nil, fmt.Errorf("offsite: no bucket given")
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if o.AccessKeyID == "" || o.SecretAccessKey == "" {
		return nil, fmt.Errorf("offsite: no credentials: give offsite.credentials_file, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
	}
	so := s3.Options{
		Region:       o.Region,
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: o.AccessKeyID, SecretAccessKey: o.SecretAccessKey, SessionToken: o.SessionToken, Source: "sealmail"}, nil
		}),
		// Keep-alive connections, no proxy from the environment: the unit
		// allows IP traffic to the endpoint only.
		HTTPClient: &http.Client{Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   30 * time.Second,
			ResponseHeaderTimeout: 5 * time.Minute,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		}},
		RetryMaxAttempts: 5,
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("offsite.endpoint %q: want a URL such as https://s3.eu-central-1.amazonaws.com", o.Endpoint)
		}
		if u.Scheme == "http" {
			ip := net.ParseIP(u.Hostname())
			if !o.InsecureHTTP || (u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback())) {
				return nil, fmt.Errorf("offsite.endpoint %q: plain http is refused (credentials and archive in clear on the wire); insecure_http permits it on a loopback address, for tests", o.Endpoint)
			}
		}
		so.BaseEndpoint = aws.String(o.Endpoint)
	}
	prefix := strings.TrimPrefix(o.Prefix, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if prefix != "" && !ValidPath(strings.TrimSuffix(prefix, "/")) {
		return nil, fmt.Errorf("offsite.prefix %q: want a relative path such as site-a/", o.Prefix)
	}
	b := &Bucket{c: s3.New(so), name: o.Bucket, prefix: prefix, timeout: o.Timeout}
	if err := b.checkLock(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// String names the bucket and prefix as s3://BUCKET/PREFIX.
func (b *Bucket) String() string { return "s3://" + b.name + "/" + b.prefix }

// createCommand is how an operator creates a bucket sealmail accepts.
func (b *Bucket) createCommand() string {
	return fmt.Sprintf("aws s3api create-bucket --bucket %s --object-lock-enabled-for-bucket "+
		"(with --create-bucket-configuration LocationConstraint=REGION outside us-east-1; add --endpoint-url URL for another S3 server)", b.name)
}

// checkLock refuses a bucket that is missing, unversioned or without
// Object Lock.
func (b *Bucket) checkLock(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	lc, err := b.c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: &b.name})
	if code := errorCode(err); code == "NoSuchBucket" {
		return fmt.Errorf("offsite: bucket %s does not exist: create it with Object Lock: %s", b.name, b.createCommand())
	} else if code == "ObjectLockConfigurationNotFoundError" {
		return fmt.Errorf("bucket %s: %w: sealmail needs a bucket created with Object Lock (it cannot be added later on every S3 server): %s",
			b.name, ErrNoObjectLock, b.createCommand())
	}
	if err != nil {
		return fmt.Errorf("offsite: bucket %s: %w", b.name, err)
	}
	if lc.ObjectLockConfiguration == nil || lc.ObjectLockConfiguration.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
		return fmt.Errorf("bucket %s: %w: %s", b.name, ErrNoObjectLock, b.createCommand())
	}
	v, err := b.c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &b.name})
	if err != nil {
		return fmt.Errorf("offsite: bucket %s: versioning: %w", b.name, err)
	}
	if v.Status != types.BucketVersioningStatusEnabled {
		return fmt.Errorf("bucket %s: versioning is %q: %w (Object Lock needs versioning enabled)", b.name, v.Status, ErrNoObjectLock)
	}
	return nil
}

// errorCode returns the S3 error code of err ("NoSuchKey"), or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// wrapErr maps S3's answers to this package's errors.
func wrapErr(op, key string, err error) error {
	if err == nil {
		return nil
	}
	switch code := errorCode(err); {
	case code == "NoSuchKey" || code == "NoSuchVersion" || code == "NotFound" || code == "NoSuchBucket":
		return fmt.Errorf("%s %s: %w", op, key, ErrNotFound)
	case code == "AccessDenied" && strings.Contains(strings.ToLower(err.Error()), "object lock"):
		return fmt.Errorf("%s %s: %w (%v)", op, key, ErrLockedObject, err)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// Put uploads r (size bytes, whose SHA-256 is sha256Hex) as a new version
// of key, locked in COMPLIANCE mode until until. The server checks the
// SHA-256 as it receives the bytes (a mismatch fails the upload), and the
// version is read back ([Bucket.Head]): size, SHA-256, lock mode and
// retain-until must be what was asked, or the result is [ErrMismatch].
func (b *Bucket) Put(ctx context.Context, key string, r io.ReadSeeker, size int64, sha256Hex string, until time.Time) (ObjectVersion, error) {
	sum, err := hex.DecodeString(sha256Hex)
	if err != nil || len(sum) != 32 {
		return ObjectVersion{}, fmt.Errorf("put %s: sha256 %q", key, sha256Hex)
	}
	until = lockTime(until)
	out, err := b.c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:                    &b.name,
		Key:                       aws.String(b.prefix + key),
		Body:                      r,
		ContentLength:             aws.Int64(size),
		ChecksumAlgorithm:         types.ChecksumAlgorithmSha256,
		ChecksumSHA256:            aws.String(base64.StdEncoding.EncodeToString(sum)),
		ObjectLockMode:            types.ObjectLockModeCompliance,
		ObjectLockRetainUntilDate: &until,
		ContentType:               aws.String("application/octet-stream"),
	})
	if err != nil {
		return ObjectVersion{}, wrapErr("put", key, err)
	}
	if out.VersionId == nil || *out.VersionId == "" || *out.VersionId == "null" {
		return ObjectVersion{}, fmt.Errorf("put %s: the bucket gave no version id: %w", key, ErrNoObjectLock)
	}
	v, err := b.Head(ctx, key, *out.VersionId)
	if err != nil {
		return ObjectVersion{}, fmt.Errorf("put %s: read back: %w", key, err)
	}
	switch {
	case v.Size != size || v.SHA256 != sha256Hex:
		return v, fmt.Errorf("put %s: read back %d bytes with SHA-256 %q, sent %d bytes with %s: %w", key, v.Size, v.SHA256, size, sha256Hex, ErrMismatch)
	case v.Mode != string(types.ObjectLockModeCompliance) || v.RetainUntil.Before(until):
		return v, fmt.Errorf("put %s: read back lock %q until %s, asked COMPLIANCE until %s: %w", key, v.Mode, v.RetainUntil, until, ErrNoObjectLock)
	}
	return v, nil
}

// lockTime rounds a retain-until up to the whole second, as S3 keeps it.
func lockTime(t time.Time) time.Time {
	t = t.UTC()
	if r := t.Truncate(time.Second); r.Before(t) {
		return r.Add(time.Second)
	}
	return t
}

// Head reads a version's size, SHA-256 and lock.
func (b *Bucket) Head(ctx context.Context, key, version string) (ObjectVersion, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	in := &s3.HeadObjectInput{Bucket: &b.name, Key: aws.String(b.prefix + key), ChecksumMode: types.ChecksumModeEnabled}
	if version != "" {
		in.VersionId = &version
	}
	out, err := b.c.HeadObject(ctx, in)
	if err != nil {
		return ObjectVersion{}, wrapErr("head", key, err)
	}
	v := ObjectVersion{Key: key, VersionID: aws.ToString(out.VersionId), Size: aws.ToInt64(out.ContentLength), Mode: string(out.ObjectLockMode)}
	if out.ObjectLockRetainUntilDate != nil {
		v.RetainUntil = out.ObjectLockRetainUntilDate.UTC()
	}
	if s := aws.ToString(out.ChecksumSHA256); s != "" && out.ChecksumType != types.ChecksumTypeComposite {
		if sum, err := base64.StdEncoding.DecodeString(s); err == nil && len(sum) == 32 {
			v.SHA256 = hex.EncodeToString(sum)
		}
	}
	return v, nil
}

// List returns every version under prefix (relative to the bucket's),
// delete markers left out.
func (b *Bucket) List(ctx context.Context, prefix string) ([]ObjectVersion, error) {
	var out []ObjectVersion
	in := &s3.ListObjectVersionsInput{Bucket: &b.name, Prefix: aws.String(b.prefix + prefix)}
	for pages := 0; ; pages++ {
		if pages > 1<<20 {
			return nil, fmt.Errorf("list %s: more than a million pages", prefix)
		}
		lctx, cancel := context.WithTimeout(ctx, b.timeout)
		page, err := b.c.ListObjectVersions(lctx, in)
		cancel()
		if err != nil {
			return nil, wrapErr("list", prefix, err)
		}
		for _, v := range page.Versions {
			key, ok := strings.CutPrefix(aws.ToString(v.Key), b.prefix)
			if !ok {
				continue
			}
			out = append(out, ObjectVersion{Key: key, VersionID: aws.ToString(v.VersionId), Size: aws.ToInt64(v.Size), Latest: aws.ToBool(v.IsLatest)})
		}
		if !aws.ToBool(page.IsTruncated) {
			return out, nil
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
}

// Extend sets a version's COMPLIANCE retain-until to until, which must not
// be earlier than the one it has (S3 refuses that: [ErrLockedObject]).
func (b *Bucket) Extend(ctx context.Context, key, version string, until time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	until = lockTime(until)
	_, err := b.c.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: &b.name, Key: aws.String(b.prefix + key), VersionId: &version,
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeCompliance, RetainUntilDate: &until}})
	return wrapErr("extend the lock of", key, err)
}

// Get reads a version (the newest for version ""). The caller closes it
// and checks what it read.
func (b *Bucket) Get(ctx context.Context, key, version string) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: &b.name, Key: aws.String(b.prefix + key)}
	if version != "" {
		in.VersionId = &version
	}
	out, err := b.c.GetObject(ctx, in)
	if err != nil {
		return nil, wrapErr("get", key, err)
	}
	return out.Body, nil
}

// Delete removes one version for good. A locked version is refused by the
// server ([ErrLockedObject]); a missing one is not an error.
func (b *Bucket) Delete(ctx context.Context, key, version string) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	_, err := b.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.name, Key: aws.String(b.prefix + key), VersionId: &version})
	if err = wrapErr("delete", key, err); errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
