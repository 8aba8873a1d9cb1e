// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"errors"
	"net/mail"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
)

// PolicyFacts are what retention rules look at for one stored message. The
// CLI decrypts them (`sealmail policy apply`); the daemon cannot.
type PolicyFacts struct {
	ID        sealmail.MessageID  `json:"id"`
	Envelopes []sealmail.Envelope `json:"envelopes"`
	Header    mail.Header         `json:"header"`
}

// PolicyChange is one message whose retain-until changed.
type PolicyChange struct {
	ID   uint64 `json:"id"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Shortens reports whether the change lets the message be deleted
// earlier: from forever to a date, from none decided (never eligible) to
// a date, or from a date to an earlier one. Such changes need four eyes
// ([PolicyApply].ShortenRules).
func (c PolicyChange) Shortens() bool {
	from, fromForever := ParseRetention(c.From)
	to, toForever := ParseRetention(c.To)
	switch {
	case toForever || to.IsZero():
		return false
	case fromForever || from.IsZero():
		return true
	}
	return to.Before(from)
}

// PolicyApply asks for the retention rules in force to be evaluated again
// for the messages the facts describe.
type PolicyApply struct {
	Facts []PolicyFacts `json:"facts"`
	// DryRun reports the changes without making (or auditing) any.
	DryRun bool `json:"dry_run,omitempty"`
	// ShortenRules lets the changes that shorten a retention
	// ([PolicyChange.Shortens]) be made: it must be the SHA-256 of the
	// rules in force ([Status].RetentionSHA256), as a second officer
	// approved them. Empty: they are withheld and reported. Another value
	// is refused: the rules changed since the approval.
	ShortenRules string `json:"shorten_rules,omitempty"`
}

// PolicyResult says what [Archive.ApplyPolicy] changed (or would, in a
// dry run) and which shortening changes it withheld.
type PolicyResult struct {
	Changed  []PolicyChange `json:"changed"`
	Withheld []PolicyChange `json:"withheld"`
}

// ApplyPolicy re-evaluates the retention rules in force for stored
// messages and records the new retain-until of each whose result changed,
// except the shortening changes p does not allow; every change (old and
// new value) and every change withheld is audited.
func (a *Archive) ApplyPolicy(ctx context.Context, p PolicyApply) (*PolicyResult, error) {
	if a.retention == nil {
		return nil, errors.New("policy apply: no retention rules are configured ([retention] in the configuration)")
	}
	if p.ShortenRules != "" && p.ShortenRules != a.retentionSum {
		return nil, invalid("policy apply: the retention rules are not those approved (their SHA-256 is %s, not %s): they changed since; ask again",
			a.retentionSum, p.ShortenRules)
	}
	res := &PolicyResult{Changed: []PolicyChange{}, Withheld: []PolicyChange{}}
	for _, f := range p.Facts {
		m, err := a.store.Message(f.ID)
		if err != nil || m.State != store.StateLive {
			continue
		}
		_, until, forever := a.retention.Evaluate(policy.Facts{Envelopes: f.Envelopes, Header: f.Header, Received: m.Received})
		until = until.Truncate(time.Second) // the catalog keeps seconds
		if until.Equal(m.RetainUntil) && forever == m.Forever {
			continue
		}
		c := PolicyChange{ID: uint64(f.ID), From: retention(m.RetainUntil, m.Forever), To: retention(until, forever)}
		if c.Shortens() && p.ShortenRules == "" {
			res.Withheld = append(res.Withheld, c)
			continue
		}
		if !p.DryRun {
			if _, _, err := a.store.SetRetention(f.ID, until, forever); err != nil {
				return res, err
			}
		}
		res.Changed = append(res.Changed, c)
	}
	if p.DryRun {
		return res, nil
	}
	fields := policyFields{Op: "apply", Evaluated: len(p.Facts), Changed: res.Changed, Withheld: len(res.Withheld), Rules: a.retentionSum}
	if err := a.logEvent(ctx, audit.TypePolicyChange, fields); err != nil {
		return res, err
	}
	return res, nil
}
