// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/index/query"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
)

// A legal hold is a named query. The receiver keeps the definitions and,
// per hold, the messages it covers: the reader service evaluates the query
// against its index (the receiver has none) and posts what matches
// ([Archive.AddHoldMembers]). Membership only grows; releasing a hold drops
// it. Purge and erasure verdicts are refused for every message a hold
// covers ([Archive.ExecutePurge]).

// HoldInfo is a legal hold and what the catalog records of its members.
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
	// Members is the number of messages the hold covers (0 once released:
	// its membership is dropped); Through is the audit sequence number
	// through which the reader had evaluated it at its last post.
	Members int    `json:"members"`
	Through uint64 `json:"through"`
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

func (a *Archive) saveHolds(hs *policy.Holds, release ...string) error {
	b, err := json.Marshal(hs)
	if err != nil {
		return err
	}
	return a.store.SetHolds(b, release...)
}

func (a *Archive) holdInfo(h policy.Hold) (HoldInfo, error) {
	hi := HoldInfo{Name: h.Name, Query: h.Query, Reason: h.Reason, CreatedBy: h.CreatedBy, Created: h.Created,
		Released: h.Released, ReleasedBy: h.ReleasedBy, ReleaseReason: h.ReleaseReason, Active: h.Active()}
	if hi.Active {
		hm, err := a.store.HoldMembers(h.Name, nil)
		if err != nil {
			return hi, err
		}
		hi.Members, hi.Through = hm.Members, hm.Through
	}
	return hi, nil
}

// CreateHold places a legal hold named name on the messages query q
// matches; the reader evaluates it and posts the members.
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
	// Audited first: a hold the log does not show must not protect (or
	// seem to protect) anything.
	if err := a.logEvent(ctx, audit.TypeHoldCreate, holdCreateFields{Name: name, Query: q, Reason: reason}); err != nil {
		return nil, err
	}
	if err := a.saveHolds(hs); err != nil {
		return nil, err
	}
	hi, err := a.holdInfo(h)
	return &hi, err
}

// ReleaseHold ends a legal hold and drops its membership; the hold stays
// on record.
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
	if err := a.logEvent(ctx, audit.TypeHoldRelease, holdReleaseFields{Name: name, Query: h.Query, Reason: reason}); err != nil {
		return nil, err
	}
	if err := a.saveHolds(hs, name); err != nil {
		return nil, err
	}
	hi, err := a.holdInfo(h)
	return &hi, err
}

// Holds lists every hold, active and released.
func (a *Archive) Holds(ctx context.Context) ([]HoldInfo, error) {
	hs, err := a.loadHolds()
	if err != nil {
		return nil, err
	}
	out := []HoldInfo{}
	for _, h := range hs.All() {
		hi, err := a.holdInfo(h)
		if err != nil {
			return nil, err
		}
		out = append(out, hi)
	}
	if err := a.logEvent(ctx, audit.TypeAPICall, callFields{Op: "holds"}); err != nil {
		return nil, err
	}
	return out, nil
}

// MaxHoldMembers bounds the ids of one membership post, so that its audit
// entry (which names every id) stays within an audit line.
const MaxHoldMembers = 2000

// AddHoldMembers records that active hold name covers the live messages
// among ids, as the reader evaluated it through audit entry through. The
// ids newly recorded are audited (hold.members) in the transaction that
// records them; it returns them.
func (a *Archive) AddHoldMembers(ctx context.Context, name string, ids []sealmail.MessageID, through uint64) ([]sealmail.MessageID, error) {
	if len(ids) > MaxHoldMembers {
		return nil, invalid("hold %q: %d members in one post, at most %d", name, len(ids), MaxHoldMembers)
	}
	a.holdMu.Lock()
	defer a.holdMu.Unlock()
	hs, err := a.loadHolds()
	if err != nil {
		return nil, err
	}
	if h, ok := hs.Get(name); !ok || !h.Active() {
		return nil, &policy.HoldError{Op: "add members", Name: name, Msg: "no active hold has this name"}
	}
	return a.store.AddHoldMembers(name, ids, through, func(added []sealmail.MessageID) error {
		if len(added) == 0 {
			return nil
		}
		f := holdMembersFields{Name: name, Count: len(added), IDs: make([]uint64, len(added)), Through: through}
		for i, id := range added {
			f.IDs[i] = uint64(id)
		}
		return a.logEvent(ctx, audit.TypeHoldMembers, f)
	})
}

// HoldMembers returns the messages active hold name covers, in id order.
func (a *Archive) HoldMembers(ctx context.Context, name string) ([]sealmail.MessageID, error) {
	hs, err := a.loadHolds()
	if err != nil {
		return nil, err
	}
	if h, ok := hs.Get(name); !ok || !h.Active() {
		return nil, &policy.HoldError{Op: "members", Name: name, Msg: "no active hold has this name"}
	}
	ids := []sealmail.MessageID{}
	if _, err := a.store.HoldMembers(name, func(id sealmail.MessageID) error { ids = append(ids, id); return nil }); err != nil {
		return nil, err
	}
	if err := a.logEvent(ctx, audit.TypeAPICall, holdMembersCallFields{Op: "hold members", Name: name, Count: len(ids)}); err != nil {
		return nil, err
	}
	return ids, nil
}

// heldBy returns, of the messages listed, those an active hold covers, with
// the holds, and the names of the active holds. The caller holds holdMu.
func (a *Archive) heldBy(listed []*store.MessageInfo) (map[sealmail.MessageID][]string, []string, error) {
	hs, err := a.loadHolds()
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, h := range hs.Active() {
		names = append(names, h.Name)
	}
	ids := make([]sealmail.MessageID, len(listed))
	for i, m := range listed {
		ids[i] = m.ID
	}
	held, err := a.store.HeldBy(names, ids)
	return held, names, err
}
