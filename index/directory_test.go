// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLoadIgnoresForeignSegmentLocks: a segment file that another open
// file description holds LOCK_EX on (as a child process forked while Bluge
// wrote it holds until it execs) is still loaded. With Bluge's own
// directory the open fails with EAGAIN.
func TestLoadIgnoresForeignSegmentLocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	x, err := Open(dir, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	raw := msg("alice@corp.example", "bob@corp.example", "quarterly report", "", "the figures are attached")
	if err := x.Add(context.Background(), []Doc{{ID: 1, Raw: raw}}); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("segment files: %v, %v", segs, err)
	}
	for _, s := range segs {
		f, err := os.Open(s)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			t.Fatalf("flock %s: %v", s, err)
		}
	}
	// The wait: a sandbox child forked by a parallel test may hold the LOCK
	// file's open file description for a moment (the same effect).
	x, err = Open(dir, Options{Workers: 1, LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("Open with segment files locked elsewhere: %v", err)
	}
	defer x.Close()
	if got := ids(t, x, "quarterly"); len(got) != 1 || got[0] != 1 {
		t.Errorf("IDs(quarterly) = %v, want [1]", got)
	}
	if !strings.HasSuffix(segs[0], ".seg") {
		t.Fatalf("unexpected segment name %s", segs[0])
	}
}
