// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"testing"
	"time"
)

func TestParsePeriod(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Period
		ok   bool
	}{
		{"90d", Period{N: 90, Unit: Days}, true},
		{"1d", Period{N: 1, Unit: Days}, true},
		{"2w", Period{N: 2, Unit: Weeks}, true},
		{"18m", Period{N: 18, Unit: Months}, true},
		{"6y", Period{N: 6, Unit: Years}, true},
		{"8y", Period{N: 8, Unit: Years}, true},
		{"10y", Period{N: 10, Unit: Years}, true},
		{"6Y", Period{N: 6, Unit: Years}, true},
		{"forever", Period{Forever: true}, true},
		{"Forever", Period{Forever: true}, true},
		{"1000y", Period{N: 1000, Unit: Years}, true},
		{"12000m", Period{N: 12000, Unit: Months}, true},
		{"1001y", Period{}, false},
		{"99999999999999999999y", Period{}, false},
		{"6 yrs", Period{}, false},
		{"6yrs", Period{}, false},
		{"6 y", Period{}, false},
		{" 6y", Period{}, false},
		{"6y ", Period{}, false},
		{"0y", Period{}, false},
		{"0d", Period{}, false},
		{"06y", Period{}, false},
		{"-6y", Period{}, false},
		{"+6y", Period{}, false},
		{"6", Period{}, false},
		{"y", Period{}, false},
		{"", Period{}, false},
		{"6h", Period{}, false},
		{"1.5y", Period{}, false},
		{"never", Period{}, false},
		{"６y", Period{}, false}, // full-width digit
	}
	for _, tt := range tests {
		got, err := ParsePeriod(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParsePeriod(%q) = %+v, %v, want %+v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err == nil {
			back, err := ParsePeriod(got.String())
			if err != nil || back != got {
				t.Errorf("ParsePeriod(%q).String() = %q, reparses to %+v, %v", tt.in, got.String(), back, err)
			}
		}
	}
}

func date(y int, m time.Month, d, hh, mm int, loc *time.Location) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, loc)
}

func TestPeriodAddTo(t *testing.T) {
	t.Parallel()
	berlin := mustZone(t, "Europe/Berlin")
	tests := []struct {
		period string
		from   time.Time
		want   time.Time
	}{
		{"1d", date(2025, 3, 15, 10, 0, time.UTC), date(2025, 3, 16, 10, 0, time.UTC)},
		{"90d", date(2025, 1, 1, 0, 0, time.UTC), date(2025, 4, 1, 0, 0, time.UTC)},
		{"90d", date(2024, 1, 1, 0, 0, time.UTC), date(2024, 3, 31, 0, 0, time.UTC)}, // leap year
		{"2w", date(2025, 2, 20, 8, 30, time.UTC), date(2025, 3, 6, 8, 30, time.UTC)},
		{"1m", date(2025, 1, 15, 0, 0, time.UTC), date(2025, 2, 15, 0, 0, time.UTC)},
		{"1m", date(2025, 1, 31, 12, 0, time.UTC), date(2025, 2, 28, 12, 0, time.UTC)}, // clamped, not 3 March
		{"1m", date(2024, 1, 31, 12, 0, time.UTC), date(2024, 2, 29, 12, 0, time.UTC)}, // clamped, leap year
		{"1m", date(2025, 3, 31, 0, 0, time.UTC), date(2025, 4, 30, 0, 0, time.UTC)},
		{"18m", date(2025, 8, 31, 0, 0, time.UTC), date(2027, 2, 28, 0, 0, time.UTC)},
		{"12m", date(2025, 12, 31, 0, 0, time.UTC), date(2026, 12, 31, 0, 0, time.UTC)},
		{"13m", date(2025, 12, 15, 0, 0, time.UTC), date(2027, 1, 15, 0, 0, time.UTC)},
		{"1y", date(2024, 2, 29, 9, 0, time.UTC), date(2025, 2, 28, 9, 0, time.UTC)}, // leap day, clamped
		{"4y", date(2024, 2, 29, 9, 0, time.UTC), date(2028, 2, 29, 9, 0, time.UTC)}, // leap day to leap day
		{"6y", date(2026, 1, 1, 0, 0, time.UTC), date(2032, 1, 1, 0, 0, time.UTC)},
		{"1000y", date(2025, 1, 1, 0, 0, time.UTC), date(3025, 1, 1, 0, 0, time.UTC)},
		// Days are calendar days: across the spring DST change the wall
		// clock stays, so the day has 23 hours.
		{"1d", date(2025, 3, 29, 12, 0, berlin), date(2025, 3, 30, 12, 0, berlin)},
	}
	for _, tt := range tests {
		p, err := ParsePeriod(tt.period)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.AddTo(tt.from); !got.Equal(tt.want) {
			t.Errorf("%s.AddTo(%v) = %v, want %v", tt.period, tt.from, got, tt.want)
		}
	}
	p := Period{N: 1, Unit: Days}
	if got := p.AddTo(date(2025, 3, 29, 12, 0, berlin)).Sub(date(2025, 3, 29, 12, 0, berlin)); got != 23*time.Hour {
		t.Errorf("1d across DST = %v, want 23h", got)
	}
}

func TestPeriodAddToForeverPanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Errorf("forever.AddTo did not panic")
		}
	}()
	Period{Forever: true}.AddTo(time.Unix(0, 0))
}

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone %s: %v (install tzdata)", name, err)
	}
	return loc
}
