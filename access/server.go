// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Options configures a [Server]. Only StateDir is required; every other
// field's zero value is safe and documented.
type Options struct {
	// StateDir is the reader's state directory (created 0700 if missing).
	StateDir string
	// Logger receives diagnostics (never secrets). Nil discards them.
	Logger *slog.Logger
	// Audit receives every sign-in, failure, lockout, sign-out, session
	// revocation, user change and four-eyes transition
	// ([StateOptions].Audit).
	Audit func(context.Context, Event) error
	// Execute carries out approved four-eyes requests
	// ([StateOptions].Execute).
	Execute func(context.Context, Approval) error
	// CertFile and KeyFile name a PEM certificate and key. Empty: a
	// self-signed certificate under StateDir/tls, made on first start.
	CertFile, KeyFile string
	// Hostnames go into a self-signed certificate besides localhost,
	// 127.0.0.1 and ::1 (names or IP addresses). Nil means os.Hostname.
	Hostnames []string
	// Password, Sessions, Lockout, Issuer, WebAuthn, FourEyes and OIDC are
	// passed to the [State]; [Config.Apply] sets them from a configuration
	// file's [access] section.
	Password PasswordParams
	Sessions SessionOptions
	Lockout  LockoutOptions
	Issuer   string
	WebAuthn WebAuthnOptions
	FourEyes FourEyesOptions
	OIDC     OIDCOptions
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Server is the reader's HTTPS API. Endpoints are registered with a
// [Permission]; a request without a live session gets 401 and one whose
// role lacks the permission 403, before the endpoint's handler runs.
type Server struct {
	st   *State
	log  *slog.Logger
	mux  *http.ServeMux
	http *http.Server
	cert tls.Certificate

	closeOnce sync.Once
	closeErr  error
}

// NewServer opens the state in opts.StateDir and loads or makes the TLS
// certificate. The caller registers further endpoints with [Server.Handle],
// then calls [Server.Serve]; [Server.Shutdown] closes the state.
func NewServer(opts Options) (*Server, error) {
	if opts.StateDir == "" {
		return nil, fmt.Errorf("%w: no state directory", ErrInvalid)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	st, err := OpenState(opts.StateDir, StateOptions{Logger: opts.Logger, Audit: opts.Audit, Now: opts.Now,
		Password: opts.Password, Sessions: opts.Sessions, Lockout: opts.Lockout, Issuer: opts.Issuer,
		WebAuthn: opts.WebAuthn, Execute: opts.Execute, FourEyes: opts.FourEyes, OIDC: opts.OIDC})
	if err != nil {
		return nil, err
	}
	hosts := opts.Hostnames
	if hosts == nil {
		if h, err := os.Hostname(); err == nil {
			hosts = []string{h}
		}
	}
	cert, err := loadCertificate(opts.StateDir, opts.CertFile, opts.KeyFile, hosts, st.now())
	if err != nil {
		_ = st.Close() // nothing was written; the certificate error is the news
		return nil, err
	}
	s := &Server{st: st, log: opts.Logger, mux: http.NewServeMux(), cert: cert}
	s.routes()
	s.http = &http.Server{
		Handler:           s.headers(s.mux),
		TLSConfig:         TLSConfig(cert),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// State returns the server's state, for wiring that manages users itself.
func (s *Server) State() *State { return s.st }

// Fingerprint returns the SHA-256 fingerprint of the server's certificate.
func (s *Server) Fingerprint() string { return Fingerprint(s.cert) }

// Handle registers h for pattern (as [http.ServeMux] patterns, such as
// "GET /api/v1/search") behind permission p. It must be called before
// [Server.Serve]. h finds the caller with [PrincipalFrom].
func (s *Server) Handle(pattern string, p Permission, h http.Handler) {
	s.mux.Handle(pattern, s.require(p, h))
}

// Serve serves HTTPS on l until [Server.Shutdown].
func (s *Server) Serve(l net.Listener) error {
	err := s.http.ServeTLS(l, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, waits for requests in progress
// until ctx ends, and closes the state.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	s.closeOnce.Do(func() { s.closeErr = s.st.Close() })
	return errors.Join(err, s.closeErr)
}

// headers sets the headers every response carries: nothing is cached,
// sniffed, framed or sent as a referrer, and browsers keep to HTTPS.
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Strict-Transport-Security", "max-age=31536000")
		next.ServeHTTP(w, r)
	})
}
