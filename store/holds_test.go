// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sealmail/sealmail"
)

// TestHoldMembers: membership grows by the live messages posted (each
// recorded once, the audit callback told exactly the new ones), a failing
// audit callback records nothing, release drops one hold's members and no
// other's, and the through value only rises.
func TestHoldMembers(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, Options{})
	ctx := context.Background()
	for _, b := range []string{"one", "two", "three"} {
		if _, err := s.Append(ctx, msg(b)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Delete(ctx, []Deletion{{ID: 3, Reason: "retention", Audit: 1}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	var told [][]sealmail.MessageID
	audit := func(added []sealmail.MessageID) error { told = append(told, added); return nil }
	added, err := s.AddHoldMembers("case", []sealmail.MessageID{2, 1, 2, 3, 99}, 10, audit)
	if err != nil || fmt.Sprint(added) != "[1 2]" {
		t.Fatalf("AddHoldMembers = %v, %v; want [1 2] (3 is deleted, 99 unknown)", added, err)
	}
	if added, err := s.AddHoldMembers("case", []sealmail.MessageID{1}, 5, audit); err != nil || len(added) != 0 {
		t.Fatalf("AddHoldMembers again = %v, %v; want nothing new", added, err)
	}
	if fmt.Sprint(told) != "[[1 2] []]" {
		t.Errorf("audit callback told %v", told)
	}
	if _, err := s.AddHoldMembers("other", []sealmail.MessageID{1}, 7, func([]sealmail.MessageID) error { return errors.New("audit log full") }); err == nil {
		t.Fatal("AddHoldMembers succeeded although the audit failed")
	}
	if _, err := s.AddHoldMembers("other", []sealmail.MessageID{2}, 7, audit); err != nil {
		t.Fatal(err)
	}
	var ids []sealmail.MessageID
	hm, err := s.HoldMembers("case", func(id sealmail.MessageID) error { ids = append(ids, id); return nil })
	if err != nil || hm.Members != 2 || hm.Through != 10 || fmt.Sprint(ids) != "[1 2]" {
		t.Fatalf("HoldMembers(case) = %+v %v, %v; want 2 members through 10", hm, ids, err)
	}
	held, err := s.HeldBy([]string{"case", "other"}, []sealmail.MessageID{1, 2, 3})
	if err != nil || fmt.Sprint(held) != "map[1:[case] 2:[case other]]" {
		t.Fatalf("HeldBy = %v, %v", held, err)
	}
	if err := s.SetHolds([]byte(`{"version":1}`), "case"); err != nil {
		t.Fatal(err)
	}
	if hm, _ := s.HoldMembers("case", nil); hm != (HoldMembership{}) {
		t.Errorf("after release, case = %+v, want nothing", hm)
	}
	if hm, _ := s.HoldMembers("other", nil); hm.Members != 1 || hm.Through != 7 {
		t.Errorf("after releasing case, other = %+v, want its member kept", hm)
	}
}

// TestCatalogUpgrade: a format-1 catalog (the v1 fixture) opened for
// writing becomes format 2: the hold_members bucket exists and the index
// watermark is gone; read-only, it is read as it is.
func TestCatalogUpgrade(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "archive")
	if err := os.CopyFS(dir, os.DirFS("testdata/formats/v1/archive")); err != nil {
		t.Fatal(err)
	}
	format := func() (byte, bool, bool) {
		db, err := bolt.Open(filepath.Join(dir, catalogFile), 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var f byte
		var members, wm bool
		db.View(func(tx *bolt.Tx) error {
			f = tx.Bucket(bucketMeta).Get(metaFormat)[0]
			members = tx.Bucket(bucketHoldMembers) != nil
			wm = tx.Bucket(bucketMeta).Get(metaWatermark) != nil
			return nil
		})
		return f, members, wm
	}
	if f, members, wm := format(); f != 1 || members || !wm {
		t.Fatalf("fixture: format %d, hold_members %v, watermark %v; want a format-1 catalog", f, members, wm)
	}
	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open of format 1: %v", err)
	}
	if hm, err := ro.HoldMembers("x", nil); err != nil || hm.Members != 0 {
		t.Errorf("HoldMembers on format 1 = %+v, %v", hm, err)
	}
	ro.Close()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if f, members, wm := format(); f != 2 || !members || wm {
		t.Fatalf("after Open: format %d, hold_members %v, watermark %v; want format 2 without the watermark", f, members, wm)
	}
}
