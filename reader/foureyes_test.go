// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/policy"
)

var bob = Caller{Name: "bob (officer)", User: "bob", Role: "officer"}

// auditOf returns the receiver's audit entries of type typ.
func (g *rig) auditOf(typ string) []archive.AuditEntry {
	g.t.Helper()
	var out []archive.AuditEntry
	err := archive.ReadAudit(context.Background(), g.dir, archive.AuditFilter{Types: []string{typ}}, func(e archive.AuditEntry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		g.t.Fatal(err)
	}
	return out
}

// TestFourEyesErase: with four eyes on, an officer's erasure erases
// nothing but files a request for what a dry run finds; the requester
// cannot approve it, another officer can, and the execution re-evaluates
// it: a message that got a further receipt meanwhile and one a new hold
// covers are refused, a new match is not erased; the erasure names the
// request and its approver, and is audited once.
func TestFourEyesErase(t *testing.T) {
	t.Parallel()
	g := newRigFourEyes(t, archive.Options{Retention: &policy.Policy{Default: policy.Rule{Name: "day", Keep: "1d"}}}, false, access.FourEyesOptions{})
	g.run()
	ctx := context.Background()
	a := g.ingest("Subject: jane doe 1\r\n\r\nx\r\n", "b@example.org")
	b := g.ingest("Subject: jane doe 2\r\n\r\ny\r\n", "b@example.org")
	c := g.ingest("Subject: jane doe 3\r\n\r\nz\r\n", "b@example.org")
	g.caughtUp()
	g.clk.add(48 * time.Hour)
	rep, err := g.r.Erase(ctx, officer, EraseOptions{Query: `"jane doe"`, Reason: "Art. 17 #12"})
	if err != nil || rep.Approval == nil || !rep.DryRun || len(rep.Erased) != 3 {
		t.Fatalf("Erase with four eyes = %+v, %v; want a request for 3 messages", rep, err)
	}
	if g.isDeleted(a) || g.isDeleted(b) || g.isDeleted(c) {
		t.Fatal("the request erased something before its approval")
	}
	id := rep.Approval.ID
	if asked, err := AskedOf(*rep.Approval); err != nil || asked.Erase == nil || asked.Erase.Query != `"jane doe"` || len(asked.Erase.Messages) != 3 {
		t.Errorf("AskedOf the erasure request = %+v, %v", asked, err)
	}
	if _, err := g.r.Approve(ctx, officer, id, ""); archive.AsError(err).Code != archive.CodePermission {
		t.Fatalf("the requester approves their own request: %v, want refused", err)
	}
	if _, err := g.r.Approve(ctx, Caller{Name: "tax (auditor)", User: "tax", Role: "auditor"}, id, ""); archive.AsError(err).Code != archive.CodePermission {
		t.Fatalf("an auditor approves: %v, want refused", err)
	}
	// Meanwhile: b is journaled again (a further receipt), c is held, and
	// a new message matches.
	if again := g.ingest("Subject: jane doe 2\r\n\r\ny\r\n", "carol@example.org"); again != b {
		t.Fatalf("the second copy got id %d, want %d", again, b)
	}
	d := g.ingest("Subject: jane doe 4\r\n\r\nw\r\n", "b@example.org")
	g.caughtUp()
	if _, err := g.r.CreateHold(ctx, officer, "court", "subject:3", "case 9"); err != nil {
		t.Fatal(err)
	}
	g.clk.add(48 * time.Hour)
	ar, err := g.r.Approve(ctx, bob, id, "checked")
	if err != nil || ar.State != access.StateExecuted {
		t.Fatalf("Approve by another officer = %+v, %v; want executed", ar, err)
	}
	var done EraseReport
	if err := json.Unmarshal(ar.Result, &done); err != nil {
		t.Fatalf("approval result %s: %v", ar.Result, err)
	}
	refused := map[uint64]string{}
	for _, r := range done.Refused {
		refused[r.ID] = r.Why
	}
	if fmt.Sprint(done.Erased) != fmt.Sprint([]uint64{uint64(a)}) || !strings.Contains(refused[uint64(b)], "changed since the request") ||
		!strings.Contains(refused[uint64(c)], "court") || !strings.Contains(refused[uint64(d)], "not in the approved request") {
		t.Fatalf("executed erasure = %+v, want only %d erased; %d changed, %d held, %d not approved", done, a, b, c, d)
	}
	if !g.isDeleted(a) || g.isDeleted(b) || g.isDeleted(c) || g.isDeleted(d) {
		t.Errorf("after execution: deleted %v %v %v %v, want only the first", g.isDeleted(a), g.isDeleted(b), g.isDeleted(c), g.isDeleted(d))
	}
	if _, err := g.r.Approve(ctx, bob, id, ""); archive.AsError(err).Code != archive.CodeInvalid {
		t.Errorf("a second approval: %v, want refused (not open)", err)
	}
	var executed []archive.AuditEntry
	for _, e := range g.auditOf("erase") {
		var f struct {
			DryRun    bool     `json:"dry_run"`
			Request   string   `json:"request"`
			Approvals []string `json:"approvals"`
		}
		if e.DecodeFields(&f) == nil && !f.DryRun {
			if f.Request != fmt.Sprint(id) || !slices.Equal(f.Approvals, []string{"bob (officer)"}) || e.Actor != "olga (officer)" {
				t.Errorf("erase entry %s: request %q approvals %q, want %d by olga approved by bob", e.Actor, f.Request, f.Approvals, id)
			}
			executed = append(executed, e)
		}
	}
	if len(executed) != 1 || len(g.auditOf("access.approval.execute")) != 1 {
		t.Errorf("%d erase entries and %d approval.execute entries, want one each", len(executed), len(g.auditOf("access.approval.execute")))
	}
	if _, err := g.r.Erase(ctx, officer, EraseOptions{Query: "x", Reason: "y", Request: "7", Approvals: []string{"eve"}}); archive.AsError(err).Code != archive.CodeInvalid {
		t.Errorf("an erasure naming its own approval: %v, want refused", err)
	}
}

// TestFourEyesDenyExpireHold: a denial needs a reason and ends the
// request; a request not decided in time expires; a hold release waits
// for its approval and releases only the hold it named.
func TestFourEyesDenyExpireHold(t *testing.T) {
	t.Parallel()
	g := newRigFourEyes(t, archive.Options{}, false, access.FourEyesOptions{Expiry: time.Hour})
	g.run()
	ctx := context.Background()
	g.ingest("Subject: minutes\r\n\r\nx\r\n", "b@example.org")
	g.caughtUp()
	if _, err := g.r.CreateHold(ctx, officer, "case", "minutes", "case 1"); err != nil {
		t.Fatal(err)
	}
	rep, err := g.r.ReleaseHold(ctx, officer, "case", "settled")
	if err != nil || rep.Approval == nil || !rep.Hold.Active {
		t.Fatalf("ReleaseHold with four eyes = %+v, %v; want a request and the hold active", rep, err)
	}
	if asked, err := AskedOf(*rep.Approval); err != nil || asked.HoldRelease == nil || asked.HoldRelease.Name != "case" || !asked.HoldRelease.Created.Equal(rep.Hold.Created) {
		t.Errorf("AskedOf the release request = %+v, %v", asked, err)
	}
	if _, err := g.r.Deny(ctx, bob, rep.Approval.ID, ""); archive.AsError(err).Code != archive.CodeInvalid {
		t.Errorf("a denial without a reason: %v, want refused", err)
	}
	if a, err := g.r.Deny(ctx, bob, rep.Approval.ID, "not settled yet"); err != nil || a.State != access.StateDenied {
		t.Fatalf("Deny = %+v, %v", a, err)
	}
	if _, err := g.r.Approve(ctx, Local("root"), rep.Approval.ID, ""); archive.AsError(err).Code != archive.CodeInvalid {
		t.Errorf("approving a denied request: %v, want refused", err)
	}
	// Expiry.
	rep, err = g.r.ReleaseHold(ctx, officer, "case", "settled now")
	if err != nil {
		t.Fatal(err)
	}
	g.clk.add(2 * time.Hour)
	if _, err := g.r.Approve(ctx, bob, rep.Approval.ID, ""); archive.AsError(err).Code != archive.CodeInvalid || !strings.Contains(err.Error(), "expired") {
		t.Errorf("approving an expired request: %v, want refused as expired", err)
	}
	// A request for a hold that was released and placed again meanwhile
	// fails: the new hold is not the one asked about.
	old, err := g.r.ReleaseHold(ctx, officer, "case", "settled at last")
	if err != nil {
		t.Fatal(err)
	}
	other, err := g.r.ReleaseHold(ctx, bob, "case", "again")
	if err != nil {
		t.Fatal(err)
	}
	if ar, err := g.r.Approve(ctx, officer, other.Approval.ID, ""); err != nil || ar.State != access.StateExecuted {
		t.Fatalf("approve bob's release = %+v, %v", ar, err)
	}
	if _, err := g.r.CreateHold(ctx, officer, "case", "minutes", "case 1 reopened"); err != nil {
		t.Fatal(err)
	}
	ar, err := g.r.Approve(ctx, Local("root"), old.Approval.ID, "")
	if err != nil || ar.State != access.StateFailed || !strings.Contains(ar.Error, "not the one the request named") {
		t.Fatalf("approve a release of a hold replaced since = %+v, %v; want failed", ar, err)
	}
	hs, _ := g.r.Holds(ctx, officer)
	active := 0
	for _, h := range hs.Holds {
		if h.Active {
			active++
		}
	}
	if active != 1 {
		t.Errorf("%d active holds, want the new one", active)
	}
	if n := len(g.auditOf("access.approval.expire")); n != 1 {
		t.Errorf("%d approval.expire entries, want 1", n)
	}
}

// TestOutboxForwarded: the events `sealmail user` kept in the audit
// outbox while no reader ran reach the receiver's audit log at the
// reader's first round, or, if the receiver is away then, once it answers
// again; nothing is lost or sent twice.
func TestOutboxForwarded(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{}, false)
	ctx := context.Background()
	if err := g.r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.st.Close(); err != nil {
		t.Fatal(err)
	}
	cli, err := access.OpenState(g.state, access.StateOptions{AuditOutbox: true, Password: access.PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	by := access.Actor{Remote: "cli:root(uid 0)"}
	for _, name := range []string{"olga", "bob"} {
		if _, err := cli.AddUser(ctx, by, access.NewUser{Name: name, Role: access.RoleOfficer}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	if g.st, err = access.OpenState(g.state, access.StateOptions{Audit: func(ctx context.Context, ev access.Event) error {
		return g.r.AuditAccess(ctx, ev)
	}}); err != nil {
		t.Fatal(err)
	}
	g.open(false)
	g.recv.Down()
	g.r.maintain(ctx)
	if n, _ := g.st.OutboxLen(ctx); n != 2 {
		t.Fatalf("with the receiver away, %d events left in the outbox, want 2", n)
	}
	g.recv.Up()
	g.r.maintain(ctx)
	if n, _ := g.st.OutboxLen(ctx); n != 0 {
		t.Fatalf("with the receiver back, %d events left in the outbox, want 0", n)
	}
	g.r.maintain(ctx)
	adds := g.auditOf("access.user.add")
	if len(adds) != 2 || adds[0].Actor != "cli:root(uid 0)" {
		t.Fatalf("access.user.add entries = %+v, want two by cli:root(uid 0)", adds)
	}
	var f struct {
		Target string `json:"target"`
	}
	if err := adds[1].DecodeFields(&f); err != nil || f.Target != "bob" {
		t.Errorf("the second entry's target = %q (%v), want bob", f.Target, err)
	}
}
