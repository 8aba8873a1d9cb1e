// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
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

// serverTLSConfig returns a clone of cfg with MinVersion at least TLS 1.2,
// or nil.
func serverTLSConfig(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		return nil
	}
	c := cfg.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
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
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("smtpd: load certificate %s: %w", certFile, err)
	}
	return cert, nil
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
