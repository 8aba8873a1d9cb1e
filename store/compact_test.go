// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/sealmail/sealmail"
)

func TestCompactReclaimsDeletedRecords(t *testing.T) {
	t.Parallel()
	s, ident := newStore(t, Options{SealSize: 1 << 10})
	ctx := context.Background()
	body := func(i int) string { return fmt.Sprintf("message %d %s", i, bytes.Repeat([]byte("y"), 2000+i)) }
	for i := 1; i <= 12; i++ {
		m := msg(body(i))
		if _, err := s.Append(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// Delete the odd ones (each is alone in its record: sequential appends).
	var dels []Deletion
	for id := sealmail.MessageID(1); id <= 12; id += 2 {
		dels = append(dels, Deletion{ID: id, Reason: "retention", Audit: 7})
	}
	if _, err := s.Delete(ctx, dels, time.Now()); err != nil {
		t.Fatal(err)
	}
	segs, _ := s.Segments()
	var before, after int64
	var reclaimed int
	for _, si := range segs {
		if si.State != SegmentSealed {
			continue
		}
		before += si.Size
		c, err := s.Compact(ctx, si.Seq, func(c *Compaction) (Intent, error) { reclaimed += len(c.Dropped); return 0, nil })
		if err != nil {
			t.Fatalf("Compact(%s): %v", si.Seq, err)
		}
		if c != nil && (c.NewSize >= c.OldSize || c.NewSHA256 == c.OldSHA256) {
			t.Errorf("Compact(%s) = %d → %d bytes", si.Seq, c.OldSize, c.NewSize)
		}
		if _, err := os.Stat(segmentPath(s.dir, si.Seq)); c != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("old file of segment %s still there: %v", si.Seq, err)
		}
	}
	segs, _ = s.Segments()
	for _, si := range segs {
		if si.State == SegmentSealed {
			after += si.Size
		}
	}
	if reclaimed == 0 || after >= before {
		t.Fatalf("compaction dropped %d entries, sealed bytes %d → %d", reclaimed, before, after)
	}
	for id := sealmail.MessageID(1); id <= 12; id++ {
		_, _, err := s.Records(id)
		if id%2 == 1 {
			var de *DeletedError
			if !errors.As(err, &de) || de.Audit != 7 {
				t.Errorf("Records(%d) of a deleted message = %v", id, err)
			}
			continue
		}
		if p := get(t, s, id, ident); string(p[0].Original) != body(int(id)) {
			t.Errorf("message %d after compaction: %.20q", id, p[0].Original)
		}
	}
	res, err := s.Verify(ctx, nil)
	if err != nil || len(res.Findings) != 0 {
		t.Fatalf("Verify after compaction: %v %v", err, res.Findings)
	}
	// A stale file (as an interrupted compaction leaves) is removed at Open.
	dir := s.Dir()
	stale := segmentPath(dir, 1) // the old generation's name
	os.WriteFile(stale, []byte("stale"), 0o400)
	s.Close()
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if si, _ := s2.segment(1); si.Gen > 0 {
		if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale segment file not removed at Open: %v", err)
		}
	}
	if res, _ := s2.Verify(ctx, nil); len(res.Findings) != 0 {
		t.Errorf("Verify after reopen: %v", res.Findings)
	}
}
