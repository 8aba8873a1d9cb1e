// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/store"
	"github.com/sealmail/sealmail/store/storetest"
)

// The v1 fixture (store/testdata/formats/v1) is a small archive written by
// format version 1: two dozen messages with duplicates and one erased, one
// sealed and one active segment, the audit log, and the identity that
// decrypts it. It is generated once and then frozen: every build must open,
// list, read and verify it (TestV1Fixture), forever. A new format version
// adds a v2 fixture beside it; this one is never regenerated.
//
//	go test ./archive -run TestGenerateV1Fixture -generate-v1-fixture
var generateV1 = flag.Bool("generate-v1-fixture", false, "write store/testdata/formats/v1 (only once, for a new format version)")

const v1Dir = "../store/testdata/formats/v1"

// fixtureMessage is one expected message of a fixture (expected.json).
type fixtureMessage struct {
	ID       uint64 `json:"id"`
	State    string `json:"state"`
	Receipts int    `json:"receipts"`
	SHA256   string `json:"sha256"` // of the original
}

func TestGenerateV1Fixture(t *testing.T) {
	if !*generateV1 {
		t.Skip("writes the frozen v1 fixture; run with -generate-v1-fixture")
	}
	if err := os.RemoveAll(v1Dir); err != nil {
		t.Fatal(err)
	}
	ident, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(v1Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v1Dir, "identity.txt"), []byte(ident.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(v1Dir, "archive")
	clk := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { clk = clk.Add(time.Second); return clk }
	a, err := Create(dir, []string{ident.Recipient().String()}, Options{MinFreeBytes: -1, Now: now, Store: store.Options{SealSize: 12 << 10, Now: now}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithActor(context.Background(), "fixture")
	originals := map[sealmail.MessageID][]byte{}
	for i := range 24 {
		n := i
		if i%7 == 6 {
			n = i - 3 // a second copy of an earlier message
		}
		m := []byte(fmt.Sprintf("From: sender%d@example.com\r\nTo: archive@example.org\r\nSubject: fixture message %d\r\n\r\n%s\r\n",
			n, n, strings.Repeat(fmt.Sprintf("body line of message %d\r\n", n), 10+n*3)))
		env := &sealmail.Envelope{MailFrom: fmt.Sprintf("sender%d@example.com", n), RcptTo: []string{"archive@example.org"}, ClientIP: "192.0.2.7", Received: now()}
		id, err := a.Ingest(ctx, env, m)
		if err != nil {
			t.Fatal(err)
		}
		originals[id] = m
	}
	e, err := a.audit.Append(ctx, audit.Event{Type: audit.TypeErase, Actor: "fixture", Fields: map[string]any{"ids": []uint64{2}, "reason": "fixture"}})
	if err != nil {
		t.Fatal(err)
	}
	if skipped, err := a.store.Delete(ctx, []store.Deletion{{ID: 2, Reason: "erasure", Audit: e.Seq}}, now()); err != nil || len(skipped) > 0 {
		t.Fatal(err, skipped)
	}
	segs, _ := a.store.Segments()
	if len(segs) != 2 || segs[0].State != store.SegmentSealed || segs[1].State != store.SegmentActive {
		t.Fatalf("segments %+v: want one sealed and one active", segs)
	}
	var want []fixtureMessage
	a.store.List(0, func(m *store.MessageInfo) (bool, error) {
		sum := sha256.Sum256(originals[m.ID])
		want = append(want, fixtureMessage{ID: uint64(m.ID), State: m.State.String(), Receipts: m.Receipts, SHA256: hex.EncodeToString(sum[:])})
		return true, nil
	})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// The lock file is made at open.
	os.Remove(filepath.Join(dir, "audit", "lock"))
	j, _ := json.MarshalIndent(want, "", "  ")
	if err := os.WriteFile(filepath.Join(v1Dir, "expected.json"), append(j, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestV1Fixture opens the frozen v1 archive (a copy: opening writes audit
// entries), lists it, reads every live message byte-exact with the
// fixture's identity, and verifies it. It must pass forever.
func TestV1Fixture(t *testing.T) {
	t.Parallel()
	var want []fixtureMessage
	b, err := os.ReadFile(filepath.Join(v1Dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	idb, err := os.ReadFile(filepath.Join(v1Dir, "identity.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ident, err := age.ParseX25519Identity(strings.TrimSpace(string(idb)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithActor(context.Background(), "test")
	for _, readOnly := range []bool{true, false} {
		dir := filepath.Join(t.TempDir(), "archive")
		if err := os.CopyFS(dir, os.DirFS(filepath.Join(v1Dir, "archive"))); err != nil {
			t.Fatal(err)
		}
		// git keeps no modes: a sealed segment is read-only in an archive.
		if err := os.Chmod(filepath.Join(dir, "segments", "00000001.seg"), 0o444); err != nil {
			t.Fatal(err)
		}
		a, err := Open(dir, Options{MinFreeBytes: -1, ReadOnly: readOnly})
		if err != nil {
			t.Fatalf("open the v1 fixture (read-only %v): %v", readOnly, err)
		}
		rows, err := a.List(ctx, ListOptions{Deleted: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(want) {
			t.Fatalf("List = %d messages, want %d", len(rows), len(want))
		}
		for i, r := range rows {
			w := want[i]
			if r.ID != w.ID || r.State != w.State || r.Receipts != w.Receipts {
				t.Errorf("List row %d = id %d %s, %d receipts; want id %d %s, %d receipts", i, r.ID, r.State, r.Receipts, w.ID, w.State, w.Receipts)
			}
			if w.State != store.StateLive.String() {
				if _, err := a.Get(ctx, sealmail.MessageID(w.ID)); err == nil {
					t.Errorf("Get(%d) of a deleted message succeeded", w.ID)
				}
				continue
			}
			s, err := a.Get(ctx, sealmail.MessageID(w.ID))
			if err != nil {
				t.Fatalf("Get(%d): %v", w.ID, err)
			}
			if len(s.Records) != w.Receipts {
				t.Errorf("Get(%d) = %d records, want %d", w.ID, len(s.Records), w.Receipts)
			}
			original, _, err := s.DecryptRecord(0, []age.Identity{ident})
			if err != nil {
				t.Fatalf("decrypt message %d: %v", w.ID, err)
			}
			if sum := sha256.Sum256(original); hex.EncodeToString(sum[:]) != w.SHA256 {
				t.Errorf("message %d: SHA-256 %x, want %s", w.ID, sum, w.SHA256)
			}
			if !bytes.Contains(original, []byte("fixture message")) {
				t.Errorf("message %d does not read back as a fixture message", w.ID)
			}
		}
		rep, err := a.Verify(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Sealed != 1 || rep.Segments != 2 {
			t.Errorf("verify the v1 fixture (read-only %v): %d segments, %d sealed, problems %q", readOnly, rep.Segments, rep.Sealed, rep.Problems)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		storetest.CheckDir(t, dir)
	}
}
