// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/index"
	"github.com/sealmail/sealmail/index/query"
	"github.com/sealmail/sealmail/policy"
)

// HoldInfo is a legal hold and how many messages its query matches now.
type HoldInfo struct {
	Name          string    `json:"name"`
	Query         string    `json:"query"` // search syntax
	Reason        string    `json:"reason"`
	CreatedBy     string    `json:"created_by"`
	Created       time.Time `json:"created"`
	Released      time.Time `json:"released,omitzero"` // zero while active
	ReleasedBy    string    `json:"released_by,omitempty"`
	ReleaseReason string    `json:"release_reason,omitempty"`
	Active        bool      `json:"active"`
	Matches       int       `json:"matches"` // messages the query matches in the index now (-1: unknown)
}

func (a *Archive) loadHolds() (*policy.Holds, error) {
	b, err := a.store.Holds()
	if err != nil {
		return nil, err
	}
	var hs policy.Holds
	if len(b) > 0 {
		if err := json.Unmarshal(b, &hs); err != nil {
			return nil, fmt.Errorf("holds: %w", err)
		}
	}
	return &hs, nil
}

func (a *Archive) saveHolds(hs *policy.Holds) error {
	b, err := json.Marshal(hs)
	if err != nil {
		return err
	}
	return a.store.SetHolds(b)
}

func (a *Archive) holdInfo(ctx context.Context, h policy.Hold) HoldInfo {
	hi := HoldInfo{Name: h.Name, Query: h.Query, Reason: h.Reason, CreatedBy: h.CreatedBy, Created: h.Created,
		Released: h.Released, ReleasedBy: h.ReleasedBy, ReleaseReason: h.ReleaseReason, Active: h.Active(), Matches: -1}
	if x, err := a.idx(); err == nil {
		if n, err := x.Count(ctx, h.Query); err == nil {
			hi.Matches = n
		}
	}
	return hi
}

// CreateHold places a legal hold: every message its query matches, now
// and in future, is kept whatever retention says, until it is released.
func (a *Archive) CreateHold(ctx context.Context, name, q, reason string) (*HoldInfo, error) {
	if _, err := query.Parse(q); err != nil {
		return nil, err
	}
	a.holdMu.Lock()
	defer a.holdMu.Unlock()
	hs, err := a.loadHolds()
	if err != nil {
		return nil, err
	}
	h, err := hs.Create(name, q, reason, actorOf(ctx), a.opts.Now())
	if err != nil {
		return nil, err
	}
	if err := a.saveHolds(hs); err != nil {
		return nil, err
	}
	hi := a.holdInfo(ctx, h)
	if err := a.logEvent(ctx, audit.TypeHoldCreate, holdCreateFields{Name: name, Query: q, Reason: reason, Matches: hi.Matches}); err != nil {
		return nil, err
	}
	return &hi, nil
}

// ReleaseHold ends a legal hold; it stays on record.
func (a *Archive) ReleaseHold(ctx context.Context, name, reason string) (*HoldInfo, error) {
	a.holdMu.Lock()
	defer a.holdMu.Unlock()
	hs, err := a.loadHolds()
	if err != nil {
		return nil, err
	}
	h, err := hs.Release(name, actorOf(ctx), reason, a.opts.Now())
	if err != nil {
		return nil, err
	}
	if err := a.saveHolds(hs); err != nil {
		return nil, err
	}
	if err := a.logEvent(ctx, audit.TypeHoldRelease, holdReleaseFields{Name: name, Query: h.Query, Reason: reason}); err != nil {
		return nil, err
	}
	hi := a.holdInfo(ctx, h)
	return &hi, nil
}

// Holds lists every hold, active and released.
func (a *Archive) Holds(ctx context.Context) ([]HoldInfo, error) {
	hs, err := a.loadHolds()
	if err != nil {
		return nil, err
	}
	var out []HoldInfo
	for _, h := range hs.All() {
		out = append(out, a.holdInfo(ctx, h))
	}
	if err := a.logEvent(ctx, audit.TypeAPICall, callFields{Op: "holds"}); err != nil {
		return nil, err
	}
	return out, nil
}

// heldBy runs every active hold's query and returns, per message, the
// holds that cover it. The caller holds holdMu.
func (a *Archive) heldBy(ctx context.Context, x *index.Index) (map[sealmail.MessageID][]string, error) {
	hs, err := a.loadHolds()
	if err != nil {
		return nil, err
	}
	held := make(map[sealmail.MessageID][]string)
	for _, h := range hs.Active() {
		err := x.IDs(ctx, h.Query, func(id sealmail.MessageID) error {
			held[id] = append(held[id], h.Name)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("hold %q: %w", h.Name, err)
		}
	}
	return held, nil
}
