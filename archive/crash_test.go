// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/store"
	"github.com/sealmail/sealmail/store/storetest"
	"github.com/sealmail/sealmail/vfs/vfstest"
)

// ledger is what the workload was told: acknowledged messages and
// deletions.
type ledger struct {
	mu       sync.Mutex
	acked    map[sealmail.MessageID][]byte // id → original
	deleted  map[sealmail.MessageID]bool   // deletion acknowledged
	deleting map[sealmail.MessageID]bool   // deletion asked, outcome unknown
}

func newLedger() *ledger {
	return &ledger{acked: map[sealmail.MessageID][]byte{}, deleted: map[sealmail.MessageID]bool{}, deleting: map[sealmail.MessageID]bool{}}
}

// crashMessages are the workload's messages: sizes from a few hundred
// bytes to 40 KB, so that group commits mix small and large entries and the
// 16 KB segments seal.
var crashMessages = func() [][]byte {
	ms := make([][]byte, 16)
	for i := range ms {
		ms[i] = crashMessage(i)
	}
	return ms
}()

func crashMessage(i int) []byte {
	size := []int{300, 3000, 700, 40000, 1200, 9000}[i%6]
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: a%d@example.com\r\nTo: b@example.org\r\nSubject: crash %d\r\n\r\n", i, i)
	// Incompressible lines, so that the segments fill and seal.
	r := rand.New(rand.NewPCG(uint64(i), 0))
	for b.Len() < size {
		fmt.Fprintf(&b, "%016x%016x%016x%016x\r\n", r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())
	}
	return b.Bytes()
}

// crashWorkload drives an archive through every kind of write: group
// commits of mixed sizes (concurrent ingests), duplicates, seals (16 KB
// segments), a purge-style deletion with compaction, an erasure with
// compaction, and more ingest after them. It stops at the first error after
// the power was cut.
//
// An answer counts only if it came before the power was cut (alive): the
// catalog does its own I/O, so its commits go on succeeding in the process
// after the crash, but they are lost, and nobody could have heard of them.
func crashWorkload(ctx context.Context, a *Archive, l *ledger, alive func() bool) {
	ingest := func(is ...int) {
		var wg sync.WaitGroup
		for _, i := range is {
			wg.Go(func() {
				m := crashMessages[i]
				env := &sealmail.Envelope{MailFrom: "a@example.com", RcptTo: []string{"b@example.org"}, ClientIP: "192.0.2.1"}
				id, err := a.Ingest(ctx, env, m)
				if err == nil && alive() {
					l.mu.Lock()
					l.acked[id] = m
					l.mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	del := func(reason string, ids ...sealmail.MessageID) {
		l.mu.Lock()
		var dels []store.Deletion
		for _, id := range ids {
			if l.acked[id] != nil {
				l.deleting[id] = true
				dels = append(dels, store.Deletion{ID: id, Reason: reason})
			}
		}
		l.mu.Unlock()
		typ := audit.TypePurge
		if reason == "erasure" {
			typ = audit.TypeErase
		}
		e, err := a.audit.Append(ctx, audit.Event{Type: typ, Actor: "test", Fields: map[string]any{"ids": ids}})
		if err != nil {
			return
		}
		for i := range dels {
			dels[i].Audit = e.Seq
		}
		skipped, err := a.store.Delete(ctx, dels, a.opts.Now())
		if err != nil || !alive() {
			return
		}
		l.mu.Lock()
		for _, d := range dels {
			if !slices.Contains(skipped, d.ID) {
				l.deleted[d.ID] = true
			}
		}
		l.mu.Unlock()
		a.Compact(ctx)
	}
	// Alone, so that their records hold nothing else and compaction can
	// drop them.
	ingest(0)
	ingest(1)
	ingest(2, 3, 4, 5)
	ingest(0, 6, 7, 1) // two duplicates
	ingest(8, 9, 10, 11, 12)
	del("retention", 1)
	ingest(13, 2)
	del("erasure", 2)
	ingest(14, 15)
}

// TestPowerLoss cuts the power just before and just after every mutating
// file-system operation of crashWorkload (crash points), restores what a
// power cut leaves (only what was fsync'd: file contents and directory
// entries), and checks that a reader sees every acknowledged message
// before the daemon starts; then cuts the power once more during the
// daemon's start-up repairs, starts it again, and checks that every
// acknowledged message reads back byte-exact, that acknowledged deletions
// stay, that no id is given twice, that the archive opens and that verify
// reports nothing but what is true.
func TestPowerLoss(t *testing.T) {
	t.Parallel()
	ident, _ := age.GenerateX25519Identity()
	base := fastTempDir(t)
	template := filepath.Join(base, "template")
	a, err := Create(template, []string{ident.Recipient().String()}, Options{MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	// A run without a crash counts the crash points.
	total, failure, _ := powerLossRun(t, base, template, ident, crashPoint{})
	if failure != "" {
		t.Fatalf("run without a crash: %s", failure)
	}
	if total < 50 {
		t.Fatalf("the workload made only %d mutating operations", total)
	}
	// Just before and just after each operation. The count varies a
	// little from run to run (goroutines interleave), so go a bit beyond.
	var points []crashPoint
	for n := 1; n <= total+total/10; n++ {
		points = append(points, crashPoint{n: n}, crashPoint{n: n, after: true})
		if n%3 == 0 {
			points = append(points, crashPoint{n: n, torn: true})
		}
	}
	if testing.Short() {
		points = points[:len(points)/8]
	}
	var mu sync.Mutex
	var failures []string
	explored, replays := 0, 0
	work := make(chan crashPoint)
	var wg sync.WaitGroup
	for range max(2, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for n := range work {
				_, f, r := powerLossRun(t, base, template, ident, n)
				mu.Lock()
				explored++
				if r > 0 {
					replays++
				}
				if f != "" {
					failures = append(failures, f)
				}
				mu.Unlock()
			}
		})
	}
	for _, n := range points {
		work <- n
	}
	close(work)
	wg.Wait()
	t.Logf("power loss: %d crash points explored, %d passed; at %d, acknowledged messages were in the segments only (the catalog trails them) and were replayed",
		explored, explored-len(failures), replays)
	if replays == 0 {
		t.Error("no crash point left acknowledged messages that the catalog lacks: the replay of the segment's tail went untested")
	}
	slices.Sort(failures)
	for i, f := range failures {
		if i == 20 {
			t.Errorf("… and %d more", len(failures)-i)
			break
		}
		t.Error(f)
	}
}

// fastTempDir is a temporary directory in memory (/dev/shm) when there is
// one: CrashFS models durability itself, so the real fsyncs of the catalog
// only cost time.
func fastTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("/dev/shm", "sealmail-crash-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// pendingRepairs are what verify may truly report after a power cut and
// before the daemon's start-up repairs them: bytes after a committed length
// (and their audit entries), audit entries of records a crash lost, a
// segment file whose creation was interrupted, a sealed segment whose chmod
// was not reached.
var pendingRepairs = []string{
	"bytes after the committed length",
	"after the segment's committed length, so not in the catalog",
	"after the committed length and not vouched for by the audit log",
	"beyond the committed length, and the record is not there",
	"is not a segment the catalog knows",
	"sealed segment is writable",
}

// checkAcked reads every acknowledged message back byte-exact, and checks
// that acknowledged deletions stayed and only asked-for ones happened.
func checkAcked(ctx context.Context, a *Archive, l *ledger, ident *age.X25519Identity) string {
	for id, want := range l.acked {
		s, err := a.Get(ctx, id)
		var de *store.DeletedError
		switch {
		case errors.As(err, &de) || errors.Is(err, store.ErrDeleted):
			if !l.deleted[id] && !l.deleting[id] {
				return fmt.Sprintf("acknowledged message %d is deleted, but no deletion of it was asked", id)
			}
			continue
		case err != nil:
			return fmt.Sprintf("acknowledged message %d: %v", id, err)
		case l.deleted[id]:
			return fmt.Sprintf("message %d: its deletion was acknowledged, but it reads back", id)
		}
		original, _, err := s.DecryptRecord(0, []age.Identity{ident})
		if err != nil {
			return fmt.Sprintf("acknowledged message %d: %v", id, err)
		}
		if !bytes.Equal(original, want) {
			return fmt.Sprintf("acknowledged message %d reads back %d bytes that differ from the %d acknowledged", id, len(original), len(want))
		}
	}
	return ""
}

// crashPoint is just before or just after an operation; torn keeps half
// of what was written since the last sync (vfstest.Options.TornWrites).
type crashPoint struct {
	n     int
	after bool
	torn  bool
}

// powerLossRun copies the template archive, runs the workload over a
// CrashFS that cuts the power at p (n 0: never, then the power is cut after
// the workload), restores, reopens and checks. It returns the number of
// operations counted and a failure, if any.
func powerLossRun(t *testing.T, base, template string, ident *age.X25519Identity, p crashPoint) (ops int, failure string, replayed int) {
	dir, err := os.MkdirTemp(base, "run")
	if err != nil {
		return 0, err.Error(), 0
	}
	defer os.RemoveAll(dir)
	dir = filepath.Join(dir, "a")
	if err := os.CopyFS(dir, os.DirFS(template)); err != nil {
		return 0, fmt.Sprintf("copy template: %v", err), 0
	}
	cfs, err := vfstest.New(dir, vfstest.Options{CrashAt: p.n, CrashAfter: p.after, TornWrites: p.torn,
		External: []string{"catalog.db"}})
	if err != nil {
		return 0, err.Error(), 0
	}
	ctx := WithActor(context.Background(), "test")
	l := newLedger()
	opts := Options{MinFreeBytes: -1, FS: cfs, Store: store.Options{SealSize: 16 << 10}, CheckpointEvery: 7}
	a, err := Open(dir, opts)
	if err == nil {
		crashWorkload(ctx, a, l, func() bool { crashed, _ := cfs.Crashed(); return !crashed })
		a.Close()
	} else if !errors.Is(err, vfstest.ErrCrashed) {
		return 0, fmt.Sprintf("crash %v: open before the crash: %v", p, err), 0
	}
	ops = cfs.Ops()
	_, at := cfs.Crashed()
	if err := cfs.Restore(); err != nil {
		return ops, fmt.Sprintf("crash %s: restore: %v", at, err), 0
	}
	if p.torn {
		at += " (torn writes)"
	}
	fail := func(format string, v ...any) (int, string, int) {
		return ops, fmt.Sprintf("crash %s: ", at) + fmt.Sprintf(format, v...), replayed
	}

	// Acknowledged messages that catalog.db lacks (the catalog trails the
	// segments): the store without replay does not find them.
	if st, err := store.Open(dir, store.Options{ReadOnly: true, OnReplay: func([]store.Committed) (int, error) { return 0, nil }}); err == nil {
		for id := range l.acked {
			if _, err := st.Message(id); errors.Is(err, store.ErrNotFound) {
				replayed++
			}
		}
		st.Close()
	}

	// Before the daemon starts again, a reader (the CLI) reads every
	// acknowledged message, and verify reports only what is true of an
	// archive whose start-up repairs have not run yet.
	a, err = Open(dir, Options{MinFreeBytes: -1, ReadOnly: true})
	if err != nil {
		return fail("the archive does not open read-only after the crash: %v", err)
	}
	if f := checkAcked(ctx, a, l, ident); f != "" {
		a.Close()
		return fail("read-only: %s", f)
	}
	rep, err := a.Verify(ctx, nil)
	a.Close()
	if err != nil {
		return fail("read-only verify: %v", err)
	}
	for _, p := range rep.Problems {
		if !slices.ContainsFunc(pendingRepairs, func(s string) bool { return strings.Contains(p, s) }) {
			return fail("read-only verify: %s", p)
		}
	}

	// The power fails again during the start-up repairs (at one of their
	// first operations, varied with the crash point).
	rfs, err := vfstest.New(dir, vfstest.Options{CrashAt: 1 + p.n%5, External: []string{"catalog.db"}})
	if err != nil {
		return fail("%v", err)
	}
	a, err = Open(dir, Options{MinFreeBytes: -1, FS: rfs, Store: store.Options{SealSize: 16 << 10}})
	if err == nil {
		a.Close()
	} else if !errors.Is(err, vfstest.ErrCrashed) {
		return fail("the archive does not open after the crash: %v", err)
	}
	_, at2 := rfs.Crashed()
	if err := rfs.Restore(); err != nil {
		return fail("restore after a crash at start-up: %v", err)
	}

	a, err = Open(dir, Options{MinFreeBytes: -1, Store: store.Options{SealSize: 16 << 10}})
	if err != nil {
		return fail("the archive does not open after a second crash %s at start-up: %v", at2, err)
	}
	defer a.Close()
	if f := checkAcked(ctx, a, l, ident); f != "" {
		return fail("%s", f)
	}
	// A new message after the crash takes an id nobody had.
	env := &sealmail.Envelope{MailFrom: "a@example.com", RcptTo: []string{"b@example.org"}, ClientIP: "192.0.2.1"}
	if _, err := a.Ingest(ctx, env, []byte("Subject: after the crash\r\n\r\nnew\r\n")); err != nil {
		return fail("ingest after the crash: %v", err)
	}
	digests := map[uint64]string{}
	err = audit.Read(ctx, auditDir(dir), audit.Filter{Types: []string{audit.TypeIngest}}, func(e audit.Entry) error {
		var f ingestFields
		if err := e.DecodeFields(&f); err != nil {
			return err
		}
		if f.Kind != store.KindMessage.String() {
			return nil
		}
		id, d := f.ID, f.Digest
		if prev, ok := digests[id]; ok && prev != d {
			return fmt.Errorf("id %d was given to two different messages (audit entry %d)", id, e.Seq)
		}
		digests[id] = d
		return nil
	})
	if err != nil {
		return fail("%v", err)
	}
	rep, err = a.Verify(ctx, nil)
	if err != nil {
		return fail("verify: %v", err)
	}

	for _, p := range rep.Problems {
		if strings.Contains(p, "the uncommitted tail of a segment") {
			continue // true: a commit was cut short; the file is kept for review
		}
		return fail("verify: %s", p)
	}
	if p.n == 0 {
		if len(l.acked) < 15 || len(l.deleted) != 2 || rep.Sealed < 2 {
			return fail("the workload without a crash acknowledged %d messages and %d deletions, sealed %d segments", len(l.acked), len(l.deleted), rep.Sealed)
		}
		compacted := 0
		audit.Read(ctx, auditDir(dir), audit.Filter{Types: []string{audit.TypeSegmentCompact}}, func(audit.Entry) error { compacted++; return nil })
		if compacted == 0 {
			return fail("the workload without a crash compacted nothing")
		}
	}
	if err := a.Close(); err != nil {
		return fail("close: %v", err)
	}
	storetest.CheckDir(t, dir)
	return ops, "", replayed
}
