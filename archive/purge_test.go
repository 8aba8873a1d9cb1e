// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
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

// TestPurgeFollowsRetentionAndHolds runs retention, a legal hold and purge
// on a real archive with an injected clock.
func TestPurgeFollowsRetentionAndHolds(t *testing.T) {
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
	for i, subj := range []string{"note one", "held note", "note three", "a letter"} {
		env := &sealmail.Envelope{MailFrom: "a@example.com", RcptTo: []string{"b@example.org"}, ClientIP: "192.0.2.1", Received: clk.now()}
		if _, err := a.Ingest(ctx, env, []byte(fmt.Sprintf("Subject: %s\r\n\r\nbody %d\r\n", subj, i))); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for st, _ := a.Status(ctx); st.IndexWatermark < 4; st, _ = a.Status(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("index did not catch up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := a.CreateHold(ctx, "case-1", "subject:held", "litigation"); err != nil {
		t.Fatal(err)
	}

	// One second before the end of the 30 days nothing may go; at the end
	// the two unheld short-lived notes may.
	clk.add(30*24*time.Hour - time.Second)
	if rep, err := a.Purge(ctx, PurgeOptions{DryRun: true}); err != nil || len(rep.Deleted) != 0 {
		t.Fatalf("purge a second early = %+v, %v; want nothing", rep, err)
	}
	clk.add(time.Second)
	rep, err := a.Purge(ctx, PurgeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.Deleted) != "[1 3]" || rep.Kept["held"] != 1 || rep.Kept["retained"] != 1 {
		t.Fatalf("purge = %+v, want 1 and 3 deleted, 2 held, 4 retained", rep)
	}
	if rep.Reclaimed <= 0 {
		t.Errorf("purge reclaimed %d bytes, want the purged records' bytes", rep.Reclaimed)
	}
	_, err = a.Get(ctx, 1)
	if !errors.Is(err, store.ErrDeleted) || !strings.Contains(err.Error(), "deleted by retention policy on 2025-04-14") ||
		!strings.Contains(err.Error(), fmt.Sprintf("audit entry %d", rep.AuditSeq)) {
		t.Errorf("Get(1) after purge = %v", err)
	}
	if rows, _ := a.List(ctx, ListOptions{}); len(rows) != 2 {
		t.Errorf("List after purge: %d messages, want 2", len(rows))
	}
	if res, _ := a.Search(ctx, "note", SearchOptions{}); res.Total != 1 {
		t.Errorf("search after purge finds %d, want only the held one", res.Total)
	}
	if v, err := a.Verify(ctx, nil); err != nil || !v.OK() {
		t.Fatalf("verify after purge: %v %v", err, v.Problems)
	}

	// Released, the held message follows retention; the letter stays until
	// 1 January 2032 (6 years from the end of 2025).
	if _, err := a.ReleaseHold(ctx, "case-1", "settled"); err != nil {
		t.Fatal(err)
	}
	if rep, _ := a.Purge(ctx, PurgeOptions{}); fmt.Sprint(rep.Deleted) != "[2]" {
		t.Errorf("purge after release = %v, want [2]", rep.Deleted)
	}
	if rep, _ := a.Purge(ctx, PurgeOptions{DryRun: true, AsOf: time.Date(2031, 12, 31, 23, 59, 59, 0, time.UTC)}); len(rep.Deleted) != 0 {
		t.Errorf("letter eligible before 2032: %v", rep.Deleted)
	}
	if rep, _ := a.Purge(ctx, PurgeOptions{DryRun: true, AsOf: time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC)}); fmt.Sprint(rep.Deleted) != "[4]" {
		t.Errorf("letter not eligible on 2032-01-01: %v", rep.Deleted)
	}
	if _, err := a.Purge(ctx, PurgeOptions{AsOf: time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Error("a real purge looked ahead")
	}

	var purges int
	audit.Read(ctx, auditDir(a.dir), audit.Filter{Types: []string{audit.TypePurge, audit.TypeHoldCreate, audit.TypeHoldRelease}}, func(e audit.Entry) error {
		purges++
		return nil
	})
	var compactions int
	audit.Read(ctx, auditDir(a.dir), audit.Filter{Types: []string{audit.TypeSegmentCompact}}, func(audit.Entry) error { compactions++; return nil })
	if compactions < 2 {
		t.Errorf("%d segment.compact entries, want one per compacted segment (at least 2)", compactions)
	}
	if v, err := a.Verify(ctx, nil); err != nil || !v.OK() {
		t.Fatalf("verify at the end: %v %v", err, v.Problems)
	}
	if purges != 7 { // 5 purge runs (3 dry), hold create and release
		t.Errorf("%d purge and hold entries in the audit log, want 7", purges)
	}
}

// TestErase: a GDPR erasure refuses what is held or still retained, deletes
// the rest, and with the override deletes retained mail too, never held.
func TestErase(t *testing.T) {
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
	deadline := time.Now().Add(30 * time.Second)
	for st, _ := a.Status(ctx); st.IndexWatermark < 3; st, _ = a.Status(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("index did not catch up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := a.CreateHold(ctx, "court", "subject:court", "case"); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Erase(ctx, EraseOptions{Query: `"jane doe"`, Reason: "Art. 17 request 12"})
	if err != nil || len(rep.Erased) != 0 || len(rep.Refused) != 2 {
		t.Fatalf("erase within retention = %+v, %v; want both refused", rep, err)
	}
	rep, err = a.Erase(ctx, EraseOptions{Query: `"jane doe"`, Reason: "Art. 17 request 12", OverrideRetention: true})
	if err != nil || fmt.Sprint(rep.Erased) != "[1]" || len(rep.Refused) != 1 || !strings.Contains(rep.Refused[0].Why, "court") {
		t.Fatalf("erase with override = %+v, %v; want 1 erased, 2 refused (held)", rep, err)
	}
	if _, err := a.Get(ctx, 1); err == nil || !strings.Contains(err.Error(), "erased on request") {
		t.Errorf("Get(1) after erasure = %v", err)
	}
	if _, err := a.Get(ctx, 3); err != nil {
		t.Errorf("Get(3), not matched, = %v", err)
	}
	if v, err := a.Verify(ctx, nil); err != nil || !v.OK() {
		t.Fatalf("verify after erase: %v %v", err, v.Problems)
	}
	// The tombstone's audit entry names who erased, not the receiver.
	var tombActors []string
	audit.Read(ctx, auditDir(a.dir), audit.Filter{Types: []string{audit.TypeIngest}}, func(e audit.Entry) error {
		if e.Fields["kind"] == "tombstone" {
			tombActors = append(tombActors, e.Actor)
		}
		return nil
	})
	if fmt.Sprint(tombActors) != "[dpo]" {
		t.Errorf("tombstone audit actors = %q, want [dpo]", tombActors)
	}
}

// TestPurgeWithoutIndexKeepsEverything: with the index deleted, nothing is
// known to be indexed, so no hold can be checked and purge keeps all.
func TestPurgeWithoutIndexKeepsEverything(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2025, 3, 15, 10, 0, 0, 0, time.UTC)}
	pol := &policy.Policy{Default: policy.Rule{Name: "d", Keep: "1d"}}
	id, _ := age.GenerateX25519Identity()
	dir := t.TempDir()
	t.Cleanup(func() { storetest.CheckDir(t, dir) })
	a, err := Create(dir, []string{id.Recipient().String()}, Options{Now: clk.now, Retention: pol, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithActor(context.Background(), "test")
	env := &sealmail.Envelope{MailFrom: "a@example.com", ClientIP: "192.0.2.1", Received: clk.now()}
	if _, err := a.Ingest(ctx, env, []byte("Subject: held\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for st, _ := a.Status(ctx); st.IndexWatermark < 1; st, _ = a.Status(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("index did not catch up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := a.CreateHold(ctx, "h", "subject:held", "r"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := os.RemoveAll(indexDir(dir)); err != nil {
		t.Fatal(err)
	}
	clk.add(48 * time.Hour)
	a, err = Open(dir, Options{Now: clk.now, Retention: pol, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rep, err := a.Purge(ctx, PurgeOptions{})
	if err != nil || len(rep.Deleted) != 0 {
		t.Fatalf("purge with a deleted index = %+v, %v; want nothing deleted", rep, err)
	}
}
