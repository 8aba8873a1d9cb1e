// SPDX-License-Identifier: Apache-2.0

package offsite

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"

	"github.com/sealmail/sealmail/vfs/vfstest"
)

// TestBackupPowerLoss cuts the power just before and just after every file
// operation of an incremental backup into a target that holds a backup
// already (vfstest keeps only what was fsync'd, and only the directory
// entries that were), then checks that the target still holds a complete,
// verifiable backup that restores byte-exact: the new one if its manifest
// was durable, else the previous one. Then a further backup into that
// target must succeed and leave nothing but what its manifest names.
func TestBackupPowerLoss(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	id := newIdentity(t)
	s1, s2 := states()
	o := Options{Archive: "a1", Checkpoint: "cp", Program: "test"}
	base := t.TempDir()
	if _, err := Backup(ctx, openTarget(t, base, nil), o, s1.sources(t, id.Recipient())); err != nil {
		t.Fatal(err)
	}
	src2 := s2.sources(t, id.Recipient())

	// Count the operations of the second backup.
	probe := copyDir(t, base)
	cfs, err := vfstest.New(probe, vfstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Backup(ctx, openTarget(t, probe, cfs), o, src2); err != nil {
		t.Fatal(err)
	}
	ops := cfs.Ops()
	if ops < 30 {
		t.Fatalf("the backup made only %d file operations: is the FS in use?", ops)
	}
	for op := 1; op <= ops; op++ {
		for _, after := range []bool{false, true} {
			dir := copyDir(t, base)
			cfs, err := vfstest.New(dir, vfstest.Options{CrashAt: op, CrashAfter: after, TornWrites: true})
			if err != nil {
				t.Fatal(err)
			}
			_, berr := Backup(ctx, openTarget(t, dir, cfs), o, src2)
			crashed, at := cfs.Crashed()
			if !crashed {
				t.Fatalf("op %d (after %v): no crash; backup: %v", op, after, berr)
			}
			if err := cfs.Restore(); err != nil {
				t.Fatal(err)
			}
			m := checkRestoresQuiet(t, dir, id, s1, s2)
			if m == nil {
				t.Fatalf("power cut %s: no usable backup left", at)
			}
			if !after && m.Seq == 2 && op < ops {
				// The manifest can only be durable after its directory sync.
				if f, _ := os.ReadFile(filepath.Join(dir, "manifests", "00000002.json")); len(f) == 0 {
					t.Errorf("power cut %s: seq 2 without its manifest", at)
				}
			}
			// The next backup cleans up and stands alone.
			r, err := Backup(ctx, openTarget(t, dir, noSync(t, dir)), o, src2)
			if err != nil {
				t.Fatalf("power cut %s: the next backup: %v", at, err)
			}
			if n := objectsOnDisk(t, dir); n != partsIn(r.Manifest) {
				t.Errorf("power cut %s: after the next backup the target holds %d objects, the manifest names %d", at, n, partsIn(r.Manifest))
			}
		}
	}
}

// checkRestoresQuiet checks the newest backup in dir against whichever of
// s1 (seq 1) and s2 (seq 2) it is, and returns its manifest.
func checkRestoresQuiet(t *testing.T, dir string, id age.Identity, s1, s2 archiveState) *Manifest {
	t.Helper()
	m, err := Latest(context.Background(), openTarget(t, dir, nil))
	if err != nil {
		t.Errorf("Latest: %v", err)
		return nil
	}
	want := s1
	if m.Seq == 2 {
		want = s2
	}
	return checkRestores(t, dir, id, want)
}

func partsIn(m *Manifest) int {
	n := 0
	for _, f := range m.Files {
		n += len(f.Parts)
	}
	return n
}

// objectsOnDisk counts the files under dir/data.
func objectsOnDisk(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// copyDir copies the tree at src into a new temp dir, modes included.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "target")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}
