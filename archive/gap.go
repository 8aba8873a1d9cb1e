// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
)

// JournalExpectation says how often a journaling source is expected to
// send: silence longer than MaxSilence, counted only within the active
// window (Hours on Weekdays, in the time zone of Options.Now), is a journal
// gap.
type JournalExpectation struct {
	Source     netip.Prefix
	MaxSilence time.Duration
	// FromHour and ToHour bound the active hours, FromHour ≤ h < ToHour
	// (0–24); both zero means the whole day.
	FromHour, ToHour int
	// Weekdays are the active days; none set means every day.
	Weekdays [7]bool // indexed by time.Weekday
}

// ParseHours parses "07-19" (from 07:00 up to 19:00) into FromHour and
// ToHour.
func (e *JournalExpectation) ParseHours(s string) error {
	from, to, ok := strings.Cut(s, "-")
	f, err1 := strconv.Atoi(strings.TrimSpace(from))
	t, err2 := strconv.Atoi(strings.TrimSpace(to))
	if !ok || err1 != nil || err2 != nil || f < 0 || t > 24 || f >= t {
		return fmt.Errorf("hours %q: want FROM-TO in whole hours, 0 ≤ FROM < TO ≤ 24, e.g. \"07-19\"", s)
	}
	e.FromHour, e.ToHour = f, t
	return nil
}

var weekdayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseWeekdays parses "mon-fri" or "mon,wed,fri" (a range may wrap, as
// "sat-sun") into Weekdays.
func (e *JournalExpectation) ParseWeekdays(s string) error {
	day := func(n string) (int, bool) {
		for i, d := range weekdayNames {
			if strings.EqualFold(strings.TrimSpace(n), d) {
				return i, true
			}
		}
		return 0, false
	}
	var w [7]bool
	for _, part := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(part, "-")
		f, ok1 := day(from)
		t, ok2 := f, true
		if isRange {
			t, ok2 = day(to)
		}
		if !ok1 || !ok2 {
			return fmt.Errorf("weekdays %q: want days (sun, mon, … sat) or ranges such as \"mon-fri\"", s)
		}
		for d := f; ; d = (d + 1) % 7 {
			w[d] = true
			if d == t {
				break
			}
		}
	}
	e.Weekdays = w
	return nil
}

// active reports whether t is within the expectation's window.
func (e *JournalExpectation) active(t time.Time) bool {
	if e.Weekdays != [7]bool{} && !e.Weekdays[t.Weekday()] {
		return false
	}
	if e.FromHour == 0 && e.ToHour == 0 {
		return true
	}
	h := t.Hour()
	return h >= e.FromHour && h < e.ToHour
}

// silence returns how much of [from, to) lies within the active window,
// counting at most up to limit (beyond it the exact figure does not
// matter). The window changes only on the hour, so it steps hour by hour.
func (e *JournalExpectation) silence(from, to time.Time, limit time.Duration) time.Duration {
	var sum time.Duration
	for t := from; t.Before(to) && sum <= limit; {
		next := t.Truncate(time.Hour).Add(time.Hour)
		if next.After(to) {
			next = to
		}
		if e.active(t) {
			sum += next.Sub(t)
		}
		t = next
	}
	return sum
}

// JournalGap is a journaling source silent for longer than expected.
type JournalGap struct {
	Source     string    `json:"source"`      // the configured network
	LastSeen   time.Time `json:"last_seen"`   // last message, or when the daemon started watching
	MaxSilence string    `json:"max_silence"` // as configured
	Since      time.Time `json:"since"`       // when the gap was detected
}

// gapWatch is the state of the journal expectations.
type gapWatch struct {
	mu   sync.Mutex
	last []time.Time  // per expectation: last message, or the start
	open []JournalGap // per expectation: the open gap (zero Since: none)
}

// noteJournalSource records a message from a client for the expectations
// whose source it is in; a gap it was in ends.
func (a *Archive) noteJournalSource(env *sealmail.Envelope) {
	if len(a.opts.JournalExpect) == 0 {
		return
	}
	ip, err := netip.ParseAddr(env.ClientIP)
	if err != nil {
		return
	}
	ip = ip.Unmap()
	now := a.opts.Now()
	a.gaps.mu.Lock()
	defer a.gaps.mu.Unlock()
	for i, e := range a.opts.JournalExpect {
		if !e.Source.Contains(ip) {
			continue
		}
		a.gaps.last[i] = now
		if !a.gaps.open[i].Since.IsZero() {
			a.log.Info("journal source sends again", "source", e.Source.String(), "silent_since", a.gaps.open[i].LastSeen)
			a.gaps.open[i] = JournalGap{}
		}
	}
}

// CheckJournalGaps looks for journaling sources silent beyond their
// expectation. A new gap is logged as a warning and audited
// (journal.gap), once per gap; a source's next message ends it. It returns
// the open gaps. The daemon calls it every minute.
func (a *Archive) CheckJournalGaps(ctx context.Context) ([]JournalGap, error) {
	now := a.opts.Now()
	var fresh []JournalGap
	a.gaps.mu.Lock()
	for i := range a.opts.JournalExpect {
		e := &a.opts.JournalExpect[i]
		if !a.gaps.open[i].Since.IsZero() {
			continue
		}
		if !e.active(now) || e.silence(a.gaps.last[i], now, e.MaxSilence) <= e.MaxSilence {
			continue
		}
		g := JournalGap{Source: e.Source.String(), LastSeen: a.gaps.last[i], MaxSilence: e.MaxSilence.String(), Since: now}
		a.gaps.open[i] = g
		fresh = append(fresh, g)
	}
	a.gaps.mu.Unlock()
	var firstErr error
	if len(a.opts.JournalExpect) > 0 {
		// The sources' last messages survive a restart (at most a
		// minute old).
		if err := a.saveMonitor(); err != nil {
			firstErr = err
		}
	}
	for _, g := range fresh {
		a.log.Warn("journal gap: no message from a journaling source for longer than expected",
			"source", g.Source, "last_seen", g.LastSeen, "max_silence", g.MaxSilence)
		err := a.logEvent(ctx, audit.TypeJournalGap, gapFields{Source: g.Source, LastSeen: g.LastSeen.UTC().Format(time.RFC3339), MaxSilence: g.MaxSilence})
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("archive: audit journal gap of %s: %w", g.Source, err)
		}
	}
	return a.JournalGaps(), firstErr
}

// journalStates returns each expectation's last message and open gap, for
// monitor.json.
func (a *Archive) journalStates() []journalState {
	a.gaps.mu.Lock()
	defer a.gaps.mu.Unlock()
	out := make([]journalState, len(a.opts.JournalExpect))
	for i, e := range a.opts.JournalExpect {
		out[i] = journalState{Source: e.Source.String(), LastSeen: a.gaps.last[i].UTC(), GapSince: a.gaps.open[i].Since.UTC()}
	}
	return out
}

// JournalGaps returns the open journal gaps (not audited; for status and
// metrics).
func (a *Archive) JournalGaps() []JournalGap {
	a.gaps.mu.Lock()
	defer a.gaps.mu.Unlock()
	var out []JournalGap
	for _, g := range a.gaps.open {
		if !g.Since.IsZero() {
			out = append(out, g)
		}
	}
	return out
}

// JournalExpectations returns the configured sources, in order.
func (a *Archive) JournalExpectations() []string {
	out := make([]string, len(a.opts.JournalExpect))
	for i, e := range a.opts.JournalExpect {
		out[i] = e.Source.String()
	}
	return out
}

// JournalSource is a journal.expect source and its last message.
type JournalSource struct {
	Source     string    `json:"source"`
	LastSeen   time.Time `json:"last_seen"` // last message, or when the daemon started watching
	MaxSilence string    `json:"max_silence"`
	Gap        bool      `json:"gap"` // silent beyond max_silence now
}

// journalSources returns the configured sources with their last messages.
func (a *Archive) journalSources() []JournalSource {
	a.gaps.mu.Lock()
	defer a.gaps.mu.Unlock()
	var out []JournalSource
	for i, e := range a.opts.JournalExpect {
		out = append(out, JournalSource{Source: e.Source.String(), LastSeen: a.gaps.last[i].UTC(), MaxSilence: e.MaxSilence.String(),
			Gap: !a.gaps.open[i].Since.IsZero()})
	}
	return out
}
