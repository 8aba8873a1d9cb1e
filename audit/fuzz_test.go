// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseEntry checks that the line parser never panics, that an accepted
// line's hash is the hash of its bytes, and that re-encoding an accepted
// entry gives a line that parses to the same entry.
func FuzzParseEntry(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "audit")
	l, err := Create(dir, Options{CheckpointEvery: 2, Now: testClock()})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	for _, ev := range []Event{
		{Type: TypeIngest, Actor: "smtpd", Fields: map[string]any{"id": 1, "size": 1234, "digest": "ab"}},
		{Type: TypeAuthFail, Actor: "bob ü \"quoted\"", Fields: map[string]any{"remote": "192.0.2.1:4567", "nested": map[string]any{"a": []int{1, 2}}}},
		{Type: TypeDaemonStart},
	} {
		if _, err := l.Append(ctx, ev); err != nil {
			f.Fatal(err)
		}
	}
	l.Close()
	b, err := readFileBytes(dir)
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f.Add([]byte(line))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"seq":1,"time":"2026-01-02T03:04:05Z","type":"x","actor":"","fields":{},"prev":"` + strings.Repeat("0", 64) + `"}`))
	f.Add([]byte(`{"seq":1,"time":"2026-01-02T03:04:05+01:00","type":"x","actor":"","fields":null,"prev":""}`))
	f.Add([]byte(`{"seq":18446744073709551615,"time":"2026-01-02T03:04:05.123456789Z","type":"a.b-c_d","actor":"\u0000","fields":{"n":1e400},"prev":"` + strings.Repeat("f", 64) + `"} `))

	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseEntry(line)
		if err != nil {
			return
		}
		if want := hashLine(bytes.TrimSuffix(line, []byte("\n"))); e.Hash != want {
			t.Fatalf("ParseEntry(%q).Hash = %s, want %s", line, e.Hash, want)
		}
		p, err := prepareEvent(Event{Type: e.Type, Actor: e.Actor, Fields: e.Fields})
		if err != nil {
			return // e.g. a field too large to re-encode within the limit
		}
		again := p.appendLine(nil, e.Seq, e.Time, e.Prev)
		e2, err := ParseEntry(again)
		if err != nil {
			t.Fatalf("ParseEntry(re-encoded %q) = %v (from %q)", again, err, line)
		}
		if e2.Seq != e.Seq || !e2.Time.Equal(e.Time) || e2.Type != e.Type || e2.Actor != e.Actor || e2.Prev != e.Prev {
			t.Fatalf("re-encoded entry %+v, want %+v", e2, e)
		}
		if e.Type == TypeCheckpoint {
			checkpointFromEntry(e) // must not panic
		}
	})
}

// FuzzParseCheckpoint checks that the text parsers never panic and that an
// accepted checkpoint marshals to a canonical text that parses back equal.
func FuzzParseCheckpoint(f *testing.F) {
	c := testCheckpoint(f)
	text, _ := c.MarshalText()
	f.Add(text)
	f.Add(bytes.ReplaceAll(text, []byte("\n"), []byte("\r\n")))
	f.Add([]byte("sealmail audit checkpoint v1\narchive: a\nseq: 0\nhead: " + strings.Repeat("0", 64) +
		"\ntime: 2026-01-01T00:00:00Z\nkey: " + strings.Repeat("0", 64) + "\nsig: " + strings.Repeat("A", 86) + "==\n"))
	f.Add([]byte("sealmail audit checkpoint v1\n"))
	f.Add([]byte(""))
	f.Add(append(append([]byte{}, text...), text...))
	f.Fuzz(func(t *testing.T, in []byte) {
		ParseCheckpoints(in) // must not panic
		c, err := ParseCheckpoint(in)
		if err != nil {
			return
		}
		c.Verify(nil) // must not panic
		out, err := c.MarshalText()
		if err != nil {
			t.Fatalf("MarshalText of parsed %q = %v", in, err)
		}
		c2, err := ParseCheckpoint(out)
		if err != nil {
			t.Fatalf("ParseCheckpoint(MarshalText()) = %v for %q", err, out)
		}
		out2, _ := c2.MarshalText()
		if !bytes.Equal(out, out2) || c2.Seq != c.Seq || c2.Head != c.Head || !c2.Time.Equal(c.Time) || c2.Archive != c.Archive {
			t.Fatalf("round trip changed %q to %q", out, out2)
		}
	})
}

func readFileBytes(dir string) ([]byte, error) {
	return os.ReadFile(filepath.Join(dir, fileName(1)))
}
