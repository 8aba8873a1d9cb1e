// SPDX-License-Identifier: Apache-2.0

package store_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/store"
	"github.com/sealmail/sealmail/store/storetest"
)

// TestFormatFixtures opens every frozen archive under testdata/formats (one
// per format version; archive's TestGenerateV1Fixture wrote v1), reads
// every message byte-exact through the store alone and verifies it. Every
// build must read every released format, forever.
func TestFormatFixtures(t *testing.T) {
	t.Parallel()
	versions, _ := filepath.Glob("testdata/formats/v*")
	if len(versions) == 0 {
		t.Fatal("no format fixtures in testdata/formats")
	}
	for _, v := range versions {
		t.Run(filepath.Base(v), func(t *testing.T) {
			t.Parallel()
			var want []struct {
				ID       uint64 `json:"id"`
				State    string `json:"state"`
				Receipts int    `json:"receipts"`
				SHA256   string `json:"sha256"`
			}
			b, err := os.ReadFile(filepath.Join(v, "expected.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			idb, err := os.ReadFile(filepath.Join(v, "identity.txt"))
			if err != nil {
				t.Fatal(err)
			}
			ident, err := age.ParseX25519Identity(strings.TrimSpace(string(idb)))
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "archive")
			if err := os.CopyFS(dir, os.DirFS(filepath.Join(v, "archive"))); err != nil {
				t.Fatal(err)
			}
			s, err := store.Open(dir, store.Options{})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			n := 0
			err = s.List(0, func(m *store.MessageInfo) (bool, error) {
				if n >= len(want) || uint64(m.ID) != want[n].ID || m.State.String() != want[n].State {
					t.Errorf("message %d (%s) listed at %d, want %+v", m.ID, m.State, n, want[min(n, len(want)-1)])
				}
				n++
				return true, nil
			})
			if err != nil || n != len(want) {
				t.Fatalf("List: %d messages, %v; want %d", n, err, len(want))
			}
			for _, w := range want {
				_, recs, err := s.Records(sealmail.MessageID(w.ID))
				if w.State != store.StateLive.String() {
					if !errors.Is(err, store.ErrDeleted) {
						t.Errorf("Records(%d) of a deleted message = %v", w.ID, err)
					}
					continue
				}
				if err != nil || len(recs) != w.Receipts {
					t.Fatalf("Records(%d) = %d records, %v; want %d", w.ID, len(recs), err, w.Receipts)
				}
				p, err := store.OpenPayload(recs[0].Payload, recs[0].Entry.PlainOffset, recs[0].Entry.PlainLen, ident)
				if err != nil {
					t.Fatalf("decrypt message %d: %v", w.ID, err)
				}
				if sum := sha256.Sum256(p.Original); hex.EncodeToString(sum[:]) != w.SHA256 {
					t.Errorf("message %d: SHA-256 %x, want %s", w.ID, sum, w.SHA256)
				}
			}
			storetest.Check(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			storetest.CheckDir(t, dir)
		})
	}
}
