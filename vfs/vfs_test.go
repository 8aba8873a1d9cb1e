// SPDX-License-Identifier: Apache-2.0

package vfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealmail/sealmail/vfs"
)

func TestWriteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, content := range []string{"first", "second, longer", "3"} {
		if err := vfs.WriteFile(nil, p, []byte(content), 0o640); err != nil {
			t.Fatalf("WriteFile(%q): %v", content, err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("after WriteFile(%q) the file holds %q, %v", content, got, err)
		}
	}
	if _, err := os.Stat(p + vfs.TmpSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	if err := vfs.WriteFile(nil, filepath.Join(dir, "missing", "f"), nil, 0o600); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

func TestLock(t *testing.T) {
	t.Parallel()
	name := filepath.Join(t.TempDir(), "lock")
	l, err := vfs.Lock(nil, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file, so a second open in this
	// process conflicts as another process would.
	if _, err := vfs.Lock(nil, name, 0); !errors.Is(err, vfs.ErrLocked) {
		t.Fatalf("second Lock = %v, want ErrLocked", err)
	}
	if _, err := vfs.Lock(vfs.OS{}, name, 30_000_000); !errors.Is(err, vfs.ErrLocked) {
		t.Fatalf("second Lock with a wait = %v, want ErrLocked", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := vfs.Lock(nil, name, 0)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	l2.Close()
}

func TestSyncDir(t *testing.T) {
	t.Parallel()
	if err := vfs.SyncDir(nil, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := vfs.SyncDir(nil, filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SyncDir(missing) = %v, want ErrNotExist", err)
	}
}
