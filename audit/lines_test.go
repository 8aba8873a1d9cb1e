// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"context"
	"testing"
)

// TestLinesReadsTheChain: the lines Lines returns across rotated files are
// the stored ones (each line's hash is the next entry's prev, the first
// chains to the genesis header, checkpoints included), in pages that
// continue where the last stopped and from any other seq, and never beyond
// upTo.
func TestLinesReadsTheChain(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{MaxFileBytes: 2048, CheckpointEvery: 7})
	appendN(t, l, 60)
	head, _ := l.Head()
	ls := NewLines(dir)
	genesis, err := ls.Genesis()
	if err != nil {
		t.Fatal(err)
	}
	if arch, file, err := ParseHeader(genesis); err != nil || arch != l.ArchiveID() || file != 1 {
		t.Fatalf("ParseHeader(genesis) = %q, %d, %v", arch, file, err)
	}
	ctx := context.Background()
	prev, seq := HashLine(genesis), uint64(0)
	checkpoints := 0
	for seq < head {
		n := 0
		err := ls.Read(ctx, seq, head, func(s uint64, line []byte) bool {
			if n == 9 {
				return false // a page of 9
			}
			e, err := ParseEntry(line)
			if err != nil || e.Seq != s || s != seq+1 || e.Prev != prev {
				t.Fatalf("line %d: %v, seq %d, prev %s; want seq %d chained to %s", s, err, e.Seq, e.Prev, seq+1, prev)
			}
			if e.Type == TypeCheckpoint {
				cp, err := CheckpointOf(e)
				if err != nil || cp.Verify(l.PublicKey()) != nil || cp.Seq != seq || cp.Head != prev {
					t.Fatalf("checkpoint at %d: %+v, %v", s, cp, err)
				}
				checkpoints++
			}
			prev, seq = e.Hash, s
			n++
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("no progress after seq %d of %d", seq, head)
		}
	}
	if checkpoints == 0 {
		t.Error("no checkpoint among the lines")
	}
	files, _ := listFiles(dir)
	if len(files) < 3 {
		t.Fatalf("%d files: the test wants rotations", len(files))
	}
	// From scratch (no position to continue from), in the middle of a
	// rotated file, and bounded above.
	var got []uint64
	if err := NewLines(dir).Read(ctx, 20, 24, func(s uint64, _ []byte) bool { got = append(got, s); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0] != 21 || got[3] != 24 {
		t.Errorf("Read(20, 24) = %v, want 21..24", got)
	}
	if err := ls.Read(ctx, head, head, func(uint64, []byte) bool { t.Fatal("a line after the head"); return true }); err != nil {
		t.Fatal(err)
	}
}
