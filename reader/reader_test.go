// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/policy"
)

// TestHoldOnLaterReceiptProtects (defect 2 of issue #11, now in the
// reader): a hold on a recipient who is only in the second receipt of a
// message (the same original journaled again for carol) finds it, the
// receiver records it as a member, and purge keeps it; the unheld
// message goes, and once the hold is released the held one follows.
func TestHoldOnLaterReceiptProtects(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{Retention: &policy.Policy{Default: policy.Rule{Name: "day", Keep: "1d"}}}, false)
	g.run()
	ctx := context.Background()
	minutes := "Subject: board minutes\r\nFrom: ceo@example.com\r\n\r\nconfidential\r\n"
	a := g.ingest(minutes, "alice@example.org")
	b := g.ingest("Subject: lunch\r\nFrom: ceo@example.com\r\n\r\npizza\r\n", "bob@example.org")
	if again := g.ingest(minutes, "carol@example.org"); again != a {
		t.Fatalf("the second copy got id %d, want receipt 2 of %d", again, a)
	}
	g.caughtUp()
	if got := g.ids(officer, "to:carol@example.org"); got != fmt.Sprint([]uint64{uint64(a)}) {
		t.Fatalf("search to:carol = %s, want [%d]", got, a)
	}
	rep, err := g.r.CreateHold(ctx, officer, "carol", "to:carol@example.org", "litigation")
	if err != nil || rep.Hold.Members != 1 || rep.Hold.Evaluated == 0 {
		t.Fatalf("CreateHold = %+v, %v; want one member recorded", rep, err)
	}
	members, err := g.a.HoldMembers(archive.WithActor(ctx, "test"), "carol")
	if err != nil || !slices.Equal(members, []sealmail.MessageID{a}) {
		t.Fatalf("the receiver's members of carol = %v, %v; want [%d]", members, err, a)
	}
	g.clk.add(48 * time.Hour)
	pr, err := g.r.Purge(ctx, officer, PurgeOptions{})
	if err != nil || fmt.Sprint(pr.Deleted) != fmt.Sprint([]uint64{uint64(b)}) || pr.Kept["held"] != 1 {
		t.Fatalf("purge = %+v, %v; want only %d deleted and the held one kept", pr, err, b)
	}
	if g.isDeleted(a) || !g.isDeleted(b) {
		t.Fatalf("after purge: %d deleted %v, %d deleted %v", a, g.isDeleted(a), b, g.isDeleted(b))
	}
	// A new message that matches arrives: the hold covers it as it is
	// indexed, before any purge could see it.
	c := g.ingest("Subject: to carol\r\n\r\nlater\r\n", "carol@example.org")
	g.caughtUp()
	members, _ = g.a.HoldMembers(archive.WithActor(ctx, "test"), "carol")
	if !slices.Contains(members, c) {
		t.Errorf("a message indexed after the hold was not posted as its member: %v", members)
	}
	g.caughtUp() // the tombstone of b
	if got := g.ids(officer, "lunch"); got != "[]" {
		t.Errorf("the purged message is still found: %s", got)
	}
	if _, err := g.r.ReleaseHold(ctx, officer, "carol", "settled"); err != nil {
		t.Fatal(err)
	}
	g.clk.add(48 * time.Hour)
	pr, err = g.r.Purge(ctx, officer, PurgeOptions{})
	if err != nil || fmt.Sprint(pr.Deleted) != fmt.Sprint([]uint64{uint64(a), uint64(c)}) {
		t.Fatalf("purge after release = %+v, %v; want %d and %d", pr, err, a, c)
	}
}

// TestPurgeKeepsUnindexed: purge deletes nothing the index does not hold
// with all its receipts, nor anything indexed after a hold was last
// evaluated: a message stored but not indexed, and an indexed message
// whose second receipt is not, stay ("not yet indexed").
func TestPurgeKeepsUnindexed(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{Retention: &policy.Policy{Default: policy.Rule{Name: "day", Keep: "1d"}}}, false)
	ctx := context.Background()
	data := "Subject: x\r\n\r\nx\r\n"
	a := g.ingest(data, "alice@example.org")
	b := g.ingest("Subject: y\r\n\r\ny\r\n", "bob@example.org")
	g.steps()
	g.ingest(data, "carol@example.org") // a's second receipt, not indexed
	c := g.ingest("Subject: z\r\n\r\nz\r\n", "dan@example.org")
	g.clk.add(48 * time.Hour)
	rep, err := g.r.Purge(ctx, officer, PurgeOptions{DryRun: true})
	if err != nil || fmt.Sprint(rep.Deleted) != fmt.Sprint([]uint64{uint64(b)}) || rep.Kept[KeptNotIndexed] != 2 {
		t.Fatalf("purge = %+v, %v; want only %d (%d and %d not yet indexed)", rep, err, b, a, c)
	}
	if rep.Coverage.NotIndexed != 1 || rep.Coverage.IndexedSeq == 0 {
		t.Errorf("coverage = %+v, want one message not indexed", rep.Coverage)
	}
	g.steps()
	if rep, err := g.r.Purge(ctx, officer, PurgeOptions{DryRun: true}); err != nil || len(rep.Deleted) != 3 {
		t.Fatalf("purge once indexed = %+v, %v; want all three", rep, err)
	}
}

// TestLockedReader: without the identity the reader indexes nothing and
// refuses content (ingest goes on at the receiver); a wrong identity is
// refused; the right one unlocks it and it catches up; lock drops it.
func TestLockedReader(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{}, true)
	g.run()
	ctx := context.Background()
	g.ingest("Subject: while locked\r\n\r\nx\r\n", "a@example.org")
	if _, err := g.r.Search(ctx, officer, "locked", SearchOptions{}); !IsLocked(err) {
		t.Fatalf("search while locked: %v, want locked", err)
	}
	if st, _ := g.r.Status(ctx, Local("root")); !st.Locked || st.Coverage.IndexedSeq != 0 || !st.Coverage.Locked {
		t.Fatalf("status while locked = %+v", st)
	}
	other, _ := age.GenerateX25519Identity()
	if err := g.r.Unlock(ctx, officer, []age.Identity{other}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("unlock with another identity: %v", err)
	}
	if err := g.r.Unlock(ctx, Caller{Name: "ann (auditor)", Role: "auditor"}, []age.Identity{g.id}); archive.AsError(err).Code != archive.CodePermission {
		t.Fatalf("unlock by an auditor: %v, want refused", err)
	}
	if err := g.r.Unlock(ctx, officer, []age.Identity{g.id}); err != nil {
		t.Fatal(err)
	}
	g.caughtUp()
	if got := g.ids(officer, "locked"); got != "[1]" {
		t.Errorf("after unlock, search = %s", got)
	}
	if err := g.r.Lock(ctx, officer); err != nil {
		t.Fatal(err)
	}
	if _, err := g.r.Read(ctx, officer, 1); !IsLocked(err) {
		t.Errorf("read after lock: %v, want locked", err)
	}
}

// TestScope: each role sees what it may: an officer everything, an
// auditor what its scope matches until its expiry, a user the messages
// one of their addresses is involved in (in any receipt), an admin
// nothing; a message outside one's reach is not found, as one that does
// not exist.
func TestScope(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{}, false)
	g.run()
	ctx := context.Background()
	acme := g.ingest("From: a@acme.example\r\nTo: x@corp.example\r\nSubject: invoice\r\n\r\nx\r\n", "x@corp.example")
	other := g.ingest("From: b@other.example\r\nTo: y@corp.example\r\nSubject: invoice\r\n\r\ny\r\n", "y@corp.example")
	g.ingest("From: b@other.example\r\nTo: y@corp.example\r\nSubject: invoice\r\n\r\ny\r\n", "jane@corp.example") // jane, second receipt
	g.caughtUp()
	auditor := Caller{Name: "tax (auditor)", Role: "auditor", Scope: "from:@acme.example", Expires: g.clk.now().Add(24 * time.Hour)}
	jane := Caller{Name: "jane (user)", Role: "user", Addresses: []string{"jane@corp.example"}}
	nobody := Caller{Name: "nobody (user)", Role: "user"}
	for _, tc := range []struct {
		c    Caller
		want string
	}{{officer, fmt.Sprint([]uint64{uint64(acme), uint64(other)})}, {auditor, fmt.Sprint([]uint64{uint64(acme)})},
		{jane, fmt.Sprint([]uint64{uint64(other)})}, {nobody, "[]"}} {
		if got := g.ids(tc.c, "invoice"); got != tc.want {
			t.Errorf("%s: search invoice = %s, want %s", tc.c.Name, got, tc.want)
		}
	}
	if _, err := g.r.Read(ctx, jane, acme); archive.AsError(err).Code != archive.CodeNotFound {
		t.Errorf("jane reads another's message: %v, want not found", err)
	}
	if m, err := g.r.Read(ctx, jane, other); err != nil || !strings.Contains(string(m.Original), "Subject: invoice") || len(m.Receipts) != 2 {
		t.Errorf("jane reads her message: %+v, %v", m, err)
	}
	admin := Caller{Name: "root (admin)", Role: "admin"}
	if _, err := g.r.Search(ctx, admin, "invoice", SearchOptions{}); archive.AsError(err).Code != archive.CodePermission {
		t.Errorf("admin search: %v, want refused", err)
	}
	if _, err := g.r.Read(ctx, admin, acme); archive.AsError(err).Code != archive.CodePermission {
		t.Errorf("admin read: %v, want refused", err)
	}
	if _, err := g.r.Status(ctx, admin); err != nil {
		t.Errorf("admin status: %v", err)
	}
	g.clk.add(25 * time.Hour)
	if _, err := g.r.Search(ctx, auditor, "invoice", SearchOptions{}); archive.AsError(err).Code != archive.CodePermission {
		t.Errorf("expired auditor: %v, want refused", err)
	}
}
