// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
)

func TestParseHoursWeekdays(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hours, days string
		from, to    int
		want        [7]bool
		bad         bool
	}{
		{hours: "07-19", days: "mon-fri", from: 7, to: 19, want: [7]bool{false, true, true, true, true, true, false}},
		{hours: "0-24", days: "sat-sun", from: 0, to: 24, want: [7]bool{true, false, false, false, false, false, true}},
		{hours: "9-17", days: "mon,wed,Fri", from: 9, to: 17, want: [7]bool{false, true, false, true, false, true, false}},
		{hours: "19-07", days: "mon", bad: true},
		{hours: "07-25", days: "mon", bad: true},
		{hours: "seven", days: "mon", bad: true},
		{hours: "07-19", days: "monday-fri", bad: true},
	} {
		var e JournalExpectation
		err := e.ParseHours(tc.hours)
		if err == nil {
			err = e.ParseWeekdays(tc.days)
		}
		if (err != nil) != tc.bad {
			t.Errorf("%q %q: error %v, want error %v", tc.hours, tc.days, err, tc.bad)
			continue
		}
		if !tc.bad && (e.FromHour != tc.from || e.ToHour != tc.to || e.Weekdays != tc.want) {
			t.Errorf("%q %q: got %d-%d %v", tc.hours, tc.days, e.FromHour, e.ToHour, e.Weekdays)
		}
	}
}

// TestJournalGap: with an injected clock, a source silent beyond its
// max_silence within its window is one gap (one warning, one audit entry,
// in Status), silence outside the window does not count, and the source's
// next message ends the gap.
func TestJournalGap(t *testing.T) {
	t.Parallel()
	// Friday 2025-03-14 16:00 UTC.
	clk := &clock{t: time.Date(2025, 3, 14, 16, 0, 0, 0, time.UTC)}
	exp := JournalExpectation{Source: netip.MustParsePrefix("192.0.2.0/24"), MaxSilence: 2 * time.Hour}
	if err := exp.ParseHours("07-19"); err != nil {
		t.Fatal(err)
	}
	if err := exp.ParseWeekdays("mon-fri"); err != nil {
		t.Fatal(err)
	}
	id, _ := age.GenerateX25519Identity()
	a, err := Create(t.TempDir(), []string{id.Recipient().String()}, Options{Now: clk.now, MinFreeBytes: -1,
		JournalExpect: []JournalExpectation{exp}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := WithActor(context.Background(), "test")
	check := func(want int) []JournalGap {
		t.Helper()
		gaps, err := a.CheckJournalGaps(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(gaps) != want {
			t.Fatalf("at %v: %d gaps %+v, want %d", clk.now(), len(gaps), gaps, want)
		}
		return gaps
	}
	audited := func() int {
		n := 0
		if err := audit.Read(ctx, auditDir(a.dir), audit.Filter{Types: []string{audit.TypeJournalGap}}, func(e audit.Entry) error {
			if e.Fields["source"] != "192.0.2.0/24" || e.Fields["max_silence"] != "2h0m0s" || e.Fields["last_seen"] == "" {
				t.Errorf("journal.gap fields %v", e.Fields)
			}
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ingest := func(ip string) {
		t.Helper()
		env := &sealmail.Envelope{MailFrom: "a@example.com", RcptTo: []string{"b@example.org"}, ClientIP: ip, Received: clk.now()}
		if _, err := a.Ingest(ctx, env, []byte("Subject: x\r\n\r\nbody\r\n")); err != nil {
			t.Fatal(err)
		}
	}

	check(0)
	clk.add(90 * time.Minute) // 17:30, 1.5 h silent
	check(0)
	ingest("198.51.100.7") // another source does not count
	clk.add(2 * time.Hour) // 19:30: 16:00-19:00 silent within the window, but now is outside it
	check(0)
	// Saturday and Sunday do not count; Monday 07:00 + 1 h makes 4 h.
	clk.set(time.Date(2025, 3, 17, 6, 30, 0, 0, time.UTC))
	check(0)
	clk.set(time.Date(2025, 3, 17, 8, 0, 0, 0, time.UTC))
	gaps := check(1)
	if gaps[0].Source != "192.0.2.0/24" || !gaps[0].LastSeen.Equal(time.Date(2025, 3, 14, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("gap %+v", gaps[0])
	}
	if n := audited(); n != 1 {
		t.Errorf("%d journal.gap entries, want 1", n)
	}
	clk.add(time.Hour)
	check(1) // the same gap: no second entry
	if n := audited(); n != 1 {
		t.Errorf("%d journal.gap entries after a second check, want 1", n)
	}
	st, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.JournalGaps) != 1 || st.JournalGaps[0].Source != "192.0.2.0/24" {
		t.Errorf("status journal gaps %+v", st.JournalGaps)
	}

	ingest("192.0.2.25") // the source sends again
	check(0)
	clk.add(3 * time.Hour) // 12:00, silent 3 h again: a new gap
	check(1)
	if n := audited(); n != 2 {
		t.Errorf("%d journal.gap entries after a second gap, want 2", n)
	}
}

// TestJournalGapSilenceWithinWindow: the silence counts only active hours.
func TestJournalGapSilenceWithinWindow(t *testing.T) {
	t.Parallel()
	e := JournalExpectation{}
	if err := e.ParseHours("07-19"); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2025, 3, 14, 18, 30, 0, 0, time.UTC)
	to := time.Date(2025, 3, 15, 8, 15, 0, 0, time.UTC)
	if got, want := e.silence(from, to, 100*time.Hour), 30*time.Minute+75*time.Minute; got != want {
		t.Errorf("silence = %v, want %v", got, want)
	}
}
