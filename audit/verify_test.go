// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tamperLog builds one file of 33 entries: 30 events and checkpoints after
// events 10, 20 and 30. Line k (k >= 2) holds seq k-1; checkpoints are seq
// 11, 22 and 33 on lines 12, 23 and 34. It returns the directory, the lines
// and the latest checkpoint (seq 32) as an external anchor.
func tamperLog(t *testing.T) (string, []string, Checkpoint) {
	t.Helper()
	dir, l := newLog(t, Options{ArchiveID: "tamper", CheckpointEvery: 10})
	appendN(t, l, 30)
	cp, ok := l.LatestCheckpoint()
	if !ok || cp.Seq != 32 {
		t.Fatalf("LatestCheckpoint = %d %v, want 32", cp.Seq, ok)
	}
	l.Close()
	lines := readLines(t, dir, 1)
	if len(lines) != 34 {
		t.Fatalf("%d lines, want 34", len(lines))
	}
	verifyClean(t, dir, cp)
	return dir, lines, cp
}

const f1 = "audit-000001.jsonl"

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		edit    func(lines []string) []string
		kind    ProblemKind
		line    int
		seq     uint64
		onlyExt bool // detected only with the external checkpoint
	}{
		{"edited field", func(ls []string) []string {
			ls[6] = strings.Replace(ls[6], `"actor":"user5"`, `"actor":"userX"`, 1)
			return ls
		}, ProblemChain, 7, 6, false},
		{"deleted line", func(ls []string) []string {
			return slices.Delete(ls, 7, 8) // seq 7
		}, ProblemSequence, 8, 8, false},
		{"reordered lines", func(ls []string) []string {
			ls[7], ls[8] = ls[8], ls[7] // seq 7 and 8
			return ls
		}, ProblemSequence, 8, 8, false},
		{"substituted line", func(ls []string) []string {
			e, err := ParseEntry([]byte(ls[7])) // seq 7, keep seq and prev
			if err != nil {
				t.Fatal(err)
			}
			p, _ := prepareEvent(Event{Type: TypeErase, Actor: "mallory", Fields: map[string]any{"id": 99}})
			ls[7] = string(p.appendLine(nil, e.Seq, e.Time, e.Prev))
			return ls
		}, ProblemChain, 8, 7, false},
		{"dropped checkpoint", func(ls []string) []string {
			return slices.Delete(ls, 22, 23) // seq 22
		}, ProblemSequence, 23, 23, false},
		{"altered checkpoint signature", func(ls []string) []string {
			i := strings.Index(ls[11], `"sig":"`) + len(`"sig":"`)
			b := []byte(ls[11])
			b[i] ^= 'A' ^ 'B'
			if b[i] == 'A'^'B'^'A' {
				b[i] = 'C'
			}
			ls[11] = string(b)
			return ls
		}, ProblemSignature, 12, 11, false},
		{"truncated after checkpoint", func(ls []string) []string {
			return ls[:20] // ends at seq 19: checkpoint 22 and 33 are gone
		}, ProblemTruncated, 0, 32, true},
		{"header replaced", func(ls []string) []string {
			ls[0] = strings.Replace(ls[0], `"archive":"tamper"`, `"archive":"tamper2"`, 1)
			return ls
		}, ProblemChain, 1, 0, false},
		{"torn line in the middle", func(ls []string) []string {
			ls[5] = ls[5][:40]
			return ls
		}, ProblemSyntax, 6, 5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, lines, ext := tamperLog(t)
			writeLines(t, dir, 1, tt.edit(slices.Clone(lines)))
			if tt.onlyExt {
				if r := verify(t, dir); !r.OK() {
					t.Errorf("Verify without external checkpoint: problems\n%s", problems(r))
				}
			}
			r := verify(t, dir, ext)
			file := f1
			if tt.kind == ProblemTruncated {
				file = ""
			}
			if !hasProblem(r, tt.kind, file, tt.line, tt.seq) {
				t.Errorf("Verify: want %s problem at %s:%d seq %d, got:\n%s", tt.kind, file, tt.line, tt.seq, problems(r))
			}
		})
	}
}

// TestVerifyFlippedBits flips one bit in bytes of an ordinary entry, a
// checkpoint entry and the header, and checks that each flip is reported at
// that line (as a location or, for a chain link, in the detail).
func TestVerifyFlippedBits(t *testing.T) {
	t.Parallel()
	dir, lines, ext := tamperLog(t)
	// Every byte of an ordinary entry; every third byte of the header and
	// of a checkpoint entry (keeps the test quick under -race).
	for _, c := range []struct{ idx, stride int }{{5, 1}, {0, 3}, {11, 3}} {
		idx := c.idx
		for i := 0; i < len(lines[idx]); i += c.stride {
			ls := slices.Clone(lines)
			b := []byte(ls[idx])
			b[i] ^= 0x01
			if b[i] == '\n' {
				continue // splits the line: covered by the syntax cases
			}
			ls[idx] = string(b)
			writeLines(t, dir, 1, ls)
			r := verify(t, dir, ext)
			if !names(r, f1, idx+1) {
				t.Fatalf("flip byte %d (%q) of line %d: not named; problems:\n%s", i, lines[idx][i], idx+1, problems(r))
			}
		}
	}
}

func TestVerifyMissingRotatedFile(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{MaxFileBytes: 1024})
	appendN(t, l, 40)
	l.Close()
	if err := os.Remove(filepath.Join(dir, fileName(2))); err != nil {
		t.Fatal(err)
	}
	r := verify(t, dir)
	if !hasProblem(r, ProblemFile, fileName(2), 0, 0) {
		t.Errorf("Verify: want missing %s, got:\n%s", fileName(2), problems(r))
	}
	if !hasProblem(r, ProblemSequence, fileName(3), 2, 0) {
		t.Errorf("Verify: want sequence gap at the start of %s, got:\n%s", fileName(3), problems(r))
	}
}

func TestVerifyTornRotatedFile(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{MaxFileBytes: 1024})
	appendN(t, l, 20)
	l.Close()
	lines := readLines(t, dir, 1)
	writeRaw(t, dir, 1, []byte(strings.Join(lines, "\n"))) // no final newline
	r := verify(t, dir)
	if !hasProblem(r, ProblemSyntax, f1, len(lines), 0) {
		t.Errorf("Verify: want syntax problem at %s:%d, got:\n%s", f1, len(lines), problems(r))
	}
}

// TestVerifyRewriteWithKey plays an attacker who holds the host and the
// signing key: they cut the log back to seq 20 and append different entries
// through the package itself, so chain and signatures are valid. Only the
// external checkpoint catches it.
func TestVerifyRewriteWithKey(t *testing.T) {
	t.Parallel()
	dir, lines, ext := tamperLog(t)
	writeLines(t, dir, 1, lines[:21])
	l, err := Open(dir, Options{CheckpointEvery: 10, Now: testClock()})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := l.Append(context.Background(), Event{Type: TypeAuthOK, Actor: "mallory"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	if r := verify(t, dir); !r.OK() {
		t.Fatalf("Verify without external checkpoint: problems\n%s", problems(r))
	}
	r := verify(t, dir, ext)
	if !hasProblem(r, ProblemExternal, f1, 33, 32) {
		t.Errorf("Verify: want external problem at %s:33 seq 32, got:\n%s", f1, problems(r))
	}
}

func TestVerifyForeignKey(t *testing.T) {
	t.Parallel()
	dir, _, ext := tamperLog(t)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	if err := os.WriteFile(filepath.Join(dir, pubFile), []byte(hex.EncodeToString(pub)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := verify(t, dir)
	for _, line := range []int{12, 23, 34} {
		if !hasProblem(r, ProblemSignature, f1, line, 0) {
			t.Errorf("Verify with foreign signing.pub: want signature problem at line %d, got:\n%s", line, problems(r))
		}
	}
	// With the external checkpoint as trust anchor the log verifies, but
	// the replaced signing.pub is reported.
	r = verify(t, dir, ext)
	if len(r.Problems) != 1 || r.Problems[0].Kind != ProblemKey {
		t.Errorf("Verify with external checkpoint: want one key problem, got:\n%s", problems(r))
	}
}

func TestVerifyExternalOtherLog(t *testing.T) {
	t.Parallel()
	dir, _, _ := tamperLog(t)
	_, _, other := tamperLog(t)
	r := verify(t, dir, other)
	if !hasProblem(r, ProblemExternal, f1, 33, 32) || !hasProblem(r, ProblemKey, pubFile, 0, 0) {
		t.Errorf("Verify with another log's checkpoint: got\n%s", problems(r))
	}
}
