// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/sealmail/sealmail"
)

// TestOpenMakesActiveSegmentWritable: sealing once chmod'ed the file before
// the catalog commit (issue #11, defect 7); a crash in between left the
// still-active segment read-only, which a daemon that is not root cannot
// reopen. Open makes it writable again, and a sealed segment left writable
// (a crash between the commit and the chmod, in today's order) read-only.
func TestOpenMakesActiveSegmentWritable(t *testing.T) {
	t.Parallel()
	s, ident := newStore(t, Options{SealSize: 1})
	ctx := context.Background()
	for i := range 2 {
		if _, err := s.Append(ctx, msg(fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	dir := s.Dir()
	segs, _ := s.Segments()
	s.Close()
	last := segs[len(segs)-1]
	if len(segs) < 2 || last.State != SegmentActive {
		t.Fatalf("segments %+v, want sealed ones and an active one", segs)
	}
	sealed, active := segmentPath(dir, last.Seq-1), segmentPath(dir, last.Seq)
	if fi, err := os.Stat(sealed); err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("sealed segment: %v, %v; want mode 0444", fi.Mode(), err)
	}
	if err := os.Chmod(active, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sealed, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, Options{SealSize: 1 << 20})
	if err != nil {
		t.Fatalf("Open with a read-only active segment: %v", err)
	}
	defer s.Close()
	if fi, _ := os.Stat(active); fi.Mode().Perm()&0o200 == 0 {
		t.Errorf("active segment after Open: mode %v, want writable", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(sealed); fi.Mode().Perm() != 0o444 {
		t.Errorf("sealed segment after Open: mode %v, want 0444", fi.Mode().Perm())
	}
	r, err := s.Append(ctx, msg("after"))
	if err != nil || r.ID != 3 {
		t.Fatalf("Append after reopen = %+v, %v", r, err)
	}
	if p := get(t, s, 3, ident); string(p[0].Original) != "after" {
		t.Errorf("message 3 = %q", p[0].Original)
	}
}

// withOldCatalog runs fn on the store in dir and then puts back the catalog
// as it was before: what fn committed is then an uncommitted tail.
func withOldCatalog(t *testing.T, dir string, opts Options, fn func(*Store)) {
	t.Helper()
	cat := filepath.Join(dir, catalogFile)
	old, err := os.ReadFile(cat)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	fn(s)
	s.Close()
	if err := os.WriteFile(cat, old, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRepairTailByIDs: a tail is judged by its ids, not by its size
// (issue #11, defect 8). The commits after the catalog's last flush — a
// single commit of a message larger than 2×MaxBatchBytes + 32 MiB (a large
// journal report carries the original twice), or a message and then a
// second copy of it (an envelope) — are replayed into the catalog; a tail
// whose ids do not follow the catalog's (the catalog is not the one the
// segment was written with) makes Open refuse.
func TestRepairTailByIDs(t *testing.T) {
	t.Parallel()
	s, ident := newStore(t, Options{MaxBatchBytes: 1 << 10})
	ctx := context.Background()
	if _, err := s.Append(ctx, msg("first")); err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	s.Close()

	big := make([]byte, 34<<20)
	crand.Read(big)
	withOldCatalog(t, dir, Options{MaxBatchBytes: 1 << 10}, func(s *Store) {
		if r, err := s.Append(ctx, &Message{Original: big, Received: msg("").Received}); err != nil || r.ID != 2 {
			t.Fatalf("Append(34 MiB) = %+v, %v", r, err)
		}
	})
	s, err := Open(dir, Options{MaxBatchBytes: 1 << 10})
	if err != nil {
		t.Fatalf("Open with one large commit in the tail: %v", err)
	}
	st, _ := s.Stats()
	tails, _ := filepath.Glob(filepath.Join(dir, "segments", "*.tail-*"))
	if st.Messages != 2 || len(tails) != 0 {
		t.Errorf("after replay: %d messages, kept tails %v; want 2 and none", st.Messages, tails)
	}
	if p := get(t, s, 2, ident); !bytes.Equal(p[0].Original, big) {
		t.Errorf("message 2 replayed: %d bytes differ from the %d stored", len(p[0].Original), len(big))
	}
	if r, err := s.Append(ctx, msg("next")); err != nil || r.ID != 3 {
		t.Errorf("Append after replay = %+v, %v; want id 3", r, err)
	}
	s.Close()

	// Two commits: message 4, then a second copy of it (an envelope for 4).
	twice := func(body string) func(s *Store) {
		return func(s *Store) {
			for range 2 {
				if _, err := s.Append(ctx, msg(body)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	withOldCatalog(t, dir, Options{}, twice("twice"))
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatalf("Open with two commits in the tail: %v", err)
	}
	if m, err := s.Message(4); err != nil || m.Receipts != 2 {
		t.Errorf("message 4 after replay = %+v, %v; want 2 receipts", m, err)
	}
	if res, err := s.Verify(ctx, nil); err != nil || len(res.Findings) > 0 {
		t.Errorf("Verify after replay: %v, %v", err, res.Findings)
	}
	s.Close()

	// The same, with a catalog whose next id is beyond the tail's.
	withOldCatalog(t, dir, Options{}, twice("thrice"))
	db, err := bolt.Open(filepath.Join(dir, catalogFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return putU64(tx.Bucket(bucketMeta), metaNextID, 100) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open with a tail below the catalog's next id = %v, want ErrCorrupt", err)
	}
}

func TestTailIDs(t *testing.T) {
	t.Parallel()
	m := func(id sealmail.MessageID) Committed { return Committed{Kind: KindMessage, ID: id} }
	e := func(id sealmail.MessageID) Committed { return Committed{Kind: KindEnvelope, ID: id} }
	for _, tc := range []struct {
		name  string
		found []Committed
		next  sealmail.MessageID
		ok    bool
	}{
		{"empty", nil, 5, true},
		{"contiguous from next", []Committed{m(5), e(2), m(6), m(7)}, 5, true},
		{"above next (ids of a rolled-back commit)", []Committed{m(8), m(9)}, 5, true},
		{"below next", []Committed{m(4), m(5)}, 5, false},
		{"gap", []Committed{m(5), m(7)}, 5, false},
		{"envelope for a message stored earlier in the tail", []Committed{m(5), e(5)}, 5, true},
		{"envelope before its message", []Committed{e(5), m(5)}, 5, false},
		{"envelope for a message neither cataloged nor in the tail", []Committed{m(5), e(6)}, 5, false},
		{"tombstone for a cataloged message", []Committed{{Kind: KindTombstone, ID: 3}}, 5, true},
	} {
		if err := tailIDs(tc.found, tc.next); (err == nil) != tc.ok {
			t.Errorf("%s: tailIDs = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
