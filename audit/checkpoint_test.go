// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func testCheckpoint(t testing.TB) Checkpoint {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := Checkpoint{
		Archive: "arch-7",
		Seq:     123456,
		Head:    hashLine([]byte("x")),
		Time:    time.Date(2026, 11, 27, 5, 6, 7, 890, time.UTC),
	}
	c.sign(priv)
	return c
}

func TestCheckpointTextRoundTrip(t *testing.T) {
	t.Parallel()
	c := testCheckpoint(t)
	text, err := c.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	wantPrefixes := []string{"sealmail audit checkpoint v1", "archive: arch-7", "seq: 123456", "head: " + c.Head.String(),
		"time: 2026-11-27T05:06:07.00000089Z", "key: ", "sig: "}
	if len(lines) != len(wantPrefixes) {
		t.Fatalf("MarshalText() = %q, want %d lines", text, len(wantPrefixes))
	}
	for i, p := range wantPrefixes {
		if !strings.HasPrefix(lines[i], p) {
			t.Errorf("MarshalText() line %d = %q, want prefix %q", i+1, lines[i], p)
		}
	}
	for _, variant := range []string{
		string(text),
		strings.ReplaceAll(string(text), "\n", "\r\n"),
		"\n\n" + strings.ReplaceAll(string(text), "\n", "  \n") + "\n\n",
		strings.TrimSuffix(string(text), "\n"),
	} {
		got, err := ParseCheckpoint([]byte(variant))
		if err != nil {
			t.Errorf("ParseCheckpoint(%q) = %v", variant, err)
			continue
		}
		if err := got.Verify(c.Key); err != nil {
			t.Errorf("ParseCheckpoint(%q).Verify() = %v", variant, err)
		}
		again, _ := got.MarshalText()
		if !bytes.Equal(again, text) {
			t.Errorf("ParseCheckpoint(%q).MarshalText() = %q, want %q", variant, again, text)
		}
	}
}

func TestParseCheckpointErrors(t *testing.T) {
	t.Parallel()
	c := testCheckpoint(t)
	text, _ := c.MarshalText()
	good := string(text)
	replace := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"title", replace("checkpoint v1", "checkpoint v2")},
		{"missing line", replace("seq: 123456\n", "")},
		{"extra line", good + "extra: 1\n"},
		{"key order", replace("archive: arch-7\nseq: 123456", "seq: 123456\narchive: arch-7")},
		{"seq sign", replace("seq: 123456", "seq: +123456")},
		{"seq leading zero", replace("seq: 123456", "seq: 0123456")},
		{"seq overflow", replace("seq: 123456", "seq: 99999999999999999999")},
		{"head short", replace("head: ", "head: 0")},
		{"head upper", replace("head: "+c.Head.String(), "head: "+strings.ToUpper(c.Head.String()))},
		{"time zone", replace("05:06:07.00000089Z", "06:06:07.00000089+01:00")},
		{"time noncanonical", replace("07.00000089Z", "07.000000890Z")},
		{"archive space", replace("archive: arch-7", "archive: arch 7")},
		{"sig short", replace("sig: ", "sig: AAAA")},
		{"no space after colon", replace("seq: ", "seq:")},
	}
	for _, tt := range tests {
		if got, err := ParseCheckpoint([]byte(tt.in)); err == nil {
			t.Errorf("ParseCheckpoint(%s) = %+v, want error", tt.name, got)
		}
	}
}

func TestCheckpointVerify(t *testing.T) {
	t.Parallel()
	c := testCheckpoint(t)
	if err := c.Verify(nil); err != nil {
		t.Errorf("Verify(nil) = %v", err)
	}
	other := testCheckpoint(t)
	if err := c.Verify(other.Key); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify(other key) = %v, want ErrBadSignature", err)
	}
	for name, edit := range map[string]func(*Checkpoint){
		"seq":     func(c *Checkpoint) { c.Seq++ },
		"head":    func(c *Checkpoint) { c.Head[0] ^= 1 },
		"time":    func(c *Checkpoint) { c.Time = c.Time.Add(time.Nanosecond) },
		"archive": func(c *Checkpoint) { c.Archive += "x" },
		"sig":     func(c *Checkpoint) { c.Sig = append([]byte(nil), c.Sig...); c.Sig[5] ^= 1 },
	} {
		d := c
		edit(&d)
		if err := d.Verify(c.Key); !errors.Is(err, ErrBadSignature) {
			t.Errorf("Verify after changing %s = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestLogCheckpointMatchesLog(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{CheckpointEvery: -1})
	es := appendN(t, l, 3)
	cp, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cp.Seq != 3 || cp.Head != es[2].Hash || cp.Archive != l.ArchiveID() {
		t.Errorf("Checkpoint() = seq %d head %s archive %q, want 3 %s %q", cp.Seq, cp.Head, cp.Archive, es[2].Hash, l.ArchiveID())
	}
	if err := cp.Verify(l.PublicKey()); err != nil {
		t.Errorf("Checkpoint().Verify() = %v", err)
	}
	l.Close()
	got, err := latestCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Close added a final checkpoint only if entries followed: the
	// checkpoint entry itself does not count.
	want, _ := cp.MarshalText()
	if text, _ := got.MarshalText(); !bytes.Equal(text, want) {
		t.Errorf("LatestCheckpoint() = %s, want %s", text, want)
	}
	text, _ := cp.MarshalText()
	parsed, err := ParseCheckpoint(text)
	if err != nil {
		t.Fatal(err)
	}
	if r := verifyClean(t, dir, parsed); r.External != 1 {
		t.Errorf("Report.External = %d, want 1", r.External)
	}
}

func TestParseCheckpoints(t *testing.T) {
	t.Parallel()
	a, b := testCheckpoint(t), testCheckpoint(t)
	b.Seq = 7
	ta, _ := a.MarshalText()
	tb, _ := b.MarshalText()
	text := "\n" + string(ta) + "\n\n" + strings.ReplaceAll(string(tb), "\n", "\r\n")
	cps, err := ParseCheckpoints([]byte(text))
	if err != nil || len(cps) != 2 || cps[0].Seq != a.Seq || cps[1].Seq != 7 {
		t.Fatalf("ParseCheckpoints = %d checkpoints, %v, want 2", len(cps), err)
	}
	if err := cps[0].Verify(a.Key); err != nil {
		t.Errorf("first checkpoint: Verify = %v", err)
	}
	if cps, err := ParseCheckpoints(nil); err != nil || len(cps) != 0 {
		t.Errorf("ParseCheckpoints(nil) = %v, %v, want none", cps, err)
	}
	for _, bad := range []string{"junk\n" + string(ta), string(ta) + "extra: x\n", string(ta)[:50]} {
		if _, err := ParseCheckpoints([]byte(bad)); err == nil {
			t.Errorf("ParseCheckpoints(%q) = nil error, want error", bad)
		}
	}
}

func TestCheckpointJSONRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := Create(dir, Options{ArchiveID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cp, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(struct{ C *Checkpoint }{&cp})
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ C *Checkpoint }
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	if got.C.String() != cp.String() || got.C.Verify(l.PublicKey()) != nil {
		t.Errorf("JSON round trip = %v, want %v", got.C, cp)
	}
}
