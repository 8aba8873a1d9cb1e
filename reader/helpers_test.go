// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/reader/readertest"
)

// rig is a receiver (an archive served on a real control socket) and a
// reader attached to it through that socket, both in this process.
type rig struct {
	t testing.TB
	// recv is the receiver; dir, a, rcv and id are its directory, archive,
	// client and identity.
	recv  *readertest.Receiver
	dir   string
	a     *archive.Archive
	rcv   *api.Client
	id    *age.X25519Identity
	state string
	r     *Reader
	clk   *clock
	stop  func()
	// st is the people's state in the reader's state directory, with its
	// four eyes (executing through r).
	st *access.State
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// newRig makes the receiver (with opts; its clock and the reader's are
// clk) and opens a reader with the identity unless locked. It does not
// start the reader's tail: call run, or step by hand.
func newRig(t testing.TB, opts archive.Options, locked bool) *rig {
	t.Helper()
	return newRigFourEyes(t, opts, locked, access.FourEyesOptions{Off: access.ApprovalActions()})
}

// newRigFourEyes is newRig with four eyes as fe says (newRig switches it
// off).
func newRigFourEyes(t testing.TB, opts archive.Options, locked bool, fe access.FourEyesOptions) *rig {
	t.Helper()
	g := &rig{t: t, clk: &clock{t: time.Date(2025, 3, 15, 10, 0, 0, 0, time.UTC)}}
	base := t.TempDir()
	opts.Now, opts.MinFreeBytes = g.clk.now, -1
	if opts.Store.SealSize == 0 {
		opts.Store.SealSize = 1 // every commit seals: purged records are reclaimed
	}
	g.recv = readertest.NewReceiver(t, base, opts)
	g.dir, g.a, g.rcv, g.id = g.recv.Dir, g.recv.Archive, g.recv.Client, g.recv.Identity
	g.state = filepath.Join(base, "state")
	// Chmod: api.Listen in a parallel test may have narrowed the umask.
	if err := os.Mkdir(g.state, 0o700); err != nil || os.Chmod(g.state, 0o700) != nil {
		t.Fatal(err)
	}
	var err error
	g.st, err = access.OpenState(g.state, access.StateOptions{Now: g.clk.now, FourEyes: fe, Audit: func(ctx context.Context, ev access.Event) error {
		return g.r.AuditAccess(ctx, ev)
	}, Execute: func(ctx context.Context, a access.Approval) error { return g.r.Execute(ctx, a) }})
	if err != nil {
		t.Fatal(err)
	}
	g.open(locked)
	t.Cleanup(func() {
		if g.stop != nil {
			g.stop()
		}
		if err := g.r.Close(); err != nil {
			t.Error(err)
		}
		if err := g.st.Close(); err != nil {
			t.Error(err)
		}
	})
	return g
}

// open opens the reader (again).
func (g *rig) open(locked bool) {
	g.t.Helper()
	o := Options{StateDir: g.state, Receiver: g.rcv, Now: g.clk.now, Poll: 20 * time.Millisecond, Version: "test", Access: g.st}
	if !locked {
		o.Identities = []age.Identity{g.id}
	}
	r, err := Open(context.Background(), o)
	if err != nil {
		g.t.Fatal(err)
	}
	g.r = r
}

// run starts the reader's tail; the rig stops it at cleanup.
func (g *rig) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		g.r.Run(ctx)
		close(done)
	}()
	g.stop = func() { cancel(); <-done; g.stop = nil }
}

// ingest stores a message received now.
func (g *rig) ingest(data string, rcpts ...string) sealmail.MessageID {
	g.t.Helper()
	return g.recv.Ingest(&sealmail.Envelope{MailFrom: "ceo@example.com", RcptTo: rcpts, ClientIP: "192.0.2.1", Received: g.clk.now()}, []byte(data))
}

// caughtUp waits until the running reader has indexed everything the
// receiver's log held when it was called.
func (g *rig) caughtUp() {
	g.t.Helper()
	seq := g.recv.Horizon(g.r.Coverage().IndexedSeq)
	readertest.Wait(g.t, fmt.Sprintf("the reader did not reach seq %d", seq), func() bool { return g.settled(seq) }, func() any {
		st, _ := g.r.Status(context.Background(), Local("test"))
		return fmt.Sprintf("%+v", st)
	})
}

// settled reports whether the index covers the log through seq and every
// hold is evaluated as far.
func (g *rig) settled(seq uint64) bool {
	st, err := g.r.Status(context.Background(), Local("test"))
	if err != nil || st.Coverage.IndexedSeq < seq {
		return false
	}
	for _, h := range st.Holds {
		if h.Evaluated < st.Coverage.IndexedSeq {
			return false
		}
	}
	return true
}

// steps runs tail steps until the reader has followed the whole log (for
// tests that do not run the tail).
func (g *rig) steps() {
	g.t.Helper()
	for range 100 {
		full, err := g.r.step(context.Background(), []age.Identity{g.id})
		if err != nil {
			g.t.Fatal(err)
		}
		if !full {
			return
		}
	}
	g.t.Fatal("the reader did not catch up in 100 steps")
}

var officer = Caller{Name: "olga (officer)", User: "olga", Role: "officer"}

// ids returns the ids a search by c finds.
func (g *rig) ids(c Caller, q string) string {
	g.t.Helper()
	res, err := g.r.Search(context.Background(), c, q, SearchOptions{Limit: 100, Oldest: true})
	if err != nil {
		g.t.Fatalf("search %q as %s: %v", q, c.Name, err)
	}
	var out []uint64
	for _, h := range res.Hits {
		out = append(out, uint64(h.ID))
	}
	return fmt.Sprint(out)
}

// isDeleted reports whether message id is deleted at the receiver.
func (g *rig) isDeleted(id sealmail.MessageID) bool {
	_, err := g.a.Get(archive.WithActor(context.Background(), "test"), id)
	return errors.Is(err, archive.ErrDeleted)
}
