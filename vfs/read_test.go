// SPDX-License-Identifier: Apache-2.0

package vfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPace: readers of a pace cannot read faster than its rate, across
// readers, and stop when its context ends.
func TestPace(t *testing.T) {
	t.Parallel()
	p := NewPace(context.Background(), 4<<20)
	began := time.Now()
	for range 2 {
		n, err := io.Copy(io.Discard, p.Reader(bytes.NewReader(make([]byte, 512<<10))))
		if err != nil || n != 512<<10 {
			t.Fatal(n, err)
		}
	}
	if took := time.Since(began); took < 240*time.Millisecond {
		t.Errorf("1 MiB at 4 MiB/s read in %v, want at least 250ms", took)
	}
	ctx, cancel := context.WithCancel(context.Background())
	slow := NewPace(ctx, 1<<10)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := io.Copy(io.Discard, slow.Reader(bytes.NewReader(make([]byte, 1<<20)))); !errors.Is(err, context.Canceled) {
		t.Errorf("a paced copy after its context ended: %v, want context.Canceled", err)
	}
}

// TestContextReader: a read after the context ended fails with its error.
func TestContextReader(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	r := ContextReader(ctx, bytes.NewReader([]byte("abc")))
	if b := make([]byte, 1); func() error { _, err := r.Read(b); return err }() != nil {
		t.Fatal("a read before the end failed")
	}
	cancel()
	if _, err := io.ReadAll(r); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadAll after cancel: %v, want context.Canceled", err)
	}
}

// TestWriteFrom: the content arrives under path with its mode; a check
// that refuses leaves path as it was and no temporary file.
func TestWriteFrom(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	ctx := context.Background()
	if n, err := WriteFrom(ctx, nil, path, strings.NewReader("first"), 0o444, nil); err != nil || n != 5 {
		t.Fatalf("WriteFrom = %d, %v", n, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("after WriteFrom: %v, %v; want mode 0444", fi, err)
	}
	refuse := errors.New("wrong digest")
	if _, err := WriteFrom(ctx, nil, path, strings.NewReader("second"), 0o600, func(int64) error { return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("WriteFrom with a refusing check: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Errorf("path after a refused write = %q, want the old content", b)
	}
	if _, err := os.Stat(path + TmpSuffix); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
}
