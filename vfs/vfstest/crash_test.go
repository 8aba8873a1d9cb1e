// SPDX-License-Identifier: Apache-2.0

package vfstest_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealmail/sealmail/vfs"
	"github.com/sealmail/sealmail/vfs/vfstest"
)

func newFS(t *testing.T, files map[string]string, opts vfstest.Options) (string, *vfstest.CrashFS) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := vfstest.New(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return dir, c
}

func content(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestUnsyncedWriteIsLost(t *testing.T) {
	t.Parallel()
	dir, c := newFS(t, map[string]string{"f": "durable"}, vfstest.Options{})
	p := filepath.Join(dir, "f")
	f, err := c.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.Write([]byte(" synced"))
	must(t, err)
	must(t, f.Sync())
	_, err = f.Write([]byte(" unsynced"))
	must(t, err)
	must(t, f.Close())
	if got := content(t, p); got != "durable synced unsynced" {
		t.Fatalf("before the crash the file holds %q", got)
	}
	must(t, c.Restore())
	if got := content(t, p); got != "durable synced" {
		t.Errorf("after the crash the file holds %q, want only the synced bytes", got)
	}
}

func TestTornWrites(t *testing.T) {
	t.Parallel()
	dir, c := newFS(t, map[string]string{"f": "durable"}, vfstest.Options{TornWrites: true})
	p := filepath.Join(dir, "f")
	f, err := c.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.Write([]byte("12345678"))
	must(t, err)
	must(t, f.Close())
	must(t, c.Restore())
	if got := content(t, p); got != "durable1234" {
		t.Errorf("after the crash the file holds %q, want the durable bytes and half of the unsynced ones", got)
	}
}

func TestUnsyncedTruncateIsLost(t *testing.T) {
	t.Parallel()
	dir, c := newFS(t, map[string]string{"f": "0123456789"}, vfstest.Options{})
	p := filepath.Join(dir, "f")
	f, err := c.OpenFile(p, os.O_RDWR, 0)
	must(t, err)
	must(t, f.Truncate(4))
	must(t, f.Close())
	must(t, c.Restore())
	if got := content(t, p); got != "0123456789" {
		t.Errorf("after the crash the file holds %q, want the untruncated content", got)
	}
}

func TestSyncedFileWithoutDirSyncIsLost(t *testing.T) {
	t.Parallel()
	dir, c := newFS(t, map[string]string{"sub/old": "x"}, vfstest.Options{})
	p := filepath.Join(dir, "sub", "new")
	f, err := c.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	must(t, err)
	_, err = f.Write([]byte("data"))
	must(t, err)
	must(t, f.Sync())
	must(t, f.Close())
	// Syncing another directory does not help.
	must(t, c.SyncDir(dir))
	must(t, c.Restore())
	if got := content(t, p); got != "<missing>" {
		t.Errorf("a synced file whose directory entry was never synced holds %q after the crash, want it missing", got)
	}
	if got := content(t, filepath.Join(dir, "sub", "old")); got != "x" {
		t.Errorf("the durable neighbour holds %q", got)
	}

	// With the directory synced it survives, with only its synced bytes.
	f, err = c.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	must(t, err)
	_, err = f.Write([]byte("data"))
	must(t, err)
	must(t, f.Sync())
	must(t, c.SyncDir(filepath.Join(dir, "sub")))
	_, err = f.Write([]byte(" more"))
	must(t, err)
	must(t, f.Close())
	must(t, c.Restore())
	if got := content(t, p); got != "data" {
		t.Errorf("after dir sync the file holds %q, want %q", got, "data")
	}
}

func TestRenameWithoutDirSyncReverts(t *testing.T) {
	t.Parallel()
	dir, c := newFS(t, map[string]string{"a": "A", "b": "B"}, vfstest.Options{})
	must(t, c.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")))
	must(t, c.Remove(filepath.Join(dir, "b")))
	if got := content(t, filepath.Join(dir, "a")) + content(t, filepath.Join(dir, "b")); got != "<missing><missing>" {
		t.Fatalf("before the crash: %q", got)
	}
	must(t, c.Restore())
	if a, b := content(t, filepath.Join(dir, "a")), content(t, filepath.Join(dir, "b")); a != "A" || b != "B" {
		t.Errorf("after the crash a=%q b=%q, want the names as they were", a, b)
	}
	must(t, c.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")))
	must(t, c.SyncDir(dir))
	must(t, c.Restore())
	if a, b := content(t, filepath.Join(dir, "a")), content(t, filepath.Join(dir, "b")); a != "<missing>" || b != "A" {
		t.Errorf("after a synced rename a=%q b=%q, want a missing and b=A", a, b)
	}
}

func TestMkdirNeedsParentSync(t *testing.T) {
	t.Parallel()
	dir, c := newFS(t, nil, vfstest.Options{})
	sub := filepath.Join(dir, "x", "y")
	must(t, c.MkdirAll(sub, 0o700))
	f, err := c.OpenFile(filepath.Join(sub, "f"), os.O_WRONLY|os.O_CREATE, 0o600)
	must(t, err)
	must(t, f.Sync())
	f.Close()
	must(t, c.SyncDir(sub)) // the file's entry, but not x nor y
	must(t, c.Restore())
	if _, err := os.Stat(filepath.Join(dir, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an unsynced directory survived: %v", err)
	}
}

// TestCrashAt cuts the power at every operation of vfs.WriteFile: the file
// then holds its old or its new content, never anything else, and every
// operation after the crash fails.
func TestCrashAt(t *testing.T) {
	t.Parallel()
	var total int
	for n := 1; ; n++ {
		dir, c := newFS(t, map[string]string{"f": "old", "catalog.db": "cat1"}, vfstest.Options{CrashAt: n, External: []string{"catalog.db"}})
		p := filepath.Join(dir, "f")
		err := vfs.WriteFile(c, p, []byte("new"), 0o600)
		crashed, at := c.Crashed()
		if !crashed {
			if err != nil {
				t.Fatal(err)
			}
			total = n - 1
			break
		}
		if !errors.Is(err, vfstest.ErrCrashed) {
			t.Fatalf("crash at %s: WriteFile = %v, want ErrCrashed", at, err)
		}
		if err := c.Remove(p); !errors.Is(err, vfstest.ErrCrashed) {
			t.Errorf("Remove after the crash = %v, want ErrCrashed", err)
		}
		// An external file changed after the crash gets its state at the
		// crash back.
		must(t, os.WriteFile(filepath.Join(dir, "catalog.db"), []byte("cat2, after the crash"), 0o600))
		must(t, c.Restore())
		if got := content(t, p); got != "old" {
			t.Errorf("crash at %s: file holds %q", at, got)
		}
		if got := content(t, filepath.Join(dir, "catalog.db")); got != "cat1" {
			t.Errorf("crash at %s: catalog.db holds %q, want its state at the crash", at, got)
		}
		if _, err := os.Stat(p + vfs.TmpSuffix); err == nil && n <= 2 {
			t.Errorf("crash at %s: an unsynced temporary file survived", at)
		}
		if c.Ops() != 0 {
			t.Errorf("Ops after Restore = %d", c.Ops())
		}
	}
	// create, write, sync, rename, syncdir.
	if total != 5 {
		t.Errorf("WriteFile made %d mutating operations, want 5", total)
	}

	// Just after each operation: only the directory sync makes it new.
	for n := 1; n <= total; n++ {
		dir, c := newFS(t, map[string]string{"f": "old"}, vfstest.Options{CrashAt: n, CrashAfter: true})
		p := filepath.Join(dir, "f")
		err := vfs.WriteFile(c, p, []byte("new"), 0o600)
		_, at := c.Crashed()
		if n < total && !errors.Is(err, vfstest.ErrCrashed) || n == total && err != nil {
			t.Errorf("crash %s: WriteFile = %v", at, err)
		}
		must(t, c.Restore())
		want := "old"
		if n == total {
			want = "new"
		}
		if got := content(t, p); got != want {
			t.Errorf("crash %s: file holds %q, want %q", at, got, want)
		}
	}
}
