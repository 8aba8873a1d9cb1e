// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/sealmail/sealmail/vfs"
)

// certValidity is the lifetime of a generated self-signed certificate.
// Journaling MTAs are configured to accept it (or not to verify), so it
// should outlive the appliance's configuration.
const certValidity = 10 * 365 * 24 * time.Hour

// CertExpiryWarning is how long before a certificate expires the server
// starts warning about it, at start and at every [Server.SetCertificate].
const CertExpiryWarning = 30 * 24 * time.Hour

// aeadSuites are the TLS 1.2 cipher suites offered: ECDHE with AES-GCM or
// ChaCha20-Poly1305 only. The CBC suites Go enables by default are left
// out (LUCKY13-style padding oracles); TLS 1.3 suites are all AEAD and not
// configurable.
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// serverTLSConfig returns a clone of cfg with MinVersion at least TLS 1.2
// and, unless cfg names its own, AEAD cipher suites only; or nil.
func serverTLSConfig(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		return nil
	}
	c := cfg.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	if c.CipherSuites == nil {
		c.CipherSuites = aeadSuites
	}
	return c
}

// initCertificates moves a static certificate of the TLS configuration
// behind GetCertificate, so that [Server.SetCertificate] can replace it
// (tls.Config consults GetCertificate only when Certificates is empty).
func (s *Server) initCertificates() {
	c := s.tlsConfig
	if c.GetCertificate != nil || len(c.Certificates) == 0 {
		return
	}
	cert := c.Certificates[0]
	s.storeCertificate(&cert)
	c.Certificates = nil
	c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.certs.Load(), nil }
}

// SetCertificate replaces the certificate (chain) served to new TLS
// handshakes, for example after the operator renewed it (SIGHUP); sessions
// already encrypted keep theirs. It fails if the server has no TLS
// configuration or serves certificates through the caller's own
// GetCertificate, and warns when the certificate expires within
// [CertExpiryWarning].
func (s *Server) SetCertificate(cert tls.Certificate) error {
	if s.tlsConfig == nil || s.certs.Load() == nil {
		return errors.New("smtpd: set certificate: the server has no replaceable TLS certificate")
	}
	if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		return errors.New("smtpd: set certificate: no certificate or no key")
	}
	s.storeCertificate(&cert)
	return nil
}

func (s *Server) storeCertificate(cert *tls.Certificate) {
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
			cert.Leaf = leaf
		}
	}
	s.logCertificate(cert, true)
	s.certs.Store(cert)
}

// CheckCertificate warns, as at start, when the served certificate expires
// within [CertExpiryWarning] (or has expired); a long-running daemon calls
// it daily.
func (s *Server) CheckCertificate() {
	if cert := s.certs.Load(); cert != nil {
		s.logCertificate(cert, false)
	}
}

// logCertificate logs the certificate's expiry: a warning or error when it
// is near or past, else (if always) at info.
func (s *Server) logCertificate(cert *tls.Certificate, always bool) {
	if leaf := cert.Leaf; leaf != nil {
		left := time.Until(leaf.NotAfter)
		// CheckSignatureFrom would demand a CA certificate; a generated
		// self-signed one is not.
		selfSigned := bytes.Equal(leaf.RawIssuer, leaf.RawSubject) &&
			leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil
		attrs := []any{"subject", leaf.Subject.CommonName, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "self_signed", selfSigned, "chain", len(cert.Certificate)}
		switch {
		case left <= 0:
			s.log.Error("smtp TLS certificate has EXPIRED: senders that verify or pin it will not deliver", attrs...)
		case left < CertExpiryWarning:
			s.log.Warn(fmt.Sprintf("smtp TLS certificate expires in %d days: renew it (a self-signed one: delete it and restart) and update the senders' pins", int(left.Hours()/24)), attrs...)
		case always:
			s.log.Info("smtp TLS certificate", attrs...)
		}
	}
}

// LoadCertificate loads a PEM certificate chain (the server's certificate
// first, then the intermediates that sign it, as issued by a CA) and its
// private key. Use it to reload files given to [LoadOrCreateCertificate].
func LoadCertificate(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("smtpd: load certificate %s: %w", certFile, err)
	}
	if err := checkChain(cert); err != nil {
		return tls.Certificate{}, fmt.Errorf("smtpd: load certificate %s: %w", certFile, err)
	}
	return cert, nil
}

// checkChain verifies that each certificate of the chain is signed by the
// next, so that a chain in the wrong order is refused at load rather than
// by every sender.
func checkChain(cert tls.Certificate) error {
	certs := make([]*x509.Certificate, len(cert.Certificate))
	for i, der := range cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("certificate %d of the chain: %w", i+1, err)
		}
		certs[i] = c
	}
	for i := 0; i+1 < len(certs); i++ {
		if err := certs[i].CheckSignatureFrom(certs[i+1]); err != nil {
			return fmt.Errorf("certificate %d (%s) is not signed by certificate %d (%s): put the server certificate first, then its issuer, and so on: %w",
				i+1, certs[i].Subject.CommonName, i+2, certs[i+1].Subject.CommonName, err)
		}
	}
	return nil
}

// LoadOrCreateCertificate loads the PEM certificate chain and private key
// from certFile and keyFile. If neither file exists it first creates them:
// a self-signed ECDSA P-256 certificate valid for 10 years for hostname,
// 127.0.0.1 and ::1, each file written with mode 0600 atomically (temporary
// file, fsync, rename, fsync of the directory). If only one of the two
// exists it returns an error and changes nothing.
func LoadOrCreateCertificate(certFile, keyFile, hostname string) (tls.Certificate, error) {
	certExists, err := exists(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyExists, err := exists(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	switch {
	case certExists && !keyExists:
		return tls.Certificate{}, fmt.Errorf("smtpd: load certificate: %s exists but key %s does not", certFile, keyFile)
	case !certExists && keyExists:
		return tls.Certificate{}, fmt.Errorf("smtpd: load certificate: key %s exists but %s does not", keyFile, certFile)
	case !certExists:
		certPEM, keyPEM, err := selfSigned(hostname, time.Now())
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("smtpd: create certificate: %w", err)
		}
		if err := writeFileAtomic(keyFile, keyPEM); err != nil {
			return tls.Certificate{}, fmt.Errorf("smtpd: create certificate: %w", err)
		}
		if err := writeFileAtomic(certFile, certPEM); err != nil {
			return tls.Certificate{}, fmt.Errorf("smtpd: create certificate: %w", err)
		}
	}
	return LoadCertificate(certFile, keyFile)
}

func exists(name string) (bool, error) {
	_, err := os.Stat(name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("smtpd: load certificate: %w", err)
	}
}

// selfSigned returns a PEM certificate and PKCS #8 PEM key.
func selfSigned(hostname string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"sealmail"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(hostname); ip != nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if hostname != "" {
		tmpl.DNSNames = []string{hostname}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	return certPEM, keyPEM, nil
}

// writeFileAtomic writes data to name with mode 0600 so that name either
// does not exist or holds all of data, also after a crash.
func writeFileAtomic(name string, data []byte) error {
	return vfs.WriteFile(nil, name, data, 0o600)
}
