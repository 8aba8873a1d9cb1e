// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// TestExtents copies a rotating log as of a checkpoint, as a backup does,
// while it grows: the copy ends with the checkpoint entry, the files before
// the last are whole, and the copy verifies (through VerifyFS) against the
// checkpoint as an external one.
func TestExtents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, l := newLog(t, Options{MaxFileBytes: 2000, CheckpointEvery: -1})
	appendN(t, l, 20)
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 15) // the log goes on; the copy must not
	exts, err := Extents(dir, cp.Seq+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(exts) < 3 {
		t.Fatalf("Extents: %d files, want a rotated log", len(exts))
	}
	copyFS := fstest.MapFS{}
	for i, e := range exts {
		if e.Last != (i == len(exts)-1) {
			t.Errorf("extent %d (%s): Last %v", i, e.Name, e.Last)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name))
		if err != nil {
			t.Fatal(err)
		}
		if !e.Last && int64(len(b)) != e.Size {
			t.Errorf("rotated file %s: extent %d bytes, file %d", e.Name, e.Size, len(b))
		}
		copyFS[e.Name] = &fstest.MapFile{Data: b[:e.Size]}
	}
	last := copyFS[exts[len(exts)-1].Name].Data
	if !bytes.HasSuffix(last, []byte("\n")) || !bytes.Contains(last[bytes.LastIndexByte(last[:len(last)-1], '\n'):], []byte(`"type":"checkpoint"`)) {
		t.Errorf("the copy does not end with the checkpoint line: %q", last[max(0, len(last)-200):])
	}
	pub, _ := os.ReadFile(filepath.Join(dir, pubFile))
	copyFS[pubFile] = &fstest.MapFile{Data: pub}
	rep, err := VerifyFS(ctx, copyFS, "copy", []Checkpoint{cp})
	if err != nil || !rep.OK() || rep.LastSeq != cp.Seq+1 || rep.External != 1 {
		t.Fatalf("VerifyFS of the copy: %v, last %d (want %d), external %d, %v", err, rep.LastSeq, cp.Seq+1, rep.External, rep.Problems)
	}
	if _, err := Extents(dir, 1000); err == nil {
		t.Error("Extents of an entry not in the log: no error")
	}
}
