// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealmail/sealmail"
)

// memIngester records ingested messages in memory.
type memIngester struct {
	mu        sync.Mutex
	msgs      []memMessage
	admitted  []int64
	admitErr  error
	ingestErr error
	// started, if set, receives once Ingest has the message; Ingest then
	// waits for release.
	started chan struct{}
	release chan struct{}
}

type memMessage struct {
	id   sealmail.MessageID
	env  *sealmail.Envelope
	data []byte
}

func (m *memIngester) Admit(ctx context.Context, size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.admitted = append(m.admitted, size)
	return m.admitErr
}

func (m *memIngester) Ingest(ctx context.Context, env *sealmail.Envelope, data []byte) (sealmail.MessageID, error) {
	if m.started != nil {
		m.started <- struct{}{}
		select {
		case <-m.release:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ingestErr != nil {
		return 0, m.ingestErr
	}
	id := sealmail.MessageID(len(m.msgs) + 1)
	m.msgs = append(m.msgs, memMessage{id: id, env: env, data: append([]byte(nil), data...)})
	return id, nil
}

func (m *memIngester) messages() []memMessage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]memMessage(nil), m.msgs...)
}

// testTLS returns a server configuration with a certificate made by
// LoadOrCreateCertificate and a client configuration trusting it.
func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	cert, err := LoadOrCreateCertificate(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), "mx.test")
	if err != nil {
		t.Fatalf("LoadOrCreateCertificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Config{Certificates: []tls.Certificate{cert}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// testLogger logs to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startServer serves s on a fresh loopback listener until the test ends.
func startServer(t testing.TB, ing Ingester, opts Options, implicitTLS bool) (*Server, string) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.Hostname == "" {
		opts.Hostname = "archive.test"
	}
	s := New(ing, opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		if implicitTLS {
			served <- s.ServeTLS(l)
		} else {
			served <- s.Serve(l)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil && !errors.Is(err, ErrServerClosed) {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return s, l.Addr().String()
}

// rawClient speaks SMTP byte by byte, for what the go-smtp client would
// normalise (bare LF, BDAT, pipelining, refusals).
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.conn.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

func dialRawTLS(t testing.TB, addr string, cfg *tls.Config) *rawClient {
	t.Helper()
	c := dialRaw(t, addr)
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
	return c
}

// reply reads one possibly multi-line reply.
func (c *rawClient) reply() (code int, text string, err error) {
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return 0, strings.Join(lines, "\n"), err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 {
			return 0, line, fmt.Errorf("short reply line %q", line)
		}
		code, err = strconv.Atoi(line[:3])
		if err != nil {
			return 0, line, fmt.Errorf("bad reply line %q", line)
		}
		lines = append(lines, line[4:])
		if line[3] == ' ' {
			return code, strings.Join(lines, "\n"), nil
		}
	}
}

// expect reads a reply and fails the test unless it has the given code and
// text prefix.
func (c *rawClient) expect(code int, prefix string) string {
	c.t.Helper()
	got, text, err := c.reply()
	if err != nil {
		c.t.Fatalf("reading reply: %v (after %q)", err, text)
	}
	if got != code || !strings.HasPrefix(text, prefix) {
		c.t.Fatalf("reply = %d %q, want %d %q…", got, text, code, prefix)
	}
	return text
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// cmd sends one command line and checks the reply.
func (c *rawClient) cmd(line string, code int, prefix string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(code, prefix)
}

// startTLS upgrades the connection after STARTTLS.
func (c *rawClient) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.cmd("STARTTLS", 220, "2.0.0")
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
}

// dotStuff prepares message content for DATA (RFC 5321 §4.5.2) and appends
// the end-of-data line. content must end with CRLF.
func dotStuff(content []byte) string {
	var b strings.Builder
	atLineStart := true
	for i, ch := range content {
		if atLineStart && ch == '.' {
			b.WriteByte('.')
		}
		b.WriteByte(ch)
		atLineStart = ch == '\n' && i > 0 && content[i-1] == '\r'
	}
	b.WriteString(".\r\n")
	return b.String()
}

// queuedID parses the id from "2.0.0 Ok: queued as N".
func queuedID(t testing.TB, text string) sealmail.MessageID {
	t.Helper()
	const prefix = "2.0.0 Ok: queued as "
	if !strings.HasPrefix(text, prefix) {
		t.Fatalf("250 text = %q, want prefix %q", text, prefix)
	}
	id, err := sealmail.ParseMessageID(text[len(prefix):])
	if err != nil {
		t.Fatal(err)
	}
	return id
}
