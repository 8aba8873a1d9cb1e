// SPDX-License-Identifier: Apache-2.0

// Package readertest runs a receiver for tests of the reader and of what
// uses it: a real archive, encrypted to an X25519 identity, served on a
// real control socket in the test's process, as `sealmail serve` serves
// it.
package readertest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
)

// Receiver is an archive served on a control socket, and a client of it.
type Receiver struct {
	t testing.TB
	// Dir is the archive's directory; Sock its control socket.
	Dir, Sock string
	Archive   *archive.Archive
	// Client is connected to Sock (what the reader is given).
	Client *api.Client
	// Identity decrypts the archive.
	Identity *age.X25519Identity

	srv    *api.Server
	served chan error
}

// NewReceiver creates an archive in base/archive with opts, serves it on
// base/control.sock and dials it. Cleanup stops serving and closes the
// archive; register what uses the receiver after this call, so that it is
// cleaned up first.
func NewReceiver(t testing.TB, base string, opts archive.Options) *Receiver {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	g := &Receiver{t: t, Dir: filepath.Join(base, "archive"), Sock: filepath.Join(base, "control.sock"), Identity: id}
	if g.Archive, err = archive.Create(g.Dir, []string{id.Recipient().String()}, opts); err != nil {
		t.Fatal(err)
	}
	g.Up()
	if g.Client, err = api.Dial(g.Sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = g.Client.Close() // only idle connections
		g.Down()
		if err := g.Archive.Close(); err != nil {
			t.Error(err)
		}
	})
	return g
}

// Up serves the archive on the control socket.
func (g *Receiver) Up() {
	g.t.Helper()
	l, err := api.Listen(g.Sock)
	if err != nil {
		g.t.Fatal(err)
	}
	g.srv, g.served = api.NewServer(g.Archive, api.Options{}), make(chan error, 1)
	go func() { g.served <- g.srv.Serve(l) }()
}

// Down stops serving the control socket, as a receiver that went away.
func (g *Receiver) Down() {
	if g.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.srv.Shutdown(ctx); err != nil {
		g.t.Errorf("control socket shutdown: %v", err)
	}
	<-g.served
	g.srv = nil
}

// Ingest stores data with env, as the receiver does with a message it
// received.
func (g *Receiver) Ingest(env *sealmail.Envelope, data []byte) sealmail.MessageID {
	g.t.Helper()
	id, err := g.Archive.Ingest(archive.WithActor(context.Background(), "test"), env, data)
	if err != nil {
		g.t.Fatal(err)
	}
	return id
}

// Horizon is the last sequence number of the receiver's log now, through
// which a reader has followed it when its coverage reaches it.
func (g *Receiver) Horizon(after uint64) uint64 {
	g.t.Helper()
	page, err := g.Client.Feed(context.Background(), after, 1)
	if err != nil {
		g.t.Fatal(err)
	}
	return page.Horizon
}

// Wait polls done until it is true, failing the test after 30 s with what
// state says.
func Wait(t testing.TB, what string, done func() bool, state func() any) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("%s in 30 s: %s", what, fmt.Sprint(state()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
