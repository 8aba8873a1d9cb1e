// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/audit"
)

// TestAuditLog: an admin reads the receiver's audit log newest first,
// filtered by type, actor and time, in pages, with how far the reader has
// verified the chain (through the checkpoint it followed); other roles are
// refused, and the read itself is audited with the person.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{}, false)
	ctx := context.Background()
	g.ingest("Subject: one\r\n\r\nx\r\n", "a@example.org")
	if _, err := g.r.Search(ctx, officer, "one", SearchOptions{}); err != nil {
		t.Fatal(err)
	}
	cp, err := g.a.Checkpoint(archive.WithActor(ctx, "test"))
	if err != nil {
		t.Fatal(err)
	}
	g.ingest("Subject: two\r\n\r\nx\r\n", "a@example.org")
	g.steps()
	admin := Caller{Name: "root (admin)", User: "root", Role: "admin"}

	if _, err := g.r.AuditLog(ctx, officer, archive.AuditFilter{}, 10); archive.AsError(err).Code != archive.CodePermission {
		t.Errorf("an officer reads the audit log: %v, want refused", err)
	}
	all, err := g.r.AuditLog(ctx, admin, archive.AuditFilter{}, 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Entries) < 5 || all.More {
		t.Fatalf("%d entries, more %v", len(all.Entries), all.More)
	}
	for i := 1; i < len(all.Entries); i++ {
		if all.Entries[i].Seq >= all.Entries[i-1].Seq {
			t.Fatalf("entry %d (seq %d) after seq %d: not newest first", i, all.Entries[i].Seq, all.Entries[i-1].Seq)
		}
	}
	if e := all.Entries[0]; e.Type != audit.TypeAPICall || e.Actor != "root (admin)" || e.Fields["op"] != "audit" {
		t.Errorf("newest entry %+v, want the read itself (api.call audit by the admin)", e)
	}
	v := all.Verification
	if v.VerifiedSeq != g.r.Coverage().IndexedSeq || v.VerifiedSeq < cp.Seq+1 || v.Hash == "" || v.Failure != "" {
		t.Errorf("verification %+v, want through the index's cursor %d", v, g.r.Coverage().IndexedSeq)
	}
	if v.CheckpointSeq != cp.Seq+1 || !v.CheckpointTime.Equal(cp.Time) {
		t.Errorf("verified checkpoint seq %d at %v, want the one written: entry %d at %v", v.CheckpointSeq, v.CheckpointTime, cp.Seq+1, cp.Time)
	}

	// By type: the search, by its officer.
	s, err := g.r.AuditLog(ctx, admin, archive.AuditFilter{Types: []string{audit.TypeSearch}}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Entries) != 1 || s.Entries[0].Actor != "olga (officer)" || s.Entries[0].Fields["query"] == nil {
		t.Fatalf("search entries %+v, want olga's one", s.Entries)
	}
	// By actor: the user name matches the person as the reader names them.
	byOlga, err := g.r.AuditLog(ctx, admin, archive.AuditFilter{Actor: "olga"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(byOlga.Entries) == 0 {
		t.Fatal("no entries by olga")
	}
	for _, e := range byOlga.Entries {
		if e.Actor != "olga (officer)" {
			t.Errorf("actor filter olga kept %q", e.Actor)
		}
	}
	// By time: one ingest before the checkpoint, one after (the log's
	// clock is the host's).
	byTime := func(f archive.AuditFilter) []uint64 {
		f.Types = []string{audit.TypeIngest}
		p, err := g.r.AuditLog(ctx, admin, f, 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, e := range p.Entries {
			out = append(out, e.Seq)
		}
		return out
	}
	late, early := byTime(archive.AuditFilter{Since: cp.Time}), byTime(archive.AuditFilter{Until: cp.Time})
	if len(late) != 1 || len(early) != 1 || late[0] <= cp.Seq || early[0] >= cp.Seq {
		t.Errorf("ingest entries since the checkpoint (entry %d) %v, until it %v: want one each side", cp.Seq+1, late, early)
	}
	// Pages: two at a time, each continuing before the last.
	var seqs []uint64
	f := archive.AuditFilter{}
	for range 100 {
		p, err := g.r.AuditLog(ctx, admin, f, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			seqs = append(seqs, e.Seq)
		}
		if !p.More {
			break
		}
		if len(p.Entries) != 2 {
			t.Fatalf("a page of %d with more after it", len(p.Entries))
		}
		f.BeforeSeq = p.Entries[len(p.Entries)-1].Seq
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]-1 {
			t.Fatalf("paged seqs %v: not each entry once, newest first", seqs)
		}
	}
	if seqs[len(seqs)-1] != 1 {
		t.Errorf("paging ended at seq %d, want 1", seqs[len(seqs)-1])
	}
}

// TestIngestRate: the status's ingest rate is the growth of the
// receiver's last message id between the reader's samples, per minute.
func TestIngestRate(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{}, false)
	admin := Caller{Name: "root (admin)", User: "root", Role: "admin"}
	g.steps()
	st, err := g.r.SystemStatus(context.Background(), admin)
	if err != nil {
		t.Fatal(err)
	}
	if st.IngestWindow != 0 || st.IngestPerMinute != 0 {
		t.Errorf("rate %v over %v from one moment's samples, want none", st.IngestPerMinute, st.IngestWindow)
	}
	g.clk.add(2 * time.Minute)
	for i := range 6 {
		g.ingest(fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i), "a@example.org")
	}
	g.steps()
	if st, err = g.r.SystemStatus(context.Background(), admin); err != nil {
		t.Fatal(err)
	}
	if st.IngestWindow != 2*time.Minute || st.IngestPerMinute != 3 {
		t.Errorf("rate %v per minute over %v, want 3 over 2m0s", st.IngestPerMinute, st.IngestWindow)
	}
}
