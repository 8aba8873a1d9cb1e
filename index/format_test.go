// SPDX-License-Identifier: Apache-2.0

package index

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFormatVersion: an index of an older format version (or from before
// the FORMAT file) is removed at Open, with a log notice, and opened empty
// (no documents, no state), so that its caller indexes everything again;
// one of a newer version is refused and left alone.
func TestFormatVersion(t *testing.T) {
	ctx := context.Background()
	raw := []byte("From: a@example.com\r\nSubject: hello\r\n\r\nbody words\r\n")
	build := func(t *testing.T) string {
		dir := t.TempDir()
		x, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Apply(ctx, Batch{Docs: []Doc{{ID: 1, Raw: raw}}, State: []byte("cursor")}); err != nil {
			t.Fatal(err)
		}
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	reopen := func(t *testing.T, dir string) (docs int, state []byte, log string) {
		var buf bytes.Buffer
		x, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		n, err := x.Count(ctx, "*")
		if err != nil {
			t.Fatal(err)
		}
		st, err := x.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n, st, buf.String()
	}
	t.Run("current", func(t *testing.T) {
		n, st, log := reopen(t, build(t))
		if n != 1 || string(st) != "cursor" || log != "" {
			t.Fatalf("reopened current index: %d docs, state %q, log %q", n, st, log)
		}
	})
	for name, old := range map[string]func(dir string) error{
		"version 1, no FORMAT file": func(dir string) error { return os.Remove(filepath.Join(dir, formatFile)) },
		"FORMAT says 1": func(dir string) error {
			return os.WriteFile(filepath.Join(dir, formatFile), []byte("sealmail-index 1\n"), 0o600)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := build(t)
			if err := old(dir); err != nil {
				t.Fatal(err)
			}
			n, st, log := reopen(t, dir)
			if n != 0 || st != nil {
				t.Fatalf("old index reopened with %d docs, state %q; want it removed", n, st)
			}
			if !strings.Contains(log, "older format version") {
				t.Fatalf("no log notice of the removal: %q", log)
			}
			// And it is a working index of the current version again.
			if n, _, log := reopen(t, dir); n != 0 || log != "" {
				t.Fatalf("second reopen: %d docs, log %q", n, log)
			}
		})
	}
	t.Run("newer", func(t *testing.T) {
		dir := build(t)
		if err := os.WriteFile(filepath.Join(dir, formatFile), []byte("sealmail-index 99\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadDir(dir)
		_, err := Open(dir, Options{})
		if !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("Open of a version-99 index: %v, want ErrUnsupportedVersion", err)
		}
		after, _ := os.ReadDir(dir)
		if len(after) != len(before) {
			t.Fatalf("a refused index was changed: %d files, then %d", len(before), len(after))
		}
	})
}
