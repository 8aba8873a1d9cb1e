// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/vfs/vfstest"
)

// TestJournalGapSurvivesRestart: a source's last message and its open gap
// are kept across a restart (monitor.json), so a source that went silent
// before the restart is still found, and a gap is audited once.
func TestJournalGapSurvivesRestart(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2025, 3, 12, 9, 0, 0, 0, time.UTC)} // a Wednesday
	exp := JournalExpectation{Source: netip.MustParsePrefix("192.0.2.0/24"), MaxSilence: 2 * time.Hour}
	id, _ := age.GenerateX25519Identity()
	dir := t.TempDir()
	opts := Options{Now: clk.now, MinFreeBytes: -1, JournalExpect: []JournalExpectation{exp}}
	a, err := Create(dir, []string{id.Recipient().String()}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithActor(context.Background(), "test")
	env := &sealmail.Envelope{MailFrom: "a@example.com", RcptTo: []string{"b@example.org"}, ClientIP: "192.0.2.25", Received: clk.now()}
	if _, err := a.Ingest(ctx, env, []byte("Subject: x\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	seen := clk.now()
	clk.add(time.Minute)
	if gaps, err := a.CheckJournalGaps(ctx); err != nil || len(gaps) != 0 {
		t.Fatalf("CheckJournalGaps: %v %v", gaps, err)
	}
	a.Close()

	// 90 minutes later the daemon starts again: the silence counts from
	// the message, not from the restart.
	clk.add(90 * time.Minute)
	if a, err = Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Hour)
	gaps, err := a.CheckJournalGaps(ctx)
	if err != nil || len(gaps) != 1 || !gaps[0].LastSeen.Equal(seen) {
		t.Fatalf("gaps after a restart: %+v %v, want one since %v", gaps, err, seen)
	}
	a.Close()
	// Another restart during the gap: still open, not audited again.
	clk.add(time.Hour)
	if a, err = Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if gaps := a.JournalGaps(); len(gaps) != 1 {
		t.Errorf("open gaps after the second restart: %+v", gaps)
	}
	if _, err := a.CheckJournalGaps(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	audit.Read(ctx, auditDir(dir), audit.Filter{Types: []string{audit.TypeJournalGap}}, func(audit.Entry) error { n++; return nil })
	if n != 1 {
		t.Errorf("%d journal.gap entries, want 1", n)
	}
}

// TestMonitorStatePowerLoss cuts the power at every file operation of a
// monitor.json write: the file that remains is the old one or the new one,
// whole, and it reads.
func TestMonitorStatePowerLoss(t *testing.T) {
	t.Parallel()
	f := newBackupFixture(t, t.TempDir())
	f.a.backups.last = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := f.a.saveMonitor(); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join(f.dir, monitorFile))
	if err != nil {
		t.Fatal(err)
	}
	for op := 1; op <= 5; op++ {
		for _, after := range []bool{false, true} {
			cfs, err := vfstest.New(f.dir, vfstest.Options{CrashAt: op, CrashAfter: after, TornWrites: true,
				External: []string{"catalog.db"}, Ignore: []string{"index", "audit", "segments"}})
			if err != nil {
				t.Fatal(err)
			}
			f.a.opts.FS = cfs
			f.a.backups.last = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
			f.a.saveMonitor()
			f.a.opts.FS = nil
			if err := cfs.Restore(); err != nil {
				t.Fatal(err)
			}
			st := f.a.loadMonitor() // a file that does not read gives the zero state
			if lb := st.LastBackup; lb.Year() != 2026 || lb.Month() != time.January && lb.Month() != time.February {
				now, _ := os.ReadFile(filepath.Join(f.dir, monitorFile))
				t.Errorf("op %d after %v: monitor.json holds %q", op, after, now)
			}
			if err := os.WriteFile(filepath.Join(f.dir, monitorFile), old, 0o600); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(f.dir, monitorFile+".tmp"))
		}
	}
}

// FuzzMonitorState: whatever monitor.json holds, the archive opens with
// the state it can use (or none) and never fails or panics.
func FuzzMonitorState(f *testing.F) {
	f.Add([]byte(`{"version":1,"journal":[{"source":"192.0.2.0/24","last_seen":"2025-03-12T09:00:00Z","gap_since":"2025-03-12T12:00:00Z"}],` +
		`"scrub":{"last":{"started":"2025-03-01T00:00:00Z","ended":"2025-03-01T01:00:00Z","segments":3,"total":3,"bytes":9,"next":4,"problems":[]},` +
		`"current":{"started":"2025-03-08T00:00:00Z","segments":1,"total":3,"next":2,"problems":["segment 00000001: x"]}},"last_backup":"2025-03-12T08:00:00Z"}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{`))
	exp := JournalExpectation{Source: netip.MustParsePrefix("192.0.2.0/24"), MaxSilence: time.Hour}
	f.Fuzz(func(t *testing.T, b []byte) {
		a := &Archive{dir: t.TempDir(), opts: Options{JournalExpect: []JournalExpectation{exp}}, started: time.Now()}
		a.opts.setDefaults()
		a.log = a.opts.Logger
		a.gaps.last, a.gaps.open = make([]time.Time, 1), make([]JournalGap, 1)
		if err := os.WriteFile(filepath.Join(a.dir, monitorFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		a.applyMonitor(a.loadMonitor())
		_ = a.ScrubStatusNow()
		_ = a.JournalGaps()
	})
}
