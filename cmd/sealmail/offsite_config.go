// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/sealmail/sealmail/archive"
)

// OffsiteConfig is [offsite]: the WORM copy of the sealed segments and
// the audit log in an S3 bucket with Object Lock (docs/offsite.md). Off
// unless Bucket is set.
type OffsiteConfig struct {
	Endpoint string `toml:"endpoint"` // https URL; empty: AWS S3 of region
	Bucket   string `toml:"bucket"`
	Region   string `toml:"region"` // default us-east-1
	Prefix   string `toml:"prefix"` // e.g. "site-a/"
	// CredentialsFile is a TOML file (mode 0600) with access_key_id,
	// secret_access_key and optionally session_token; empty: the
	// environment's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
	// AWS_SESSION_TOKEN. The keys are never in this file, the audit log or
	// the logs.
	CredentialsFile string `toml:"credentials_file"`
	// InsecureHTTP permits an http:// endpoint on loopback: tests only.
	InsecureHTTP bool     `toml:"insecure_http"`
	MinLock      Duration `toml:"min_lock"` // default "720h" (30 days)
	Rate         *Size    `toml:"rate"`     // upload bytes per second; default "16MiB"; "0": no bound
	Every        Duration `toml:"every"`    // the daemon's periodic sync; default "1h"
}

// Enabled reports whether the configuration has an offsite copy.
func (c *OffsiteConfig) Enabled() bool { return c.Bucket != "" }

func (c *OffsiteConfig) validate() []error {
	var errs []error
	if !c.Enabled() {
		if c.Endpoint != "" || c.Prefix != "" || c.CredentialsFile != "" {
			errs = append(errs, fmt.Errorf("offsite: bucket missing: give offsite.bucket, or remove the [offsite] section"))
		}
		return errs
	}
	if ml, ev := c.minLock(), c.every(); ml < 2*ev {
		errs = append(errs, fmt.Errorf("offsite.min_lock = %v: want at least twice offsite.every (%v), so that every renewal comes before the lock ends", ml, ev))
	}
	return errs
}

func (c *OffsiteConfig) minLock() time.Duration {
	if c.MinLock == 0 {
		return 30 * 24 * time.Hour
	}
	return time.Duration(c.MinLock)
}

func (c *OffsiteConfig) every() time.Duration {
	if c.Every == 0 {
		return time.Hour
	}
	return time.Duration(c.Every)
}

// options returns the archive's offsite options with the credentials read
// from their file or the environment.
func (c *OffsiteConfig) options() (archive.OffsiteOptions, error) {
	if !c.Enabled() {
		return archive.OffsiteOptions{}, usageError{fmt.Errorf("no offsite copy configured: add an [offsite] section with a bucket to the configuration (docs/offsite.md)")}
	}
	o := archive.OffsiteOptions{MinLock: c.minLock(), Rate: 16 << 20, Bucket: archive.OffsiteBucket{
		Endpoint: c.Endpoint, Bucket: c.Bucket, Region: c.Region, Prefix: c.Prefix, InsecureHTTP: c.InsecureHTTP}}
	if c.Rate != nil {
		o.Rate = int64(*c.Rate)
	}
	b := &o.Bucket
	if c.CredentialsFile == "" {
		b.AccessKeyID, b.SecretAccessKey, b.SessionToken = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")
		return o, nil
	}
	if fi, err := os.Stat(c.CredentialsFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return o, usageError{fmt.Errorf("offsite.credentials_file %s has mode %04o: group and others may read it: run `chmod 600 %s`",
			c.CredentialsFile, fi.Mode().Perm(), c.CredentialsFile)}
	}
	raw, err := os.ReadFile(c.CredentialsFile)
	if err != nil {
		return o, fmt.Errorf("offsite.credentials_file: %w", err)
	}
	var f struct {
		AccessKeyID     string `toml:"access_key_id"`
		SecretAccessKey string `toml:"secret_access_key"`
		SessionToken    string `toml:"session_token"`
	}
	dec := toml.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		// The decoder's message may quote the file: say only where.
		return o, usageError{fmt.Errorf("offsite.credentials_file %s: want TOML with access_key_id and secret_access_key", c.CredentialsFile)}
	}
	b.AccessKeyID, b.SecretAccessKey, b.SessionToken = f.AccessKeyID, f.SecretAccessKey, f.SessionToken
	return o, nil
}
