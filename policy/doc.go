// SPDX-License-Identifier: Apache-2.0

// Package policy decides how long sealmail keeps a message and whether it
// may be deleted: retention rules ([Policy], [Rule]), legal holds ([Hold],
// [Holds]) and the purge and erasure decisions ([Eligible], [Erasable]).
//
// It is pure logic. The archive evaluates a [Policy] at ingest and stores the
// rule name and retain-until instant with the message; the index matches hold
// queries against messages; this package only validates those queries with
// index/query. docs/retention.md explains the rules for operators.
//
// # Calendar arithmetic
//
// Periods ("90d", "2w", "18m", "6y", "forever") are added in the policy time
// zone ([Policy.TimeZone], default UTC) to the wall-clock time of the start
// instant. Days and weeks are calendar days (a day across a DST change is 23
// or 25 hours). Months and years keep the day of the month but clamp it to
// the last day of the target month: 31 January + 1m = 28 (or 29) February,
// 29 February 2024 + 1y = 28 February 2025. This differs from
// [time.Time.AddDate], which would overflow into March; clamping never keeps
// a message longer than the period says, and never deletes it earlier than
// the same calendar day would. With From = "end-of-year" the start is
// 1 January 00:00 of the year after receipt, in the policy time zone (§ 147
// Abs. 4 AO, § 257 Abs. 5 HGB): a letter received 2025-03-15 and kept 6y may
// go from 2032-01-01T00:00.
//
// # Invariants
//
//   - Nothing in the package reads the clock: every decision takes now as an
//     argument.
//   - An invalid or incomplete policy never makes a message deletable. When
//     a rule's period, the time zone or the receipt time cannot be used,
//     [Policy.Evaluate] answers "forever" instead of guessing. Callers must
//     still run [Policy.Validate] and refuse to start on errors.
//   - [Eligible] and [Erasable] say no unless every condition for deletion is
//     positively met: a zero retain-until is treated as "unknown", not as
//     "expired", and an active hold always wins.
//   - Released holds are never removed from [Holds]; they are the record.
//   - Untrusted envelope claims ([sealmail.Envelope.Untrusted]) are never
//     used for rule matching.
//
// # Concurrency
//
// [Compiled] is immutable and safe for concurrent use. [Policy] and [Holds]
// are plain values: the caller serialises changes to them.
package policy
