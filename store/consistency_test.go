// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sealmail/sealmail"
)

// waitFor polls cond (bounded: at most about ten seconds) and fails the test
// if it never holds. It orders goroutines; it asserts nothing about time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 10000 {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("never happened: %s", what)
}

// TestDuplicateRacingDeleteIsKept reproduces defect 1 of issue #11
// deterministically: a second copy looks its digest up while the tombstone
// of the first is being committed (the commit is held in OnCommit), so it
// is queued as an envelope for a message that is deleted by the time the
// writer takes it. It must be stored whole as a new message, not become a
// receipt of the deleted one.
func TestDuplicateRacingDeleteIsKept(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	var blocked atomic.Bool
	opts := Options{OnCommit: func(cs []Committed) error {
		for _, c := range cs {
			if c.Kind == KindTombstone && blocked.CompareAndSwap(false, true) {
				close(entered)
				<-release
			}
		}
		return nil
	}}
	s, ident := newStore(t, opts)
	ctx := context.Background()
	first, err := s.Append(ctx, msg("the original"))
	if err != nil {
		t.Fatal(err)
	}
	delErr := make(chan error, 1)
	go func() {
		_, err := s.Delete(ctx, []Deletion{{ID: first.ID, Reason: "erasure", Audit: 9}}, time.Now())
		delErr <- err
	}()
	<-entered // the tombstone is in its commit; the catalog still says live
	type result struct {
		r   AppendResult
		err error
	}
	dup := make(chan result, 1)
	go func() {
		r, err := s.Append(ctx, msg("the original"))
		dup <- result{r, err}
	}()
	// The duplicate has looked the digest up (found the live message) and
	// waits for the writer.
	waitFor(t, "the duplicate queued for the writer", func() bool { return len(s.reqs) == 1 })
	close(release)
	if err := <-delErr; err != nil {
		t.Fatal(err)
	}
	d := <-dup
	if d.err != nil {
		t.Fatal(d.err)
	}
	if d.r.ID == first.ID || d.r.Duplicate || d.r.Receipt != 1 {
		t.Fatalf("duplicate racing the delete = %+v: acknowledged as a receipt of deleted message %d", d.r, first.ID)
	}
	if p := get(t, s, d.r.ID, ident); len(p) != 1 || string(p[0].Original) != "the original" {
		t.Fatalf("message %d (the duplicate, stored whole) = %d records", d.r.ID, len(p))
	}
	if _, _, err := s.Records(first.ID); !errors.Is(err, ErrDeleted) {
		t.Errorf("Records(%d) = %v, want deleted", first.ID, err)
	}
	// The digest now leads to the new message: a third copy is its receipt.
	third, err := s.Append(ctx, msg("the original"))
	if err != nil || third.ID != d.r.ID || third.Receipt != 2 {
		t.Errorf("third copy = %+v, %v; want receipt 2 of %d", third, err, d.r.ID)
	}
	st, _ := s.Stats()
	if st.Messages != 1 || st.Receipts != 3 {
		t.Errorf("Stats = %+v, want 1 live message, 3 receipts", st)
	}
	if res, err := s.Verify(ctx, nil); err != nil || len(res.Findings) != 0 {
		t.Errorf("Verify: %v %v", err, res.Findings)
	}
}

// TestTombstoneRechecksEligibility: a deletion decided on a message (as a
// purge lists it) is dropped in the writer's transaction when a further
// receipt arrived meanwhile, lengthening its retention; without Listed the
// current entry counts.
func TestTombstoneRechecksEligibility(t *testing.T) {
	t.Parallel()
	s, ident := newStore(t, Options{})
	ctx := context.Background()
	m := msg("kept longer")
	m.RetainUntil = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	r, err := s.Append(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := s.Message(r.ID) // what purge decided on
	if err != nil {
		t.Fatal(err)
	}
	m2 := msg("kept longer")
	m2.RetainUntil = time.Date(2033, 1, 1, 0, 0, 0, 0, time.UTC)
	if r2, err := s.Append(ctx, m2); err != nil || r2.ID != r.ID || r2.Receipt != 2 {
		t.Fatalf("second copy = %+v, %v", r2, err)
	}
	skipped, err := s.Delete(ctx, []Deletion{{ID: r.ID, Reason: "retention", Audit: 3, Listed: listed}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || skipped[0] != r.ID {
		t.Fatalf("Delete with a stale listing skipped %v, want [%d]", skipped, r.ID)
	}
	if p := get(t, s, r.ID, ident); len(p) != 2 {
		t.Fatalf("message %d after the skipped deletion: %d records, want 2", r.ID, len(p))
	}
	cur, _ := s.Message(r.ID)
	if cur.State != StateLive || !cur.RetainUntil.Equal(m2.RetainUntil) {
		t.Errorf("message after skipped deletion = %+v", cur)
	}
	// Decided again on the current entry, the deletion goes through.
	skipped, err = s.Delete(ctx, []Deletion{{ID: r.ID, Reason: "retention", Audit: 4, Listed: cur}}, time.Now())
	if err != nil || len(skipped) != 0 {
		t.Fatalf("Delete on a current listing = %v, %v", skipped, err)
	}
	if _, _, err := s.Records(r.ID); !errors.Is(err, ErrDeleted) {
		t.Errorf("Records after deletion = %v", err)
	}
	if res, err := s.Verify(ctx, nil); err != nil || len(res.Findings) != 0 {
		t.Errorf("Verify: %v %v", err, res.Findings)
	}
}

// TestCatalogCommitFailureIsFatal: after a failed catalog commit (a flush
// of the pending changes, here with another change) the catalog may or may
// not hold the transaction, so the store must neither cut the segment back
// nor remove a compacted file the catalog may name, and must refuse changes
// until reopened; what was acknowledged stays readable meanwhile, and the
// reopen replays what the catalog lacks. The injected failure reports an
// error after bbolt did commit: the worst case.
func TestCatalogCommitFailureIsFatal(t *testing.T) {
	t.Parallel()
	s, ident := newStore(t, Options{})
	ctx := context.Background()
	for i := range 4 {
		if _, err := s.Append(ctx, msg(fmt.Sprintf("message %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var fail atomic.Bool
	s.testCommitHook = func() error {
		if fail.CompareAndSwap(true, false) {
			return errors.New("fdatasync: input/output error")
		}
		return nil
	}
	fail.Store(true)
	if err := s.SetHolds([]byte(`{"first":true}`)); err == nil {
		t.Fatal("SetHolds succeeded although the catalog commit failed")
	}
	if _, err := s.Append(ctx, msg("after the failure")); err == nil {
		t.Fatal("Append after a failed catalog commit succeeded without a reopen")
	}
	if err := s.SetHolds([]byte("{}")); err == nil {
		t.Error("a catalog change after a failed commit succeeded without a reopen")
	}
	if p := get(t, s, 4, ident); string(p[0].Original) != "message 3" {
		t.Fatalf("message 4 while broken = %q", p[0].Original)
	}
	dir := s.Dir()
	s.Close()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen after a failed catalog commit: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	// The commit did reach the catalog.
	if b, _ := s.Holds(); string(b) != `{"first":true}` {
		t.Errorf("holds after reopen = %q, want the failed commit's", b)
	}
	for id := sealmail.MessageID(1); id <= 4; id++ {
		if p := get(t, s, id, ident); string(p[0].Original) != fmt.Sprintf("message %d", id-1) {
			t.Fatalf("message %d = %q", id, p[0].Original)
		}
	}
	if r, err := s.Append(ctx, msg("after the reopen")); err != nil || r.ID != 5 {
		t.Fatalf("Append after the reopen = %+v, %v; want id 5", r, err)
	}
	if res, err := s.Verify(ctx, nil); err != nil || len(res.Findings) != 0 {
		t.Fatalf("Verify after reopen: %v %v", err, res.Findings)
	}
}

// TestCompactionCommitFailureKeepsFiles: the compacted file must stay when
// the catalog commit that names it reports failure.
func TestCompactionCommitFailureKeepsFiles(t *testing.T) {
	t.Parallel()
	s, ident := newStore(t, Options{SealSize: 1}) // every commit seals the segment before it
	ctx := context.Background()
	for i := range 4 {
		if _, err := s.Append(ctx, msg(fmt.Sprintf("message %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	m1, _ := s.Message(1)
	seq := m1.Location.Segment
	if _, err := s.Delete(ctx, []Deletion{{ID: 1, Reason: "retention", Audit: 1}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	s.testCommitHook = func() error {
		if fail.CompareAndSwap(true, false) {
			return errors.New("fdatasync: input/output error")
		}
		return nil
	}
	fail.Store(true)
	if _, err := s.Compact(ctx, seq, nil); err == nil {
		t.Fatal("Compact succeeded although its catalog commit failed")
	}
	if _, err := s.Append(ctx, msg("after")); err == nil {
		t.Fatal("Append after a failed catalog commit succeeded without a reopen")
	}
	dir := s.Dir()
	s.Close()
	s, err := Open(dir, Options{SealSize: 1})
	if err != nil {
		t.Fatalf("reopen after a failed compaction commit: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if si, _ := s.segment(seq); si.Gen != 1 {
		t.Fatalf("segment %s generation %d, want 1 (the compaction committed)", seq, si.Gen)
	}
	if res, err := s.Verify(ctx, nil); err != nil || len(res.Findings) != 0 {
		t.Fatalf("Verify after reopen: %v %v", err, res.Findings)
	}
	for id := sealmail.MessageID(2); id <= 4; id++ {
		get(t, s, id, ident)
	}
}

// TestReadSurvivesCompaction: a compaction that moves a message's record
// between the catalog lookup and the file read (defect 9) must not make
// the read fail with ErrCorrupt or ENOENT.
func TestReadSurvivesCompaction(t *testing.T) {
	t.Parallel()
	s, ident := newStore(t, Options{SealSize: 4 << 10})
	ctx := context.Background()
	// Messages 1 to 3 fill segment 1 (incompressible bodies of 1500 bytes,
	// one record each); the fourth seals it. Deleting message 1 lets a
	// compaction move the records of 2 and 3.
	rng := rand.New(rand.NewPCG(1, 2))
	bodies := make(map[int]string)
	body := func(i int) string {
		if bodies[i] == "" {
			b := make([]byte, 1500)
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			bodies[i] = fmt.Sprintf("message %d %s", i, b)
		}
		return bodies[i]
	}
	for i := 1; i <= 4; i++ {
		if _, err := s.Append(ctx, msg(body(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Delete(ctx, []Deletion{{ID: 1, Reason: "retention", Audit: 1}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	m2, _ := s.Message(2)
	var compacted atomic.Int32
	s.testReadHook = func() {
		if compacted.Add(1) != 1 {
			return
		}
		segs, _ := s.Segments()
		for _, si := range segs {
			if si.State != SegmentSealed {
				continue
			}
			if _, err := s.Compact(ctx, si.Seq, nil); err != nil {
				t.Errorf("Compact(%s): %v", si.Seq, err)
			}
		}
	}
	p := get(t, s, 2, ident)
	if string(p[0].Original) != body(2) {
		t.Fatalf("message 2 = %.20q", p[0].Original)
	}
	if m, _ := s.Message(2); m.Location == m2.Location {
		t.Fatalf("the compaction in the read did not move message 2 (%+v): the test tests nothing", m.Location)
	}
}

// TestVerifyHoldsOffCompaction: Verify reads the segment table, then the
// files, then the catalog; a compaction in between would look like a
// missing or altered record, so none may run meanwhile.
func TestVerifyHoldsOffCompaction(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, Options{SealSize: 1})
	ctx := context.Background()
	for i := range 3 {
		if _, err := s.Append(ctx, msg(fmt.Sprintf("m %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	ran := false
	s.testVerifyHook = func() {
		ran = true
		if s.compactMu.TryLock() {
			s.compactMu.Unlock()
			t.Error("a compaction could start while Verify runs")
		}
	}
	if res, err := s.Verify(ctx, nil); err != nil || len(res.Findings) != 0 {
		t.Fatalf("Verify: %v %v", err, res.Findings)
	}
	if !ran {
		t.Fatal("verify hook not run")
	}
}

// TestAppendRefusesWhatCannotBeReadBack (defect 11): a message beyond
// MaxMessageBytes is refused before anything is written (it would be
// stored, acknowledged, and unreadable), and a message with as many
// receipts as the catalog counts gets a further copy stored whole instead
// of overwriting an envelope key.
func TestAppendRefusesWhatCannotBeReadBack(t *testing.T) {
	t.Parallel()
	s, ident := newStore(t, Options{})
	ctx := context.Background()
	// The size check comes before anything reads the bytes: the pages of
	// this allocation are never touched.
	big := &Message{Original: make([]byte, MaxMessageBytes/2), Report: make([]byte, MaxMessageBytes/2+1), Received: time.Now()}
	if _, err := s.Append(ctx, big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append(%d bytes) = %v, want ErrTooLarge", MaxMessageBytes+1, err)
	}
	if st, _ := s.Stats(); st.Messages != 0 || st.LastID != 0 {
		t.Fatalf("after a refused append Stats = %+v", st)
	}

	r, err := s.Append(ctx, msg("popular"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, msg("popular")); err != nil { // receipt 2
		t.Fatal(err)
	}
	// Pretend receipts 3 … maxReceipts-1 arrived (too slow to append).
	err = s.update(func(tx *bolt.Tx) error {
		m, err := decodeMessage(r.ID, tx.Bucket(bucketMessages).Get(idKey(r.ID)))
		if err != nil {
			return err
		}
		m.Receipts = maxReceipts - 1
		return tx.Bucket(bucketMessages).Put(idKey(r.ID), encodeMessage(m))
	})
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.Append(ctx, msg("popular"))
	if err != nil || last.ID != r.ID || last.Receipt != maxReceipts {
		t.Fatalf("copy %d = %+v, %v", maxReceipts, last, err)
	}
	over, err := s.Append(ctx, msg("popular"))
	if err != nil || over.ID == r.ID || over.Receipt != 1 {
		t.Fatalf("copy %d = %+v, %v; want a new message", maxReceipts+1, over, err)
	}
	if p := get(t, s, over.ID, ident); string(p[0].Original) != "popular" {
		t.Errorf("message %d = %q", over.ID, p[0].Original)
	}
	var loc Location
	s.view(func(v *catView) error {
		loc, err = v.envelope(r.ID, maxReceipts)
		return nil
	})
	if err != nil || loc != last.Location {
		t.Errorf("envelope %d of message %d = %+v, %v; want %+v", maxReceipts, r.ID, loc, err, last.Location)
	}
	if m, _ := s.Message(r.ID); m.Receipts != maxReceipts {
		t.Errorf("message %d has %d receipts, want %d", r.ID, m.Receipts, maxReceipts)
	}
}

// TestFailedSegmentStartIsNotFatal (defect 10): when the next segment
// cannot be started after a seal (a full disk), appends fail with a
// retryable error and succeed again once it can, without a reopen.
func TestFailedSegmentStartIsNotFatal(t *testing.T) {
	t.Parallel()
	var full atomic.Bool
	opts := Options{SealSize: 1, OpenFile: func(name string, flag int, perm os.FileMode) (File, error) {
		if full.Load() && flag&os.O_CREATE != 0 {
			return nil, &os.PathError{Op: "open", Path: filepath.Base(name), Err: syscall.ENOSPC}
		}
		return os.OpenFile(name, flag, perm)
	}}
	s, ident := newStore(t, opts)
	ctx := context.Background()
	if _, err := s.Append(ctx, msg("one")); err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	_, err := s.Append(ctx, msg("two"))
	if !errors.Is(err, sealmail.ErrStorageFull) {
		t.Fatalf("Append on a full disk = %v, want ErrStorageFull", err)
	}
	full.Store(false)
	r, err := s.Append(ctx, msg("three"))
	if err != nil {
		t.Fatalf("Append after space was freed = %v; want success without a reopen", err)
	}
	if p := get(t, s, r.ID, ident); string(p[0].Original) != "three" {
		t.Errorf("message %d = %q", r.ID, p[0].Original)
	}
	if res, err := s.Verify(ctx, nil); err != nil || len(res.Findings) != 0 {
		t.Errorf("Verify: %v %v", err, res.Findings)
	}
}
