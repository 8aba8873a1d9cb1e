// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/vfs/vfstest"
)

// TestChainBreakStops: an audit line changed on disk after the reader
// followed the log that far breaks the chain at the next line: the reader
// takes nothing of that page (the line's message stays unindexed), says
// so, and goes no further.
func TestChainBreakStops(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{}, false)
	g.ingest("Subject: one\r\n\r\nx\r\n", "a@example.org")
	g.steps()
	before := g.r.Coverage().IndexedSeq
	g.ingest("Subject: two\r\n\r\nx\r\n", "a@example.org")
	g.ingest("Subject: three\r\n\r\nx\r\n", "a@example.org")
	// Change the time of the ingest entry of message 2 (still valid JSON).
	path := filepath.Join(g.dir, "audit", "audit-000001.jsonl")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	off := 0
	for _, l := range lines {
		if bytes.Contains(l, []byte(`"type":"ingest"`)) && bytes.Contains(l, []byte(`"id":2,`)) {
			i := bytes.Index(l, []byte(`"time":"2`))
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte("3"), int64(off+i+8))
			f.Close()
			break
		}
		off += len(l)
	}
	_, err = g.r.step(context.Background(), []age.Identity{g.id})
	if !errors.Is(err, archive.ErrChain) {
		t.Fatalf("step over a changed audit line: %v, want the chain broken", err)
	}
	if c := g.r.Coverage(); c.IndexedSeq != before {
		t.Errorf("the reader moved from %d to %d over a broken chain", before, c.IndexedSeq)
	}
	if v := g.r.AuditVerified(); v.VerifiedSeq != before || !strings.Contains(v.Failure, "does not continue the verified chain") {
		t.Errorf("audit verification %+v, want through %d and the break", v, before)
	}
	if got := g.ids(officer, "two OR three"); got != "[]" {
		t.Errorf("messages after the break were indexed: %s", got)
	}
}

// TestPinRefusesAnotherArchive: a reader state pinned to one receiver
// refuses another archive's.
func TestPinRefusesAnotherArchive(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{}, false)
	h := newRig(t, archive.Options{}, false)
	_, err := Open(context.Background(), Options{StateDir: g.state, Receiver: h.rcv})
	if err == nil || !strings.Contains(err.Error(), "pinned to archive") {
		t.Fatalf("Open against another archive: %v, want it refused", err)
	}
}

// TestReindexAll: the index is thrown away and rebuilt from the log's
// first entry; search finds the same, holds are evaluated again (their
// members stay recorded at the receiver); only root may.
func TestReindexAll(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{}, false)
	g.run()
	ctx := context.Background()
	for i := range 5 {
		g.ingest(fmt.Sprintf("Subject: note %d\r\n\r\nx\r\n", i), "a@example.org")
	}
	g.caughtUp()
	if _, err := g.r.CreateHold(ctx, officer, "h", "subject:3", "case"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.r.Reindex(ctx, officer, true); archive.AsError(err).Code != archive.CodePermission {
		t.Fatalf("reindex by an officer: %v, want refused", err)
	}
	rep, err := g.r.Reindex(ctx, Local("root"), true)
	if err != nil || !rep.All || rep.Target == 0 {
		t.Fatalf("Reindex(all) = %+v, %v", rep, err)
	}
	g.caughtUp()
	if got := g.ids(officer, "note"); got != "[1 2 3 4 5]" {
		t.Errorf("after reindex --all, search = %s", got)
	}
	// Holds are evaluated right after each index batch: a status read
	// between the two sees the hold one batch behind (the reader's own
	// audit entries keep the log moving for a moment), so wait for it.
	var st *Status
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, _ = g.r.Status(ctx, Local("root"))
		if len(st.Holds) == 1 && st.Holds[0].Evaluated >= st.Coverage.IndexedSeq || time.Now().After(deadline) {
			break
		}
	}
	if len(st.Holds) != 1 || st.Holds[0].Members != 1 || st.Holds[0].Evaluated < st.Coverage.IndexedSeq {
		t.Errorf("hold after reindex --all = %+v (indexed through %d)", st.Holds, st.Coverage.IndexedSeq)
	}
}

// TestErase: an erasure deletes what it matches, within the caller's
// reach, unless a hold covers it or its retention has not ended (without
// the override); the receiver audits every id.
func TestErase(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{Retention: &policy.Policy{Default: policy.Rule{Name: "year", Keep: "1y"}}}, false)
	g.run()
	ctx := context.Background()
	a := g.ingest("Subject: about jane doe\r\n\r\nx\r\n", "b@example.org")
	b := g.ingest("Subject: jane doe in court\r\n\r\ny\r\n", "b@example.org")
	g.ingest("Subject: unrelated\r\n\r\nz\r\n", "b@example.org")
	g.caughtUp()
	if _, err := g.r.CreateHold(ctx, officer, "court", "subject:court", "case 9"); err != nil {
		t.Fatal(err)
	}
	rep, err := g.r.Erase(ctx, officer, EraseOptions{Query: `"jane doe"`, Reason: "Art. 17 #12"})
	if err != nil || len(rep.Erased) != 0 || len(rep.Refused) != 2 {
		t.Fatalf("erase within retention = %+v, %v; want both refused", rep, err)
	}
	rep, err = g.r.Erase(ctx, officer, EraseOptions{Query: `"jane doe"`, Reason: "Art. 17 #12", OverrideRetention: true})
	if err != nil || fmt.Sprint(rep.Erased) != fmt.Sprint([]uint64{uint64(a)}) || len(rep.Refused) != 1 ||
		rep.Refused[0].ID != uint64(b) || !strings.Contains(rep.Refused[0].Why, "court") {
		t.Fatalf("erase with override = %+v, %v; want %d erased, %d refused as held", rep, err, a, b)
	}
	if !g.isDeleted(a) || g.isDeleted(b) {
		t.Errorf("after erasure: %d deleted %v, %d deleted %v", a, g.isDeleted(a), b, g.isDeleted(b))
	}
	if _, err := g.r.Erase(ctx, Caller{Name: "tax (auditor)", Role: "auditor"}, EraseOptions{Query: "*", Reason: "x"}); archive.AsError(err).Code != archive.CodePermission {
		t.Errorf("erase by an auditor: %v, want refused", err)
	}
}

// TestPinPowerLoss: the pin is written whole or not at all, whatever
// operation the power is cut at: afterwards the reader attaches (and pins,
// if nothing survived) and reader.json, if there, is complete.
func TestPinPowerLoss(t *testing.T) {
	t.Parallel()
	key := archive.AuditKey{Archive: "9c3949555bf4338927209695e9e382af", Key: strings.Repeat("ab", 32)}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for n := 1; ; n++ {
		crashed := false
		for _, after := range []bool{false, true} {
			dir := t.TempDir()
			cfs, err := vfstest.New(dir, vfstest.Options{CrashAt: n, CrashAfter: after})
			if err != nil {
				t.Fatal(err)
			}
			_ = checkPin(cfs, dir, key, now)
			if c, _ := cfs.Crashed(); c {
				crashed = true
			}
			if err := cfs.Restore(); err != nil {
				t.Fatal(err)
			}
			if err := checkPin(nil, dir, key, now); err != nil {
				t.Fatalf("crash at %d (after %v): attach afterwards: %v", n, after, err)
			}
			other := key
			other.Key = strings.Repeat("cd", 32)
			if err := checkPin(nil, dir, other, now); err == nil {
				t.Fatalf("crash at %d (after %v): the pin did not hold", n, after)
			}
		}
		if !crashed {
			if n < 3 {
				t.Fatalf("writing the pin took only %d operations", n-1)
			}
			return
		}
	}
}

// TestJobFilePowerLoss: a job's job.json is written whole or not at all,
// whatever operation the power is cut at: afterwards the jobs open, and a
// job that was running is marked interrupted.
func TestJobFilePowerLoss(t *testing.T) {
	t.Parallel()
	for n := 1; ; n++ {
		crashed := false
		for _, after := range []bool{false, true} {
			dir := filepath.Join(t.TempDir(), "exports")
			if err := os.MkdirAll(filepath.Join(dir, "0123456789abcdef"), 0o700); err != nil {
				t.Fatal(err)
			}
			cfs, err := vfstest.New(filepath.Dir(dir), vfstest.Options{CrashAt: n, CrashAfter: after})
			if err != nil {
				t.Fatal(err)
			}
			j := &jobs{fs: cfs, dir: dir}
			_ = j.save(&Job{ID: "0123456789abcdef", State: JobExporting, Query: "*", Format: "eml"})
			if c, _ := cfs.Crashed(); c {
				crashed = true
			}
			if err := cfs.Restore(); err != nil {
				t.Fatal(err)
			}
			var again jobs
			if err := again.open(nil, dir); err != nil {
				t.Fatalf("crash at %d (after %v): %v", n, after, err)
			}
			if job, ok := again.get("0123456789abcdef"); ok && job.State != JobInterrupted {
				t.Fatalf("crash at %d (after %v): a running job reopened as %q", n, after, job.State)
			}
		}
		if !crashed {
			if n < 3 {
				t.Fatalf("writing job.json took only %d operations", n-1)
			}
			return
		}
	}
}
