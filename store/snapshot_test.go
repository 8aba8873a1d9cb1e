// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sealmail/sealmail"
)

// TestSnapshotStaysConsistent takes a snapshot, then appends, seals and
// compacts a segment away under it: the snapshot's catalog copy and
// segment bytes stay those of its moment (the sealed segments' SHA-256
// match, the active one ends at its committed length), and Close of the
// store closes a snapshot left open.
func TestSnapshotStaysConsistent(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, Options{SealSize: 1 << 10})
	ctx := context.Background()
	body := func(i int) string { return fmt.Sprintf("message %d %s", i, bytes.Repeat([]byte("z"), 1500+i)) }
	for i := 1; i <= 6; i++ {
		if _, err := s.Append(ctx, msg(body(i))); err != nil {
			t.Fatal(err)
		}
	}
	var cat bytes.Buffer
	sn, err := s.Snapshot(&cat)
	if err != nil {
		t.Fatal(err)
	}
	if sn.CatalogSize() != int64(cat.Len()) {
		t.Errorf("CatalogSize %d, wrote %d", sn.CatalogSize(), cat.Len())
	}
	// After the snapshot: more mail, and segment 1's only record deleted
	// and compacted away (its file replaced).
	for i := 7; i <= 9; i++ {
		if _, err := s.Append(ctx, msg(body(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Delete(ctx, []Deletion{{ID: sealmail.MessageID(1), Reason: "retention", Audit: 1}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	c, err := s.Compact(ctx, 1, func(*Compaction) (Intent, error) { return 0, nil })
	if err != nil || c == nil {
		t.Fatalf("Compact(1): %v %v", c, err)
	}
	if _, err := os.Stat(segmentPath(s.dir, 1)); !os.IsNotExist(err) {
		t.Fatalf("segment 1's old file is still there: %v", err)
	}
	segs := sn.Segments()
	if len(segs) < 3 || segs[0].State != SegmentSealed || segs[len(segs)-1].State != SegmentActive {
		t.Fatalf("snapshot segments: %+v", segs)
	}
	for _, si := range segs {
		r, err := sn.Segment(si.Seq)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		if err != nil || int64(len(b)) != si.Size {
			t.Fatalf("segment %s: %d bytes, %v; want %d", si.Seq, len(b), err, si.Size)
		}
		if si.State == SegmentSealed && sha256.Sum256(b) != si.SHA256 {
			t.Errorf("segment %s: bytes do not hash to the SHA-256 sealed", si.Seq)
		}
		if _, n, err := Scan(bytes.NewReader(b), func(ScannedRecord) error { return nil }); err != nil || n != si.Size {
			t.Errorf("segment %s: scan to %d, %v", si.Seq, n, err)
		}
	}
	// The catalog copy is a bbolt file of that moment: message 1 live, 7
	// unknown.
	p := filepath.Join(t.TempDir(), "catalog.db")
	if err := os.WriteFile(p, cat.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(p, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		m, err := decodeMessage(1, tx.Bucket(bucketMessages).Get(idKey(1)))
		if err != nil || m.State != StateLive {
			t.Errorf("catalog copy: message 1 %+v %v, want live", m, err)
		}
		if tx.Bucket(bucketMessages).Get(idKey(7)) != nil {
			t.Error("catalog copy knows message 7, stored after the snapshot")
		}
		return nil
	})
	// Left open, the snapshot is closed by the store's Close.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Segment(segs[0].Seq); err == nil {
		t.Error("the snapshot is still open after the store closed")
	}
}
