// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"fmt"
	"strings"

	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/index/query"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
)

// EraseVerdict is the reader's decision of a GDPR erasure request (Art.
// 17): the messages its query matched that it found erasable, and those it
// refused with the reason.
type EraseVerdict struct {
	Query  string `json:"query"`
	Reason string `json:"reason"`
	// OverrideRetention deletes messages whose retention has not ended
	// (the legal ground for keeping them has been weighed by a person);
	// legal holds always win.
	OverrideRetention bool `json:"override_retention"`
	// DryRun reports what would be erased and refused without deleting;
	// the request is audited all the same.
	DryRun  bool          `json:"dry_run"`
	Delete  []VerdictItem `json:"delete"`
	Refused []Refusal     `json:"refused"`
	Holds   []string      `json:"holds"` // as in [PurgeVerdict]
	// Request and Approvals name the erasure request and the officers who
	// approved it (four eyes), when it went through approval.
	Request   string   `json:"request,omitempty"`
	Approvals []string `json:"approvals,omitempty"`
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

// ExecuteErase deletes what an erasure verdict lists, but refuses every
// message a hold covers, that is no longer live, or (without
// OverrideRetention) whose retention has not ended. The request, its
// reason, the override and every id are audited before anything is
// deleted.
func (a *Archive) ExecuteErase(ctx context.Context, v EraseVerdict) (*EraseReport, error) {
	if strings.TrimSpace(v.Reason) == "" {
		return nil, invalid("erase: a reason is required (it goes into the audit log)")
	}
	if _, err := query.Parse(v.Query); err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	now := a.opts.Now()
	rep := &EraseReport{DryRun: v.DryRun, Erased: []uint64{}, Refused: append([]Refusal{}, v.Refused...)}
	a.holdMu.Lock()
	defer a.holdMu.Unlock()
	listed, refused, err := a.verdictListed(ctx, v.Delete, v.Holds, func(m *store.MessageInfo) string {
		if ok, why := policy.Erasable(now, m.RetainUntil, m.Forever, nil, v.OverrideRetention); !ok {
			return why
		}
		return ""
	})
	if err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	for _, m := range listed {
		rep.Erased = append(rep.Erased, uint64(m.ID))
	}
	for _, r := range refused {
		rep.Refused = append(rep.Refused, Refusal{ID: r.ID, Why: r.Why})
	}
	e, err := a.audit.Append(ctx, audit.Event{Type: audit.TypeErase, Actor: actorOf(ctx), Fields: eraseFields{
		Query: v.Query, Reason: v.Reason, OverrideRetention: v.OverrideRetention,
		IDs: rep.Erased, Refused: rep.Refused, DryRun: v.DryRun, Request: v.Request, Approvals: v.Approvals,
	}})
	if err != nil {
		return nil, err
	}
	rep.AuditSeq = e.Seq
	if v.DryRun || len(listed) == 0 {
		return rep, nil
	}
	rep.Reclaimed, rep.Skipped, err = a.delete(ctx, listed, "erasure", e.Seq)
	if err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	rep.Erased = without(rep.Erased, rep.Skipped)
	return rep, nil
}
