// SPDX-License-Identifier: Apache-2.0

// Package offsitetest runs a real S3 server for tests: versitygw (posix
// backend with versioning, which enforces Object Lock) on 127.0.0.1.
package offsitetest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sealmail/sealmail/offsite"
)

// Server is a running versitygw.
type Server struct {
	Endpoint          string
	AccessKey, Secret string
	client            *s3.Client
}

// Binary finds versitygw: on PATH, in $GOBIN or in $GOPATH/bin (where
// `go install github.com/versity/versitygw/cmd/versitygw@v1.8.0` puts it).
// Without it the test is skipped, or fails when CI is set.
func Binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, d := range filepath.SplitList(string(trimNL(out))) {
			dirs = append(dirs, filepath.Join(d, "bin"))
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "versitygw not found: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 (.ci/run does)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Start runs versitygw on a free port of 127.0.0.1 with its data in a
// temporary directory, and stops it at the end of the test.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	for _, d := range []string{"root", "versions"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{Endpoint: "http://" + addr, AccessKey: "sealmailtest", Secret: "sealmail-test-secret"}
	cmd := exec.Command(bin, "--port", addr, "--quiet", "posix", "--versioning-dir", filepath.Join(dir, "versions"), filepath.Join(dir, "root"))
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.Secret)
	logf, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("versitygw does not answer on %s: %v\n%s", addr, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.client = s3.New(s3.Options{BaseEndpoint: aws.String(s.Endpoint), Region: "us-east-1", UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.Secret}, nil
		})})
	return s
}

// Client returns an S3 client of the server's root user, for a test to
// look at the bucket as an operator (or an attacker with the keys) would.
func (s *Server) Client() *s3.Client { return s.client }

// Bucket creates a bucket, with Object Lock (and so versioning) if lock,
// and returns the options that reach it below prefix.
func (s *Server) Bucket(t testing.TB, name string, lock bool, prefix string) offsite.BucketOptions {
	t.Helper()
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if lock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	if _, err := s.client.CreateBucket(context.Background(), in); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return offsite.BucketOptions{Endpoint: s.Endpoint, Bucket: name, Prefix: prefix, AccessKeyID: s.AccessKey,
		SecretAccessKey: s.Secret, InsecureHTTP: true}
}
