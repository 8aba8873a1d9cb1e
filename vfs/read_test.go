// SPDX-License-Identifier: Apache-2.0

package vfs

import (
	"bytes"
	"context"
	"errors"
	"io"
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
