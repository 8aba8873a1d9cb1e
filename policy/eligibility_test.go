// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"testing"
	"time"
)

func TestEligible(t *testing.T) {
	t.Parallel()
	until := date(2032, 1, 1, 0, 0, time.UTC)
	before, at, after := until.Add(-time.Nanosecond), until, until.AddDate(1, 0, 0)
	tests := []struct {
		name    string
		now     time.Time
		until   time.Time
		forever bool
		held    []string
		ok      bool
		why     string
	}{
		{"retention running", before, until, false, nil, false, "retained until 2032-01-01"},
		{"may go from the instant", at, until, false, nil, true, "retention ended 2032-01-01"},
		{"expired", after, until, false, nil, true, "retention ended 2032-01-01"},
		{"expired but held", after, until, false, []string{"case-4711"}, false, "held by case-4711"},
		{"two holds", after, until, false, []string{"case-4711", "tax-2024"}, false, "held by case-4711, tax-2024"},
		{"held and retained", before, until, false, []string{"case-4711"}, false, "held by case-4711; retained until 2032-01-01"},
		{"forever", after, time.Time{}, true, nil, false, "kept forever"},
		{"forever and held", after, time.Time{}, true, []string{"h"}, false, "held by h; kept forever"},
		{"unknown retention", after, time.Time{}, false, nil, false, "retention unknown (no retain-until)"},
		{"unnamed hold still holds", after, until, false, []string{""}, false, "held by (unnamed hold)"},
		{"empty hold list", after, until, false, []string{}, true, "retention ended 2032-01-01"},
		{"time of day shown", after, date(2031, 3, 15, 10, 30, time.UTC), false, nil, true, "retention ended 2031-03-15T10:30:00Z"},
	}
	for _, tt := range tests {
		ok, why := Eligible(tt.now, tt.until, tt.forever, tt.held)
		if ok != tt.ok || why != tt.why {
			t.Errorf("%s: Eligible(%v, %v, %v, %q) = %v, %q, want %v, %q", tt.name, tt.now, tt.until, tt.forever, tt.held, ok, why, tt.ok, tt.why)
		}
	}
	// Dates in the policy zone print with the zone.
	berlin := mustZone(t, "Europe/Berlin")
	if _, why := Eligible(date(2031, 1, 1, 0, 0, time.UTC), date(2032, 1, 1, 0, 0, berlin), false, nil); why != "retained until 2032-01-01 CET" {
		t.Errorf("Eligible(Berlin) why = %q, want %q", why, "retained until 2032-01-01 CET")
	}
}

func TestErasable(t *testing.T) {
	t.Parallel()
	until := date(2032, 1, 1, 0, 0, time.UTC)
	before, after := until.AddDate(0, 0, -1), until.AddDate(0, 0, 1)
	tests := []struct {
		name     string
		now      time.Time
		until    time.Time
		forever  bool
		held     []string
		override bool
		ok       bool
		why      string
	}{
		{"expired", after, until, false, nil, false, true, "retention ended 2032-01-01"},
		{"retained: restrict instead", before, until, false, nil, false, false, "retained until 2032-01-01; restrict it instead, or override the retention"},
		{"retained, overridden", before, until, false, nil, true, true, "retained until 2032-01-01, overridden"},
		{"forever", after, time.Time{}, true, nil, false, false, "kept forever; restrict it instead, or override the retention"},
		{"forever, overridden", after, time.Time{}, true, nil, true, true, "kept forever, overridden"},
		{"unknown, overridden", after, time.Time{}, false, nil, true, true, "retention unknown (no retain-until), overridden"},
		{"held wins over expiry", after, until, false, []string{"case-4711"}, false, false, "held by case-4711"},
		{"held wins over override", before, until, false, []string{"case-4711"}, true, false, "held by case-4711"},
		{"held and forever, overridden", after, time.Time{}, true, []string{"case-4711"}, true, false, "held by case-4711"},
	}
	for _, tt := range tests {
		ok, why := Erasable(tt.now, tt.until, tt.forever, tt.held, tt.override)
		if ok != tt.ok || why != tt.why {
			t.Errorf("%s: Erasable(%v, %v, %v, %q, %v) = %v, %q, want %v, %q", tt.name, tt.now, tt.until, tt.forever, tt.held, tt.override, ok, why, tt.ok, tt.why)
		}
	}
}

// TestEligibleNeverBeforeEvaluate ties Evaluate and Eligible together over a
// span of receipt days: a message is never eligible before its retain-until,
// and is eligible from it on.
func TestEligibleNeverBeforeEvaluate(t *testing.T) {
	t.Parallel()
	p := germanPolicy()
	c, err := p.Compile()
	if err != nil {
		t.Fatal(err)
	}
	start := date(2023, 12, 25, 13, 0, time.UTC)
	for d := range 800 {
		recv := start.AddDate(0, 0, d)
		f := facts("a@supplier.example", []string{"b@example.de"}, recv, nil)
		_, until, forever := c.Evaluate(f)
		if forever || !until.After(recv.AddDate(6, 0, 0)) {
			t.Fatalf("Evaluate(received %v) = %v, %v; want after 6 years", recv, until, forever)
		}
		if until.In(c.loc).Month() != time.January || until.In(c.loc).Day() != 1 || until.In(c.loc).Hour() != 0 {
			t.Errorf("Evaluate(received %v) = %v, want 1 January 00:00 Berlin", recv, until)
		}
		if ok, _ := Eligible(until.Add(-time.Second), until, forever, nil); ok {
			t.Errorf("Eligible one second before %v = true", until)
		}
		if ok, _ := Eligible(until, until, forever, nil); !ok {
			t.Errorf("Eligible at %v = false", until)
		}
	}
}
