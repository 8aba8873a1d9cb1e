// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls", "..", "cert.pem"), filepath.Join(dir, "key.pem")
	start := time.Now()
	cert, err := LoadOrCreateCertificate(certFile, keyFile, "archive.example.org")
	if err != nil {
		t.Fatalf("LoadOrCreateCertificate(new) = %v", err)
	}
	for _, f := range []string{certFile, keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("directory holds %d entries, want 2 (no temporary files left)", len(entries))
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if got := leaf.DNSNames; len(got) != 1 || got[0] != "archive.example.org" {
		t.Errorf("DNSNames = %q, want [archive.example.org]", got)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if strings.Join(ips, " ") != "127.0.0.1 ::1" {
		t.Errorf("IPAddresses = %q, want [127.0.0.1 ::1]", ips)
	}
	if years := leaf.NotAfter.Sub(start).Hours() / 24 / 365; years < 9.99 || years > 10.01 {
		t.Errorf("NotAfter = %v, want 10 years from now", leaf.NotAfter)
	}
	if err := leaf.VerifyHostname("archive.example.org"); err != nil {
		t.Error(err)
	}

	// A second call loads the same certificate.
	again, err := LoadOrCreateCertificate(certFile, keyFile, "other.example.org")
	if err != nil {
		t.Fatalf("LoadOrCreateCertificate(existing) = %v", err)
	}
	if !bytes.Equal(again.Certificate[0], cert.Certificate[0]) {
		t.Errorf("second call made a new certificate")
	}

	// One file without the other is an error and changes nothing.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCertificate(certFile, keyFile, "x"); err == nil {
		t.Errorf("LoadOrCreateCertificate(cert without key) = nil error")
	}
	if _, err := os.Stat(keyFile); err == nil {
		t.Errorf("key file recreated next to an existing certificate")
	}
	if _, err := LoadOrCreateCertificate(filepath.Join(dir, "none.pem"), certFile, "x"); err == nil {
		t.Errorf("LoadOrCreateCertificate(key without cert) = nil error")
	}

	// An IP address as host name goes into the IP SANs.
	ipCert, err := LoadOrCreateCertificate(filepath.Join(dir, "ip.pem"), filepath.Join(dir, "ip.key"), "192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ = x509.ParseCertificate(ipCert.Certificate[0])
	if len(leaf.DNSNames) != 0 || len(leaf.IPAddresses) != 3 || !leaf.IPAddresses[2].Equal(net.ParseIP("192.0.2.7")) {
		t.Errorf("IP host: DNSNames %q IPAddresses %v", leaf.DNSNames, leaf.IPAddresses)
	}
}

func TestTLSMinVersion(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t)
	srvTLS.MinVersion = tls.VersionTLS10
	_, addr := startServer(t, &memIngester{}, Options{TLSConfig: srvTLS}, true)
	old := cliTLS.Clone()
	old.MaxVersion = tls.VersionTLS11
	old.MinVersion = tls.VersionTLS10
	c, err := tls.Dial("tcp", addr, old)
	if err == nil {
		c.Close()
		t.Fatalf("TLS 1.1 handshake succeeded, want TLS 1.2 minimum")
	}
	v12 := cliTLS.Clone()
	v12.MaxVersion = tls.VersionTLS12
	c, err = tls.Dial("tcp", addr, v12)
	if err != nil {
		t.Fatalf("TLS 1.2 handshake: %v", err)
	}
	c.Close()
	if srvTLS.MinVersion != tls.VersionTLS10 {
		t.Errorf("caller's tls.Config was modified")
	}
}

func TestServeTLSWithoutConfig(t *testing.T) {
	t.Parallel()
	s := New(&memIngester{}, Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := s.ServeTLS(l); err == nil {
		t.Errorf("ServeTLS without TLSConfig = nil error")
	}
}
