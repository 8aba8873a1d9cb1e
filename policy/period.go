// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Unit is the unit of a [Period].
type Unit byte

// Period units.
const (
	Days   Unit = 'd'
	Weeks  Unit = 'w'
	Months Unit = 'm'
	Years  Unit = 'y'
)

// maxPeriod bounds N per unit to a little over 1000 years, so that adding a
// period can never overflow a time.Time.
var maxPeriod = map[Unit]int{Days: 366000, Weeks: 52200, Months: 12000, Years: 1000}

// Period is a retention period: N units, or forever.
type Period struct {
	N       int
	Unit    Unit
	Forever bool
}

// ParsePeriod parses a period: a positive decimal number without leading
// zeros followed by one unit letter, d (days), w (weeks), m (months) or y
// (years), e.g. "90d", "18m", "6y"; or "forever". Unit letters and "forever"
// are case-insensitive; no spaces are allowed. Zero periods are rejected:
// a period says how long mail must be kept, and "keep 0 days" is almost
// always a typo for something else.
func ParsePeriod(s string) (Period, error) {
	if strings.EqualFold(s, "forever") {
		return Period{Forever: true}, nil
	}
	bad := func(why string) (Period, error) {
		return Period{}, fmt.Errorf("policy: period %q: %s; write a number and a unit (90d, 2w, 18m, 6y) or forever", s, why)
	}
	if len(s) < 2 {
		return bad("too short")
	}
	u := Unit(s[len(s)-1] | 0x20) // ASCII lower case
	limit, ok := maxPeriod[u]
	if !ok {
		return bad("unknown unit")
	}
	num := s[:len(s)-1]
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return bad("not a number followed by a unit")
		}
	}
	if num[0] == '0' {
		return bad("must be positive, without leading zeros")
	}
	n, err := strconv.Atoi(num)
	if err != nil || n > limit {
		return bad(fmt.Sprintf("longer than %d%c; use forever", limit, u))
	}
	return Period{N: n, Unit: u}, nil
}

// String returns the canonical form, which [ParsePeriod] parses back to p.
func (p Period) String() string {
	if p.Forever {
		return "forever"
	}
	return strconv.Itoa(p.N) + string(rune(p.Unit))
}

// AddTo returns t plus the period in t's location (see the package
// documentation, Calendar arithmetic): days and weeks are calendar days,
// months and years clamp the day to the end of the target month. It panics
// for a forever period, which has no end.
func (p Period) AddTo(t time.Time) time.Time {
	switch p.Unit {
	case Days:
		return t.AddDate(0, 0, p.N)
	case Weeks:
		return t.AddDate(0, 0, 7*p.N)
	case Months:
		return addMonthsClamped(t, p.N)
	case Years:
		return addMonthsClamped(t, 12*p.N)
	}
	panic(fmt.Sprintf("policy: AddTo on period %+v", p))
}

// addMonthsClamped adds n months to t's wall-clock date, clamping the day to
// the last day of the target month.
func addMonthsClamped(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	hh, mm, ss := t.Clock()
	total := int(m) - 1 + n
	ty, tm := y+total/12, time.Month(total%12+1)
	if last := daysIn(ty, tm); d > last {
		d = last
	}
	return time.Date(ty, tm, d, hh, mm, ss, t.Nanosecond(), t.Location())
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
