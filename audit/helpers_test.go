// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testClock returns a clock that advances one second per call, so entry
// times are distinct and predictable.
func testClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func newLog(t *testing.T, opts Options) (string, *Log) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "audit")
	if opts.Now == nil {
		opts.Now = testClock()
	}
	l, err := Create(dir, opts)
	if err != nil {
		t.Fatalf("Create(%q) = %v", dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return dir, l
}

func appendN(t *testing.T, l *Log, n int) []Entry {
	t.Helper()
	var es []Entry
	for i := range n {
		e, err := l.Append(context.Background(), Event{
			Type:   TypeIngest,
			Actor:  fmt.Sprintf("user%d", i),
			Fields: map[string]any{"id": i + 1, "segment": 7},
		})
		if err != nil {
			t.Fatalf("Append #%d = %v", i, err)
		}
		es = append(es, e)
	}
	return es
}

func readLines(t *testing.T, dir string, n int) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, fileName(n)))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	return strings.Split(s, "\n")
}

func writeLines(t *testing.T, dir string, n int, lines []string) {
	t.Helper()
	writeRaw(t, dir, n, []byte(strings.Join(lines, "\n")+"\n"))
}

func writeRaw(t *testing.T, dir string, n int, b []byte) {
	t.Helper()
	path := filepath.Join(dir, fileName(n))
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func verify(t *testing.T, dir string, ext ...Checkpoint) *Report {
	t.Helper()
	r, err := Verify(context.Background(), dir, ext)
	if err != nil {
		t.Fatalf("Verify(%q) = %v", dir, err)
	}
	return r
}

func verifyClean(t *testing.T, dir string, ext ...Checkpoint) *Report {
	t.Helper()
	r := verify(t, dir, ext...)
	if !r.OK() {
		t.Fatalf("Verify(%q) problems:\n%s", dir, problems(r))
	}
	return r
}

func problems(r *Report) string {
	var b strings.Builder
	for _, p := range r.Problems {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

// hasProblem reports whether r has a problem of kind at file:line with seq
// (seq 0 and line 0 match anything).
func hasProblem(r *Report, kind ProblemKind, file string, line int, seq uint64) bool {
	for _, p := range r.Problems {
		if p.Kind == kind && p.File == file && (line == 0 || p.Line == line) && (seq == 0 || p.Seq == seq) {
			return true
		}
	}
	return false
}

// names reports whether some problem points at file:line, either as its
// location or in its detail (a chain problem names both lines of the link).
func names(r *Report, file string, line int) bool {
	ref := fmt.Sprintf("%s:%d:", file, line)
	for _, p := range r.Problems {
		if p.File == file && p.Line == line || strings.Contains(p.Detail, ref) {
			return true
		}
	}
	return false
}
