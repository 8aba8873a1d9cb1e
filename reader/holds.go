// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/index"
)

// Holds are defined at the receiver; the reader evaluates them. For each
// active hold it keeps how far it has posted the members its query finds
// (the cursor's Holds, in the index's state): after each index commit it
// runs the query over the documents updated since, posts what matches,
// and only then moves the hold's cursor. A hold created by anyone (the
// feed's hold.create entries make the reader look) starts from nothing:
// the whole index.

// holdState is an active hold as the reader evaluates it.
type holdState struct {
	info archive.HoldInfo
	key  string
}

// holdKey names one hold: a released hold's name may be used again.
func holdKey(h archive.HoldInfo) string {
	return h.Name + "@" + h.Created.UTC().Format(time.RFC3339Nano)
}

// Hold is a legal hold as the reader reports it.
type Hold struct {
	archive.HoldInfo
	// Evaluated is the audit seq through which the reader has posted the
	// hold's members (for an active hold).
	Evaluated uint64 `json:"evaluated"`
}

// refreshHolds takes the active holds from the receiver. The caller holds
// tailMu (or is Open).
func (r *Reader) refreshHolds(ctx context.Context) error {
	hs, err := r.rcv.Holds(ctx)
	if err != nil {
		return fmt.Errorf("holds: %w", err)
	}
	active := map[string]*holdState{}
	keep := map[string]uint64{}
	for _, h := range hs {
		if !h.Active {
			continue
		}
		k := holdKey(h)
		active[k] = &holdState{info: h, key: k}
		keep[k] = r.cur.Holds[k] // a new hold: 0, the whole index
	}
	r.holds, r.cur.Holds = active, keep
	r.publish()
	return nil
}

// evaluateHolds brings every active hold up to the cursor: it posts the
// members found among the documents updated since the hold's own cursor,
// and then moves that cursor. The index's state records it with the next
// batch: after a crash a hold is evaluated again from an older point,
// which posts nothing new. The caller holds tailMu.
func (r *Reader) evaluateHolds(ctx context.Context) error {
	x, done := r.index()
	defer done()
	keys := make([]string, 0, len(r.holds))
	for k := range r.holds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h := r.holds[k]
		through := r.cur.Holds[k]
		if through >= r.cur.Seq {
			continue
		}
		q, err := index.Parse(h.info.Query)
		if err != nil {
			r.problem("hold %q: its query does not parse (%v): it is not evaluated, and purge keeps what it might cover", h.info.Name, err)
			continue
		}
		q.AfterSeq = through
		var ids []sealmail.MessageID
		if err := x.Each(ctx, q, func(s index.Stored) error { ids = append(ids, s.ID); return nil }); err != nil {
			return fmt.Errorf("hold %q: %w", h.info.Name, err)
		}
		slices.Sort(ids)
		for len(ids) > 0 {
			n := min(len(ids), archive.MaxHoldMembers)
			post := through // until the last chunk, the hold is not evaluated further
			if n == len(ids) {
				post = r.cur.Seq
			}
			if _, err := r.rcv.AddHoldMembers(ctx, h.info.Name, ids[:n], post); err != nil {
				return fmt.Errorf("hold %q: post members: %w", h.info.Name, err)
			}
			ids = ids[n:]
		}
		r.cur.Holds[k] = r.cur.Seq
	}
	r.publish()
	return nil
}

// HoldsReport lists the holds with the index's coverage.
type HoldsReport struct {
	Holds    []Hold   `json:"holds"`
	Coverage Coverage `json:"coverage"`
}

// Holds lists every hold, active and released, with their members and how
// far they are evaluated.
func (r *Reader) Holds(ctx context.Context, c Caller) (*HoldsReport, error) {
	if err := c.may(access.PermHold, r.opts.Now()); err != nil {
		return nil, err
	}
	hs, err := r.rcv.Holds(api.OnBehalfOf(ctx, c.Name))
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	evaluated := map[string]uint64{}
	for _, h := range r.snap.holds {
		evaluated[holdKey(h.HoldInfo)] = h.Evaluated
	}
	r.mu.Unlock()
	out := []Hold{}
	for _, h := range hs {
		out = append(out, Hold{HoldInfo: h, Evaluated: evaluated[holdKey(h)]})
	}
	return &HoldsReport{Holds: out, Coverage: r.Coverage()}, nil
}

// HoldMembersReport is a hold's members as the receiver recorded them,
// with the index's coverage (mail not indexed yet is not among them).
type HoldMembersReport struct {
	Name     string               `json:"name"`
	Members  []sealmail.MessageID `json:"members"`
	Coverage Coverage             `json:"coverage"`
}

// HoldMembers lists the messages hold name covers.
func (r *Reader) HoldMembers(ctx context.Context, c Caller, name string) (*HoldMembersReport, error) {
	if err := c.may(access.PermHold, r.opts.Now()); err != nil {
		return nil, err
	}
	ids, err := r.rcv.HoldMembers(api.OnBehalfOf(ctx, c.Name), name)
	if err != nil {
		return nil, err
	}
	if ids == nil {
		ids = []sealmail.MessageID{}
	}
	return &HoldMembersReport{Name: name, Members: ids, Coverage: r.Coverage()}, nil
}

// HoldReport is one hold after a change, with the index's coverage.
type HoldReport struct {
	Hold     Hold     `json:"hold"`
	Coverage Coverage `json:"coverage"`
	// Approval is the four-eyes request filed instead of releasing the
	// hold: it stays active until a second officer approves.
	Approval *access.Approval `json:"approval,omitempty"`
}

// CreateHold places a legal hold at the receiver and evaluates it against
// the whole index at once: the members it finds are recorded before it
// returns. Mail not indexed yet is evaluated as it is indexed (the
// coverage says how much that is).
func (r *Reader) CreateHold(ctx context.Context, c Caller, name, q, reason string) (*HoldReport, error) {
	if err := c.may(access.PermHold, r.opts.Now()); err != nil {
		return nil, err
	}
	if err := r.requireUnlocked(); err != nil {
		return nil, err
	}
	r.tailMu.Lock()
	defer r.tailMu.Unlock()
	h, err := r.rcv.CreateHold(api.OnBehalfOf(ctx, c.Name), name, q, reason)
	if err != nil {
		return nil, err
	}
	if err := r.refreshHolds(ctx); err != nil {
		return nil, err
	}
	if err := r.evaluateHolds(ctx); err != nil {
		return nil, err
	}
	// Read it back: its members as the receiver recorded them now.
	hs, err := r.rcv.Holds(ctx)
	if err != nil {
		return nil, err
	}
	for _, hi := range hs {
		if hi.Name == name && hi.Active {
			*h = hi
		}
	}
	return &HoldReport{Hold: Hold{HoldInfo: *h, Evaluated: r.cur.Holds[holdKey(*h)]}, Coverage: r.Coverage()}, nil
}

// ReleaseHold releases a hold at the receiver, which drops its members.
// When a release needs a second officer (four eyes), it files a request
// instead and reports the hold, still active, with it.
func (r *Reader) ReleaseHold(ctx context.Context, c Caller, name, reason string) (*HoldReport, error) {
	if err := c.may(access.PermHold, r.opts.Now()); err != nil {
		return nil, err
	}
	need, err := r.needsApproval(access.ApproveHoldRelease)
	if err != nil {
		return nil, err
	}
	if !need {
		return r.releaseHold(ctx, c, name, time.Time{}, reason)
	}
	h, err := r.activeHold(api.OnBehalfOf(ctx, c.Name), name)
	if err != nil {
		return nil, err
	}
	a, err := r.request(ctx, c, access.ApproveHoldRelease, reason, HoldReleasePayload{Name: h.Name, Created: h.Created})
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	evaluated := uint64(0)
	for _, sh := range r.snap.holds {
		if holdKey(sh.HoldInfo) == holdKey(*h) {
			evaluated = sh.Evaluated
		}
	}
	r.mu.Unlock()
	return &HoldReport{Hold: Hold{HoldInfo: *h, Evaluated: evaluated}, Coverage: r.Coverage(), Approval: a}, nil
}

// activeHold returns the receiver's active hold of that name.
func (r *Reader) activeHold(ctx context.Context, name string) (*archive.HoldInfo, error) {
	hs, err := r.rcv.Holds(ctx)
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		if h.Name == name && h.Active {
			return &h, nil
		}
	}
	return nil, invalid("no active hold named %q", name)
}

// releaseHold releases hold name; if created is set, only the hold of
// that name created then (an approved request's).
func (r *Reader) releaseHold(ctx context.Context, c Caller, name string, created time.Time, reason string) (*HoldReport, error) {
	r.tailMu.Lock()
	defer r.tailMu.Unlock()
	actx := api.OnBehalfOf(ctx, c.Name)
	if !created.IsZero() {
		h, err := r.activeHold(actx, name)
		if err != nil {
			return nil, err
		}
		if !h.Created.Equal(created) {
			return nil, invalid("hold %q is not the one the request named (placed %s; that one was placed %s and is released)",
				name, h.Created.UTC().Format(time.RFC3339), created.UTC().Format(time.RFC3339))
		}
	}
	h, err := r.rcv.ReleaseHold(actx, name, reason)
	if err != nil {
		return nil, err
	}
	if err := r.refreshHolds(ctx); err != nil {
		return nil, err
	}
	return &HoldReport{Hold: Hold{HoldInfo: *h}, Coverage: r.Coverage()}, nil
}
