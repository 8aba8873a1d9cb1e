// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
	"github.com/sealmail/sealmail/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

// verdictOf lists every live message for deletion, as a reader that
// trusted everything would.
func verdictOf(t *testing.T, a *Archive, holds ...string) PurgeVerdict {
	t.Helper()
	rows, err := a.List(WithActor(context.Background(), "test"), ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v := PurgeVerdict{Holds: holds, Kept: map[string]int{"not yet indexed (hold status unknown)": 1}}
	for _, r := range rows {
		v.Delete = append(v.Delete, VerdictItem{ID: r.ID, Receipts: r.Receipts, RetainUntil: r.RetainUntil})
	}
	return v
}

// TestPurgeVerdict: the receiver executes a purge verdict only as far as
// it can check it: a message a hold covers is kept (held) whatever the
// verdict says, so is one whose retention has not ended (the receiver
// judges it itself), a verdict that did not evaluate every active hold is
// refused, only a dry run may look ahead, a message that got a receipt
// after the verdict is skipped (stale), the reader's own kept counts are
// reported, and the order is audited with every id before anything goes.
func TestPurgeVerdict(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2025, 3, 15, 10, 0, 0, 0, time.UTC)}
	pol := &policy.Policy{Default: policy.Rule{Name: "short", Keep: "30d"},
		Rules: []policy.Rule{{Name: "letters", Headers: map[string]string{"Subject": "letter"}, Keep: "6y", From: "end-of-year"}}}
	id, _ := age.GenerateX25519Identity()
	dir := t.TempDir()
	t.Cleanup(func() { storetest.CheckDir(t, dir) })
	a, err := Create(dir, []string{id.Recipient().String()}, Options{Now: clk.now, Retention: pol, MinFreeBytes: -1,
		Store: store.Options{SealSize: 1}}) // every commit seals: purged records become compactable
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := WithActor(context.Background(), "test")
	start := clk.now()
	ingest := func(subj, rcpt string) sealmail.MessageID {
		// Received at the start: a later copy changes the receipts, not
		// the retention.
		env := &sealmail.Envelope{MailFrom: "a@example.com", RcptTo: []string{rcpt}, ClientIP: "192.0.2.1", Received: start}
		mid, err := a.Ingest(ctx, env, []byte("Subject: "+subj+"\r\n\r\nbody\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return mid
	}
	for _, subj := range []string{"note one", "held note", "note three", "a letter", "note five"} {
		ingest(subj, "b@example.org")
	}
	if _, err := a.CreateHold(ctx, "case-1", "subject:held", "litigation"); err != nil {
		t.Fatal(err)
	}
	if added, err := a.AddHoldMembers(ctx, "case-1", []sealmail.MessageID{2}, 9); err != nil || fmt.Sprint(added) != "[2]" {
		t.Fatalf("AddHoldMembers = %v, %v", added, err)
	}

	clk.add(30*24*time.Hour - time.Second)
	if rep, err := a.ExecutePurge(ctx, verdictOf(t, a, "case-1")); err != nil || len(rep.Deleted) != 0 || rep.Kept["retained"] != 4 {
		t.Fatalf("purge a second early = %+v, %v; want nothing deleted, 4 retained", rep, err)
	}
	clk.add(time.Second)
	if _, err := a.ExecutePurge(ctx, verdictOf(t, a)); err == nil || !strings.Contains(err.Error(), `"case-1" was not evaluated`) {
		t.Fatalf("a verdict that missed an active hold: %v, want it refused", err)
	}
	ahead := verdictOf(t, a, "case-1")
	ahead.AsOf = clk.now().Add(24 * time.Hour)
	if _, err := a.ExecutePurge(ctx, ahead); err == nil {
		t.Error("a real purge looked ahead")
	}
	// Message 5 gets a second receipt after the verdict was made.
	v := verdictOf(t, a, "case-1")
	ingest("note five", "c@example.org")
	rep, err := a.ExecutePurge(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.Deleted) != "[1 3]" || fmt.Sprint(rep.Skipped) != "[5]" || rep.Kept["held"] != 1 || rep.Kept["retained"] != 1 ||
		rep.Kept["not yet indexed (hold status unknown)"] != 1 {
		t.Fatalf("purge = %+v; want 1 and 3 deleted, 5 skipped (stale), 2 held, 4 retained, the reader's count kept", rep)
	}
	if rep.Reclaimed <= 0 {
		t.Errorf("purge reclaimed %d bytes, want the purged records' bytes", rep.Reclaimed)
	}
	_, err = a.Get(ctx, 1)
	if !errors.Is(err, store.ErrDeleted) || !strings.Contains(err.Error(), "deleted by retention policy on 2025-04-14") ||
		!strings.Contains(err.Error(), fmt.Sprintf("audit entry %d", rep.AuditSeq)) {
		t.Errorf("Get(1) after purge = %v", err)
	}
	var order []string
	audit.Read(ctx, auditDir(dir), audit.Filter{Types: []string{audit.TypePurge, audit.TypeDeleteSkipped}}, func(e audit.Entry) error {
		order = append(order, fmt.Sprintf("%s %v", e.Type, e.Fields["ids"]))
		return nil
	})
	if last := order[len(order)-2:]; fmt.Sprint(last) != "[purge [1 3 5] delete.skipped [5]]" {
		t.Errorf("audit of the purge: %v", last)
	}

	// Released, the held message follows retention again; the skipped one
	// goes with a verdict decided on its two receipts.
	if _, err := a.ReleaseHold(ctx, "case-1", "settled"); err != nil {
		t.Fatal(err)
	}
	if hm, _ := a.store.HoldMembers("case-1", nil); hm.Members != 0 {
		t.Errorf("release kept %d members", hm.Members)
	}
	if rep, err := a.ExecutePurge(ctx, verdictOf(t, a)); err != nil || fmt.Sprint(rep.Deleted) != "[2 5]" {
		t.Errorf("purge after release = %+v, %v; want [2 5]", rep, err)
	}
	if v, err := a.Verify(ctx, nil); err != nil || !v.OK() {
		t.Fatalf("verify after purge: %v %v", err, v.Problems)
	}
}

// TestEraseVerdict: an erasure verdict deletes only what no hold covers
// and whose retention ended, or with the override also retained mail;
// what it refuses is reported with the reason and audited with the
// request. The tombstone's audit entry names who erased.
func TestEraseVerdict(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2025, 3, 15, 10, 0, 0, 0, time.UTC)}
	pol := &policy.Policy{Default: policy.Rule{Name: "year", Keep: "1y"}}
	id, _ := age.GenerateX25519Identity()
	dir := t.TempDir()
	t.Cleanup(func() { storetest.CheckDir(t, dir) })
	a, err := Create(dir, []string{id.Recipient().String()}, Options{Now: clk.now, Retention: pol, MinFreeBytes: -1,
		Store: store.Options{SealSize: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := WithActor(context.Background(), "dpo")
	for i, subj := range []string{"about jane doe", "jane doe in court", "unrelated"} {
		env := &sealmail.Envelope{MailFrom: "a@example.com", RcptTo: []string{"b@example.org"}, ClientIP: "192.0.2.1", Received: clk.now()}
		if _, err := a.Ingest(ctx, env, []byte(fmt.Sprintf("Subject: %s\r\n\r\nbody %d\r\n", subj, i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.CreateHold(ctx, "court", "subject:court", "case"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddHoldMembers(ctx, "court", []sealmail.MessageID{2}, 5); err != nil {
		t.Fatal(err)
	}
	items := []VerdictItem{{ID: 1, Receipts: 1, RetainUntil: "2026-03-15T10:00:00Z"}, {ID: 2, Receipts: 1, RetainUntil: "2026-03-15T10:00:00Z"}}
	v := EraseVerdict{Query: `"jane doe"`, Reason: "Art. 17 request 12", Delete: items, Holds: []string{"court"},
		Refused: []Refusal{{ID: 7, Why: "not yet indexed"}}}
	rep, err := a.ExecuteErase(ctx, v)
	if err != nil || len(rep.Erased) != 0 || len(rep.Refused) != 3 {
		t.Fatalf("erase within retention = %+v, %v; want all refused", rep, err)
	}
	v.OverrideRetention, v.Request, v.Approvals = true, "req-12", []string{"olga (officer)"}
	rep, err = a.ExecuteErase(ctx, v)
	if err != nil || fmt.Sprint(rep.Erased) != "[1]" || len(rep.Refused) != 2 || !strings.Contains(fmt.Sprint(rep.Refused), "held by legal hold court") {
		t.Fatalf("erase with override = %+v, %v; want 1 erased, 2 refused (held)", rep, err)
	}
	if _, err := a.Get(ctx, 1); err == nil || !strings.Contains(err.Error(), "erased on request") {
		t.Errorf("Get(1) after erasure = %v", err)
	}
	if _, err := a.Get(ctx, 3); err != nil {
		t.Errorf("Get(3), not listed, = %v", err)
	}
	var tombActors, requests []string
	audit.Read(ctx, auditDir(a.dir), audit.Filter{Types: []string{audit.TypeIngest, audit.TypeErase}}, func(e audit.Entry) error {
		switch {
		case e.Type == audit.TypeErase:
			requests = append(requests, fmt.Sprintf("%v %v", e.Fields["request"], e.Fields["approvals"]))
		case e.Fields["kind"] == "tombstone":
			tombActors = append(tombActors, e.Actor)
		}
		return nil
	})
	if fmt.Sprint(tombActors) != "[dpo]" || fmt.Sprint(requests) != "[<nil> <nil> req-12 [olga (officer)]]" {
		t.Errorf("tombstone audit actors = %q, erase entries %q", tombActors, requests)
	}
	if v, err := a.Verify(ctx, nil); err != nil || !v.OK() {
		t.Fatalf("verify after erase: %v %v", err, v.Problems)
	}
}

// TestOpenRemovesOldIndex: an archive of an older version kept a search
// index in DIR/index; the receiver removes it at start-up, says so and
// audits it, and the catalog is of the current format.
func TestOpenRemovesOldIndex(t *testing.T) {
	t.Parallel()
	id, _ := age.GenerateX25519Identity()
	dir := t.TempDir()
	a, err := Create(dir, []string{id.Recipient().String()}, Options{MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := os.MkdirAll(filepath.Join(dir, "index", "store"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "index", "store", "00000001.seg"), []byte("subjects and addresses in clear"), 0o600)
	a, err = Open(dir, Options{MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := os.Stat(filepath.Join(dir, "index")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DIR/index after Open: %v, want it removed", err)
	}
	var got []string
	audit.Read(context.Background(), auditDir(dir), audit.Filter{Types: []string{audit.TypeIndexRemove}}, func(e audit.Entry) error {
		got = append(got, fmt.Sprint(e.Fields["path"], " ", e.Fields["bytes"]))
		return nil
	})
	if fmt.Sprint(got) != "[index 31]" {
		t.Errorf("index.remove audit entries = %v", got)
	}
}
