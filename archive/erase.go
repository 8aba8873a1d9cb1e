// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"fmt"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/index/query"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
)

// EraseOptions is a GDPR erasure request (Art. 17).
type EraseOptions struct {
	Query  string
	Reason string
	// OverrideRetention deletes messages whose retention has not ended
	// (the legal ground for keeping them has to be weighed by a person);
	// legal holds always win.
	OverrideRetention bool
	// DryRun reports what would be erased and refused without deleting;
	// the request is audited all the same.
	DryRun bool
}

// Refusal names a message erase kept, and why.
type Refusal struct {
	ID  uint64 `json:"id"`
	Why string `json:"why"`
}

// EraseReport says what was erased (or would be, in a dry run) and what was
// refused.
type EraseReport struct {
	DryRun bool     `json:"dry_run"`
	Erased []uint64 `json:"erased"`
	// Skipped were to be erased but changed before their tombstone
	// committed (a further copy arrived): they stay; ask again.
	Skipped   []uint64  `json:"skipped,omitempty"`
	Refused   []Refusal `json:"refused"`
	AuditSeq  uint64    `json:"audit_seq"`
	Reclaimed int64     `json:"reclaimed_bytes"`
}

// Erase deletes the messages a query matches that no legal hold covers and
// whose retention has ended (or, with OverrideRetention, has not); it
// refuses the others and says why. The request, its reason, the override
// and every id are audited before anything is deleted.
func (a *Archive) Erase(ctx context.Context, o EraseOptions) (*EraseReport, error) {
	if o.Reason == "" {
		return nil, invalid("erase: a reason is required (it goes into the audit log)")
	}
	if _, err := query.Parse(o.Query); err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	x, err := a.idx()
	if err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	a.holdMu.Lock()
	defer a.holdMu.Unlock()
	var ids []sealmail.MessageID
	if err := x.IDs(ctx, o.Query, func(id sealmail.MessageID) error { ids = append(ids, id); return nil }); err != nil {
		return nil, err
	}
	// As in Purge: the messages, then the watermark, then the holds.
	var live []*store.MessageInfo
	for _, id := range ids {
		if m, err := a.store.Message(id); err == nil && m.State == store.StateLive {
			live = append(live, m)
		}
	}
	wm, err := a.store.IndexWatermark()
	if err != nil {
		return nil, err
	}
	held, err := a.heldBy(ctx, x)
	if err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	now := a.opts.Now()
	rep := &EraseReport{DryRun: o.DryRun, Erased: []uint64{}, Refused: []Refusal{}}
	var listed []*store.MessageInfo
	for _, m := range live {
		id := m.ID
		if id > wm && len(held[id]) == 0 {
			rep.Refused = append(rep.Refused, Refusal{ID: uint64(id), Why: "a receipt is not indexed yet (hold status unknown); try again"})
			continue
		}
		if ok, why := policy.Erasable(now, m.RetainUntil, m.Forever, held[id], o.OverrideRetention); ok {
			rep.Erased = append(rep.Erased, uint64(id))
			listed = append(listed, m)
		} else {
			rep.Refused = append(rep.Refused, Refusal{ID: uint64(id), Why: why})
		}
	}
	e, err := a.audit.Append(ctx, audit.Event{Type: audit.TypeErase, Actor: actorOf(ctx), Fields: eraseFields{
		Query: o.Query, Reason: o.Reason, OverrideRetention: o.OverrideRetention,
		IDs: rep.Erased, Refused: rep.Refused, DryRun: o.DryRun,
	}})
	if err != nil {
		return nil, err
	}
	rep.AuditSeq = e.Seq
	if o.DryRun || len(rep.Erased) == 0 {
		return rep, nil
	}
	rep.Reclaimed, rep.Skipped, err = a.delete(ctx, x, listed, "erasure", e.Seq)
	if err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	rep.Erased = without(rep.Erased, rep.Skipped)
	return rep, nil
}
