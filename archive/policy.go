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

// ApplyPolicy re-evaluates the retention rules in force for stored
// messages and records the new retain-until of each whose result changed;
// every change (old and new value) is audited.
func (a *Archive) ApplyPolicy(ctx context.Context, facts []PolicyFacts) ([]PolicyChange, error) {
	if a.retention == nil {
		return nil, errors.New("policy apply: no retention rules are configured ([retention] in the configuration)")
	}
	var changes []PolicyChange
	for _, f := range facts {
		m, err := a.store.Message(f.ID)
		if err != nil || m.State != store.StateLive {
			continue
		}
		_, until, forever := a.retention.Evaluate(policy.Facts{Envelopes: f.Envelopes, Header: f.Header, Received: m.Received})
		until = until.Truncate(time.Second) // the catalog keeps seconds
		if until.Equal(m.RetainUntil) && forever == m.Forever {
			continue
		}
		if _, _, err := a.store.SetRetention(f.ID, until, forever); err != nil {
			return changes, err
		}
		changes = append(changes, PolicyChange{ID: uint64(f.ID), From: retention(m.RetainUntil, m.Forever), To: retention(until, forever)})
	}
	if err := a.logEvent(ctx, audit.TypePolicyChange, policyFields{Op: "apply", Evaluated: len(facts), Changed: changes}); err != nil {
		return changes, err
	}
	return changes, nil
}
