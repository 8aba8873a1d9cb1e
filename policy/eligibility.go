// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"strings"
	"time"
)

// Eligible decides whether a message may be purged at now by the retention
// expiry job. It may only when retainUntil is set and not after now (the
// message "may go from" that instant), forever is false, and heldBy, the
// names of the active holds whose queries match the message, is empty.
// why explains the decision for the deletion record or the skip report:
// "held by case-4711", "retained until 2032-01-01", "kept forever", or, when
// ok, "retention ended 2032-01-01". Holds are named first because they
// outlast any retention. The caller may append the rule name
// (" by rule invoices"), which Eligible does not know.
//
// A zero retainUntil with forever false means the retention is unknown (a
// missing catalog value), and is never eligible.
func Eligible(now, retainUntil time.Time, forever bool, heldBy []string) (ok bool, why string) {
	var reasons []string
	if h := heldWhy(heldBy); h != "" {
		reasons = append(reasons, h)
	}
	if r := retainedWhy(now, retainUntil, forever); r != "" {
		reasons = append(reasons, r)
	}
	if len(reasons) > 0 {
		return false, strings.Join(reasons, "; ")
	}
	return true, "retention ended " + formatInstant(retainUntil)
}

// Erasable decides whether a message may be erased at now on a data
// subject's request (GDPR Art. 17). Active holds always win (Art. 17(3)(e):
// legal claims): a held message is never erasable. A running retention
// (Art. 17(3)(b): a legal obligation, e.g. § 147 AO; forever; or unknown)
// blocks erasure unless overrideRetention is set, which records a decision
// that the retention does not apply to this message. When Erasable says no
// because of retention, the usual answer is restriction (Art. 18, § 35
// Abs. 3 BDSG) until the retention ends.
func Erasable(now, retainUntil time.Time, forever bool, heldBy []string, overrideRetention bool) (ok bool, why string) {
	if h := heldWhy(heldBy); h != "" {
		return false, h
	}
	r := retainedWhy(now, retainUntil, forever)
	switch {
	case r == "":
		return true, "retention ended " + formatInstant(retainUntil)
	case overrideRetention:
		return true, r + ", overridden"
	}
	return false, r + "; restrict it instead, or override the retention"
}

// heldWhy names the holds, or "" when there are none. An empty name still
// counts as a hold: a caller's bug must not free a held message.
func heldWhy(heldBy []string) string {
	if len(heldBy) == 0 {
		return ""
	}
	names := make([]string, len(heldBy))
	for i, h := range heldBy {
		if h == "" {
			h = "(unnamed hold)"
		}
		names[i] = h
	}
	return "held by " + strings.Join(names, ", ")
}

// retainedWhy says why retention still runs at now, or "" if it has ended.
func retainedWhy(now, retainUntil time.Time, forever bool) string {
	switch {
	case forever:
		return "kept forever"
	case retainUntil.IsZero():
		return "retention unknown (no retain-until)"
	case now.Before(retainUntil):
		return "retained until " + formatInstant(retainUntil)
	}
	return ""
}

// formatInstant prints a date when t is midnight in its own location, the
// usual case for end-of-year retention, and RFC 3339 otherwise.
func formatInstant(t time.Time) string {
	if h, m, s := t.Clock(); h == 0 && m == 0 && s == 0 && t.Nanosecond() == 0 {
		if t.Location() == time.UTC {
			return t.Format("2006-01-02")
		}
		return t.Format("2006-01-02 MST")
	}
	return t.Format(time.RFC3339)
}
