// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/store"
)

// runScrub runs the scrubber until a pass has ended, then stops it.
func runScrub(t *testing.T, a *Archive) ScrubStatus {
	t.Helper()
	ctx, cancel := context.WithCancel(WithActor(context.Background(), "test"))
	done := make(chan error, 1)
	go func() {
		done <- a.Scrub(ctx, ScrubOptions{Rate: 1 << 30, Every: time.Hour, StartAfter: time.Millisecond})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for a.ScrubStatusNow().Last == nil {
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("no scrub pass ended within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Scrub returned %v, want context.Canceled", err)
	}
	return a.ScrubStatusNow()
}

// TestScrubFindsDamage damages a byte in the middle of a sealed segment
// (as bit rot would) and checks that a scrub pass finds exactly that
// segment, logs and audits it, and that status shows the pass, also after
// a restart (monitor.json).
func TestScrubFindsDamage(t *testing.T) {
	t.Parallel()
	f := newBackupFixture(t, t.TempDir())
	f.ingest(3, 9, 15, 21, 27) // 40 KB each: every commit seals
	segs, _ := f.a.store.Segments()
	var sealed []store.SegmentInfo
	for _, si := range segs {
		if si.State == store.SegmentSealed {
			sealed = append(sealed, si)
		}
	}
	if len(sealed) < 3 {
		t.Fatalf("%d sealed segments, want 3 or more", len(sealed))
	}
	if err := f.a.Close(); err != nil {
		t.Fatal(err)
	}
	bad := sealed[1]
	p := filepath.Join(f.dir, "segments", bad.FileName())
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x10
	os.Chmod(p, 0o600)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o444)

	a, err := Open(f.dir, Options{MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	st := runScrub(t, a)
	last := st.Last
	if last.Segments != len(sealed) || last.Total != len(sealed) || st.FindingsTotal != 1 || st.SegmentsTotal != int64(len(sealed)) {
		t.Errorf("scrub pass %+v, findings %d, segments %d; want %d segments, 1 finding", last, st.FindingsTotal, st.SegmentsTotal, len(sealed))
	}
	if len(last.Problems) == 0 || !strings.HasPrefix(last.Problems[0], "segment "+bad.Seq.String()+": ") ||
		!strings.Contains(strings.Join(last.Problems, " "), "SHA-256") {
		t.Errorf("problems %q, want segment %s's SHA-256", last.Problems, bad.Seq)
	}
	for _, pr := range last.Problems {
		if !strings.HasPrefix(pr, "segment "+bad.Seq.String()) {
			t.Errorf("a good segment was reported: %s", pr)
		}
	}
	if last.Bytes < int64(len(b)) {
		t.Errorf("the pass read %d bytes, less than the damaged segment alone", last.Bytes)
	}
	var phases []string
	audit.Read(f.ctx, auditDir(f.dir), audit.Filter{Types: []string{audit.TypeScrub}}, func(e audit.Entry) error {
		var sf scrubFields
		e.DecodeFields(&sf)
		phases = append(phases, sf.Phase+" "+sf.Segment)
		return nil
	})
	if strings.Join(phases, ",") != "start ,finding "+bad.Seq.String()+",end " {
		t.Errorf("scrub audit entries %q", phases)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// After a restart the pass is still known, and status warns.
	a, err = Open(f.dir, Options{MinFreeBytes: -1, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	s, err := a.Status(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Scrub.Last == nil || !s.Scrub.Last.Ended.Equal(last.Ended) || !strings.Contains(strings.Join(s.Warnings, " "), "scrub found damage: segment "+bad.Seq.String()) {
		t.Errorf("status after a restart: scrub %+v, warnings %q", s.Scrub.Last, s.Warnings)
	}
}

// TestScrubResumes: a pass a restart interrupted goes on where it
// stopped (monitor.json), without a second start entry.
func TestScrubResumes(t *testing.T) {
	t.Parallel()
	f := newBackupFixture(t, t.TempDir())
	f.ingest(3, 9, 15, 21, 27)
	segs, _ := f.a.store.Segments()
	if err := f.a.Close(); err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Minute).UTC()
	st := monitorState{Version: monitorVersion, Scrub: scrubState{Current: &ScrubPass{Started: started, Segments: 2, Total: len(segs) - 1,
		Next: 3, Bytes: 100, Problems: []string{}}}}
	j, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(f.dir, monitorFile), j, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := Open(f.dir, Options{MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	s := runScrub(t, a)
	if !s.Last.Started.Equal(started) || s.SegmentsTotal != int64(len(segs)-1-2) || s.Last.Segments != len(segs)-1 {
		t.Errorf("resumed pass %+v, %d segments checked now; want the pass of %v to go on from segment 3", s.Last, s.SegmentsTotal, started)
	}
	n := 0
	audit.Read(f.ctx, auditDir(f.dir), audit.Filter{Types: []string{audit.TypeScrub}}, func(audit.Entry) error { n++; return nil })
	if n != 1 {
		t.Errorf("%d scrub entries, want only the end", n)
	}
}
