// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// serveManual starts a server without the cleanup of startServer, for tests
// that call Shutdown themselves.
func serveManual(t *testing.T, ing Ingester, opts Options) (*Server, string, chan error) {
	t.Helper()
	opts.Logger = testLogger(t)
	opts.Hostname = "archive.test"
	s := New(ing, opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	return s, l.Addr().String(), served
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t)
	ing := &memIngester{started: make(chan struct{}, 2), release: make(chan struct{})}
	s, addr, served := serveManual(t, ing, Options{TLSConfig: srvTLS})

	// busy has sent a whole message; Ingest holds it, not yet durable.
	busy := dialRaw(t, addr)
	busy.expect(220, "")
	busy.cmd("EHLO busy.test", 250, "")
	busy.cmd("MAIL FROM:<s@example.org>", 250, "")
	busy.cmd("RCPT TO:<j@archive.test>", 250, "")
	busy.cmd("DATA", 354, "")
	busy.send(dotStuff([]byte(testMessage)))
	<-ing.started

	// mid is inside a transaction, between chunks.
	mid := dialRaw(t, addr)
	mid.expect(220, "")
	mid.cmd("EHLO mid.test", 250, "")
	mid.cmd("MAIL FROM:<s@example.org>", 250, "")
	mid.cmd("RCPT TO:<j@archive.test>", 250, "")
	mid.send("BDAT 4\r\nfirs")
	mid.expect(250, "2.0.0")

	// idle has no transaction.
	idle := dialRaw(t, addr)
	idle.expect(220, "")
	idle.cmd("EHLO idle.test", 250, "")
	idleTLS := dialRaw(t, addr)
	idleTLS.expect(220, "")
	idleTLS.cmd("EHLO idle.test", 250, "")
	idleTLS.startTLS(cliTLS)
	idleTLS.cmd("EHLO idle.test", 250, "")
	fresh := dialRaw(t, addr) // not even greeted yet

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shutdown <- s.Shutdown(ctx)
	}()

	idle.expect(421, "")
	if _, _, err := idle.reply(); err == nil {
		t.Errorf("idle connection open after 421")
	}
	idleTLS.expect(421, "")
	// A connection still in the listen backlog when the listener closes is
	// reset without a word; one that was accepted gets 220, then 421.
	if code, text, err := fresh.reply(); err == nil {
		if code != 220 {
			t.Errorf("fresh connection: %d %s, want 220 or a closed connection", code, text)
		}
		fresh.expect(421, "")
	}
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		c.Close()
		t.Errorf("new connection accepted during shutdown")
	}

	// mid finishes its transaction, and may not start another.
	mid.send("BDAT 2 LAST\r\nt!")
	<-ing.started
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v while two messages were not durable", err)
	default:
	}
	close(ing.release)
	if got := queuedID(t, busy.expect(250, "")); got == 0 {
		t.Errorf("busy got id 0")
	}
	queuedID(t, mid.expect(250, ""))
	busy.expect(421, "")
	mid.expect(421, "")

	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
	msgs := ing.messages()
	if len(msgs) != 2 {
		t.Fatalf("ingested %d messages, want 2", len(msgs))
	}
	got := map[string]bool{string(msgs[0].data): true, string(msgs[1].data): true}
	if !got[testMessage] || !got["first!"] {
		t.Errorf("ingested %q and %q, want the DATA and BDAT messages", msgs[0].data, msgs[1].data)
	}
	if err := s.Shutdown(context.Background()); !errors.Is(err, ErrServerClosed) {
		t.Errorf("second Shutdown = %v, want ErrServerClosed", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v, want ErrServerClosed", err)
	}
}

func TestShutdownMailRefused(t *testing.T) {
	t.Parallel()
	ing := &memIngester{started: make(chan struct{}, 1), release: make(chan struct{})}
	s, addr, served := serveManual(t, ing, Options{})
	busy := dialRaw(t, addr)
	busy.expect(220, "")
	busy.cmd("EHLO busy.test", 250, "")
	busy.cmd("MAIL FROM:<s@example.org>", 250, "")
	busy.cmd("RCPT TO:<j@archive.test>", 250, "")
	busy.send("BDAT 1 LAST\r\nx")
	<-ing.started
	// other pipelines a transaction right as shutdown begins; its MAIL
	// arrives once Shutdown has started.
	other := dialRaw(t, addr)
	other.expect(220, "")
	other.cmd("EHLO other.test", 250, "")
	s.shutting.Store(true) // what Shutdown does first; tested alone here
	other.cmd("MAIL FROM:<s@example.org>", 421, "4.3.2")
	s.shutting.Store(false)

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shutdown <- s.Shutdown(ctx)
	}()
	other.expect(421, "")
	close(ing.release)
	queuedID(t, busy.expect(250, ""))
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	<-served
}

func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	// Ingest never finishes by itself; only its context ends it.
	ing := &memIngester{started: make(chan struct{}, 1), release: make(chan struct{})}
	s, addr, served := serveManual(t, ing, Options{})
	busy := dialRaw(t, addr)
	busy.expect(220, "")
	busy.cmd("EHLO busy.test", 250, "")
	busy.cmd("MAIL FROM:<s@example.org>", 250, "")
	busy.cmd("RCPT TO:<j@archive.test>", 250, "")
	busy.cmd("DATA", 354, "")
	busy.send(dotStuff([]byte(testMessage)))
	<-ing.started

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	// The client never gets a 250 for the message that was not durable.
	if code, _, err := busy.reply(); err == nil && code == 250 {
		t.Errorf("busy client got 250 after forced shutdown")
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
	if n := len(ing.messages()); n != 0 {
		t.Errorf("ingested %d messages, want 0", n)
	}
}
