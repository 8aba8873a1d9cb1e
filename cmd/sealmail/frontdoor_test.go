// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sealmail/sealmail/smtpd"
)

// TestExposureRefused: a listener beyond loopback needs allow_networks or
// required AUTH; the error names both settings.
func TestExposureRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		c    SMTPConfig
		ok   bool
	}{
		{"all interfaces, open", SMTPConfig{Listen: "0.0.0.0:25"}, false},
		{"empty host, open", SMTPConfig{Listen: ":25"}, false},
		{"public address, open", SMTPConfig{Listen: "192.0.2.1:25"}, false},
		{"implicit TLS, open", SMTPConfig{Listen: "127.0.0.1:25", ListenTLS: "[::]:465"}, false},
		{"users without require_auth", SMTPConfig{Listen: "0.0.0.0:25", Users: map[string]string{"x": "$2y$"}}, false},
		{"allow_networks", SMTPConfig{Listen: "0.0.0.0:25", AllowNetworks: nets(t, "10.0.0.0/8")}, true},
		{"required AUTH", SMTPConfig{Listen: "0.0.0.0:25", Users: map[string]string{"x": "$2y$"}, RequireAuth: true}, true},
		{"loopback", SMTPConfig{Listen: "127.0.0.1:25", ListenTLS: "[::1]:465"}, true},
		{"localhost", SMTPConfig{Listen: "localhost:2525"}, true},
	} {
		c := &Config{SMTP: tc.c}
		errs := c.Validate()
		if tc.ok != (len(errs) == 0) {
			t.Errorf("%s: Validate = %v, want ok %v", tc.name, errs, tc.ok)
		}
		for _, err := range errs {
			if !strings.Contains(err.Error(), "smtp.allow_networks") || !strings.Contains(err.Error(), "smtp.users") {
				t.Errorf("%s: error %q does not name smtp.allow_networks and smtp.users", tc.name, err)
			}
		}
	}
	// End to end: serve refuses to start.
	dir, _ := initArchive(t)
	_, errOut, code := cli(t, nil, "serve", "--data", dir, "--smtp", "0.0.0.0:0")
	if code == 0 || !strings.Contains(errOut, "smtp.allow_networks") || !strings.Contains(errOut, "smtp.require_auth") {
		t.Errorf("serve on 0.0.0.0 without restrictions: exit %d, %q", code, errOut)
	}
}

// TestPermissionsRefused: init makes the directory 0700 and key files
// 0600; serve refuses a wider directory or a readable key file, naming the
// chmod that fixes it.
func TestPermissionsRefused(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "pre-made")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cli(t, nil, "init", "--data", dir); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	d := startDaemon(t, dir) // makes DIR/tls
	d.stop()
	mode := func(p string) os.FileMode {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if m := mode(dir); m != 0o700 {
		t.Errorf("init left %s at mode %04o, want 0700", dir, m)
	}
	for _, f := range append(keyFiles(dir), filepath.Join(dir, "tls", "key.pem")) {
		if m := mode(f); m&0o077 != 0 {
			t.Errorf("%s has mode %04o, want no access for group and others", f, m)
		}
	}

	os.Chmod(dir, 0o755)
	_, errOut, code := cli(t, nil, "serve", "--data", dir, "--smtp", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errOut, "chmod 700 "+dir) {
		t.Errorf("serve with DIR 0755: exit %d, %q; want a refusal naming `chmod 700 %s`", code, errOut, dir)
	}
	os.Chmod(dir, 0o700)
	for _, f := range []string{filepath.Join(dir, "digest.key"), filepath.Join(dir, "tls", "key.pem"), filepath.Join(dir, "identity.txt")} {
		os.Chmod(f, 0o640)
		_, errOut, code = cli(t, nil, "serve", "--data", dir, "--smtp", "127.0.0.1:0")
		if code == 0 || !strings.Contains(errOut, "chmod 600 "+f) {
			t.Errorf("serve with %s 0640: exit %d, %q", f, code, errOut)
		}
		os.Chmod(f, 0o600)
	}
}

// TestWarnInsecure: very wide journal sources and running as root are
// warned about.
func TestWarnInsecure(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	warnInsecure(log, &Config{Journal: JournalConfig{Sources: nets(t, "0.0.0.0/0", "10.1.2.0/24")},
		SMTP: SMTPConfig{AllowNetworks: nets(t, "::/0")}}, 0, true)
	out := buf.String()
	for _, want := range []string{"journal.sources includes 0.0.0.0/0", "smtp.allow_networks includes ::/0", "runs as root", "IPAddressAllow="} {
		if !strings.Contains(out, want) {
			t.Errorf("warnings lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "10.1.2.0/24") {
		t.Errorf("a /24 was warned about:\n%s", out)
	}
	buf.Reset()
	warnInsecure(log, &Config{Journal: JournalConfig{Sources: nets(t, "192.0.2.7")}, SMTP: SMTPConfig{AllowNetworks: nets(t, "127.0.0.1")}}, 1000, true)
	if buf.Len() != 0 {
		t.Errorf("warnings for a narrow source and uid 1000: %s", buf.String())
	}
}

// servedCert returns the certificate the daemon presents after STARTTLS.
func servedCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	expect := func(code string) {
		for {
			line, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, code) {
				t.Fatalf("reply %q, %v; want %s", line, err, code)
			}
			if line[3] == ' ' {
				return
			}
		}
	}
	expect("220")
	fmt.Fprintf(conn, "EHLO test\r\n")
	expect("250")
	fmt.Fprintf(conn, "STARTTLS\r\n")
	expect("220")
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc.ConnectionState().PeerCertificates[0]
}

// TestSIGHUPReloadsCertificate: after the certificate files change, SIGHUP
// makes new connections get the new certificate.
func TestSIGHUPReloadsCertificate(t *testing.T) {
	t.Parallel()
	dir, _ := initArchive(t)
	d := startDaemon(t, dir)
	before := servedCert(t, d.addr)
	other := t.TempDir()
	if _, err := smtpd.LoadOrCreateCertificate(filepath.Join(other, "cert.pem"), filepath.Join(other, "key.pem"), "renewed.test"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cert.pem", "key.pem"} {
		b, err := os.ReadFile(filepath.Join(other, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tls", f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := servedCert(t, d.addr); !got.Equal(before) {
		t.Fatal("certificate changed before SIGHUP")
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	for i := 0; ; i++ {
		if got := servedCert(t, d.addr); got.Subject.CommonName == "renewed.test" {
			break
		}
		if i == 200 {
			t.Fatalf("still the old certificate 10 s after SIGHUP: %s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.stop()
}

// nets parses networks as the configuration file does.
func nets(t *testing.T, ss ...string) []Network {
	t.Helper()
	out := make([]Network, len(ss))
	for i, s := range ss {
		if err := out[i].UnmarshalText([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
