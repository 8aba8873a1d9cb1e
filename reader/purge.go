// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/index"
	"github.com/sealmail/sealmail/policy"
)

// Purge and erasure are decided here, where the index is, and executed by
// the receiver as verdicts (archive.ExecutePurge): the receiver checks
// again what it can (hold membership, retention) and deletes.

// KeptNotIndexed is the reason purge and erasure keep a message the index
// does not hold with all its receipts, or that some hold has not been
// evaluated on since it was last indexed.
const KeptNotIndexed = "not yet indexed (hold status unknown)"

// PurgeOptions says what a purge may delete.
type PurgeOptions struct {
	DryRun bool      `json:"dry_run"`
	AsOf   time.Time `json:"as_of,omitzero"` // zero: now; only a dry run may look ahead
}

// PurgeReport is the receiver's report of a purge with the index's
// coverage.
type PurgeReport struct {
	archive.PurgeReport
	Coverage Coverage `json:"coverage"`
}

// indexedState returns what the index stores of every message. The
// caller holds tailMu.
func (r *Reader) indexedState(ctx context.Context) (map[sealmail.MessageID]index.Stored, error) {
	x, done := r.index()
	defer done()
	docs := map[sealmail.MessageID]index.Stored{}
	err := x.Each(ctx, index.Query{}, func(s index.Stored) error { docs[s.ID] = s; return nil })
	return docs, err
}

// settled reports whether the index holds row's message with all its
// receipts and every active hold has been evaluated on that document. The
// caller holds tailMu.
func (r *Reader) settled(row archive.MessageSummary, docs map[sealmail.MessageID]index.Stored) (index.Stored, bool) {
	s, ok := docs[sealmail.MessageID(row.ID)]
	if !ok || len(s.Records) != row.Receipts {
		return s, false
	}
	for k := range r.holds {
		if r.cur.Holds[k] < s.Seq {
			return s, false
		}
	}
	return s, true
}

// prepare brings holds up to date for a decision, and what the reader
// knows of the receiver, for the report's coverage. The caller holds
// tailMu.
func (r *Reader) prepare(ctx context.Context) ([]string, error) {
	if _, err := r.look(ctx, r.cur.Seq, 1); err != nil {
		return nil, err
	}
	if err := r.refreshHolds(ctx); err != nil {
		return nil, err
	}
	if err := r.evaluateHolds(ctx); err != nil {
		return nil, err
	}
	var names []string
	for _, h := range r.holds {
		names = append(names, h.info.Name)
	}
	sort.Strings(names)
	return names, nil
}

// Purge deletes every live message whose retention has ended, that the
// index holds with all its receipts and on which every hold is evaluated,
// and that no hold covers. It keeps the rest, counting why. The receiver
// audits the order before it deletes.
func (r *Reader) Purge(ctx context.Context, c Caller, o PurgeOptions) (*PurgeReport, error) {
	now := r.opts.Now()
	if err := c.may(access.PermPolicy, now); err != nil {
		return nil, err
	}
	if err := r.requireUnlocked(); err != nil {
		return nil, err
	}
	asOf := now
	if !o.AsOf.IsZero() {
		if !o.DryRun && o.AsOf.After(now) {
			return nil, invalid("purge: only a dry run may look ahead (--as-of in the future)")
		}
		asOf = o.AsOf
	}
	actx := api.OnBehalfOf(ctx, c.Name)
	r.tailMu.Lock()
	defer r.tailMu.Unlock()
	holds, err := r.prepare(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := r.rcv.List(actx, archive.ListOptions{})
	if err != nil {
		return nil, err
	}
	docs, err := r.indexedState(ctx)
	if err != nil {
		return nil, err
	}
	kept := map[string]int{}
	var items []archive.VerdictItem
	for _, row := range rows {
		until, forever := archive.ParseRetention(row.RetainUntil)
		switch ok, _ := policy.Eligible(asOf, until, forever, nil); {
		case !ok && until.IsZero() && !forever:
			kept["no retention decided"]++
			continue
		case !ok:
			kept["retained"]++
			continue
		}
		if _, ok := r.settled(row, docs); !ok {
			kept[KeptNotIndexed]++
			continue
		}
		items = append(items, archive.VerdictItem{ID: row.ID, Receipts: row.Receipts, RetainUntil: row.RetainUntil})
	}
	rep := &PurgeReport{PurgeReport: archive.PurgeReport{AsOf: asOf.UTC(), DryRun: o.DryRun, Deleted: []uint64{}, Kept: map[string]int{}}}
	for first := true; first || len(items) > 0; first = false {
		n := min(len(items), archive.MaxVerdict)
		v := archive.PurgeVerdict{AsOf: o.AsOf, DryRun: o.DryRun, Delete: items[:n], Holds: holds}
		if first {
			v.Kept = kept
		}
		part, err := r.rcv.ExecutePurge(actx, v)
		if err != nil {
			return nil, err
		}
		items = items[n:]
		rep.Deleted = append(rep.Deleted, part.Deleted...)
		rep.Skipped = append(rep.Skipped, part.Skipped...)
		rep.Reclaimed += part.Reclaimed
		for why, n := range part.Kept {
			rep.Kept[why] += n
		}
		if rep.AuditSeq == 0 {
			rep.AuditSeq = part.AuditSeq
		}
	}
	rep.Coverage = r.Coverage()
	return rep, nil
}

// EraseOptions is a GDPR erasure request (Art. 17).
type EraseOptions struct {
	Query             string `json:"query"`
	Reason            string `json:"reason"`
	OverrideRetention bool   `json:"override_retention"`
	DryRun            bool   `json:"dry_run"`
	// Request and Approvals name the four-eyes request and its approvers
	// when an approved request is executed; callers leave them empty.
	Request   string   `json:"request,omitempty"`
	Approvals []string `json:"approvals,omitempty"`
}

// EraseReport is the receiver's report of an erasure with the index's
// coverage: messages not yet indexed cannot be matched yet.
type EraseReport struct {
	archive.EraseReport
	Coverage Coverage `json:"coverage"`
	// Approval is the four-eyes request filed instead of erasing: the
	// report is then a dry run of what it asks to erase.
	Approval *access.Approval `json:"approval,omitempty"`
}

// Erase erases the messages the query matches (within the caller's reach)
// that no hold covers and whose retention ended, or with
// OverrideRetention also retained ones; it refuses the rest with the
// reason, among them what the index does not hold fully yet. When erasure
// needs a second officer (four eyes), it erases nothing: it files a
// request for the messages a dry run finds erasable, and reports the dry
// run with the request.
func (r *Reader) Erase(ctx context.Context, c Caller, o EraseOptions) (*EraseReport, error) {
	if err := c.may(access.PermErasure, r.opts.Now()); err != nil {
		return nil, err
	}
	if o.Request != "" || len(o.Approvals) > 0 {
		return nil, invalid("erase: the request and its approvals are named by four eyes, not by the caller")
	}
	if o.DryRun {
		rep, _, err := r.erase(ctx, c, o, nil)
		return rep, err
	}
	need, err := r.needsApproval(access.ApproveErase)
	if err != nil {
		return nil, err
	}
	if !need {
		rep, _, err := r.erase(ctx, c, o, nil)
		return rep, err
	}
	if strings.TrimSpace(o.Reason) == "" {
		return nil, invalid("erase: a reason is required")
	}
	o.DryRun = true
	rep, items, err := r.erase(ctx, c, o, nil)
	if err != nil || len(rep.Erased) == 0 {
		return rep, err // nothing to ask for
	}
	receipts := map[uint64]int{}
	for _, it := range items {
		receipts[it.ID] = it.Receipts
	}
	p := ErasePayload{Query: o.Query, OverrideRetention: o.OverrideRetention, Refused: len(rep.Refused)}
	for _, id := range rep.Erased {
		p.Messages = append(p.Messages, [2]uint64{id, uint64(receipts[id])})
	}
	if b, _ := json.Marshal(p); len(b) > access.MaxApprovalPayload {
		return nil, invalid("erase: the query matches %d erasable messages, more than one four-eyes request can name (its payload is at most %d bytes): narrow it, e.g. with before: and after:",
			len(p.Messages), access.MaxApprovalPayload)
	}
	if rep.Approval, err = r.request(ctx, c, access.ApproveErase, o.Reason, p); err != nil {
		return nil, err
	}
	return rep, nil
}

// erase decides an erasure and sends the verdict: with approved (an
// approved request's messages and their receipt counts), only those, and
// only as they were. It returns the report and the items it sent.
func (r *Reader) erase(ctx context.Context, c Caller, o EraseOptions, approved map[uint64]uint64) (*EraseReport, []archive.VerdictItem, error) {
	if err := r.requireUnlocked(); err != nil {
		return nil, nil, err
	}
	q, err := index.Parse(o.Query)
	if err != nil {
		return nil, nil, err
	}
	q, ok, err := c.scoped(access.PermErasure, q)
	if err != nil {
		return nil, nil, err
	}
	actx := api.OnBehalfOf(ctx, c.Name)
	r.tailMu.Lock()
	defer r.tailMu.Unlock()
	holds, err := r.prepare(ctx)
	if err != nil {
		return nil, nil, err
	}
	var matched []sealmail.MessageID
	if ok {
		x, done := r.index()
		err = x.Each(ctx, q, func(s index.Stored) error { matched = append(matched, s.ID); return nil })
		done()
		if err != nil {
			return nil, nil, err
		}
	}
	slices.Sort(matched)
	rows, err := r.rcv.List(actx, archive.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	live := map[uint64]archive.MessageSummary{}
	for _, row := range rows {
		live[row.ID] = row
	}
	docs, err := r.indexedState(ctx)
	if err != nil {
		return nil, nil, err
	}
	var items []archive.VerdictItem
	var refused []archive.Refusal
	seen := map[uint64]bool{}
	for _, id := range matched {
		row, ok := live[uint64(id)]
		if !ok {
			continue // deleted meanwhile
		}
		if approved != nil {
			n, ok := approved[row.ID]
			seen[row.ID] = true
			switch {
			case !ok:
				refused = append(refused, archive.Refusal{ID: row.ID, Why: "not in the approved request: ask again"})
				continue
			case n != uint64(row.Receipts):
				refused = append(refused, archive.Refusal{ID: row.ID,
					Why: fmt.Sprintf("changed since the request: %d receipts now, %d when approved; ask again", row.Receipts, n)})
				continue
			}
		}
		if _, ok := r.settled(row, docs); !ok {
			refused = append(refused, archive.Refusal{ID: row.ID, Why: "a receipt is not indexed yet (hold status unknown); try again"})
			continue
		}
		items = append(items, archive.VerdictItem{ID: row.ID, Receipts: row.Receipts, RetainUntil: row.RetainUntil})
	}
	for id := range approved {
		if seen[id] {
			continue
		}
		why := "the query no longer matches it"
		if _, ok := live[id]; !ok {
			why = "deleted since the request"
		}
		refused = append(refused, archive.Refusal{ID: id, Why: why})
	}
	rep := &EraseReport{EraseReport: archive.EraseReport{DryRun: o.DryRun, Erased: []uint64{}, Refused: []archive.Refusal{}}}
	sent := items
	for first := true; first || len(items) > 0; first = false {
		n := min(len(items), archive.MaxVerdict)
		v := archive.EraseVerdict{Query: o.Query, Reason: o.Reason, OverrideRetention: o.OverrideRetention, DryRun: o.DryRun,
			Delete: items[:n], Holds: holds, Request: o.Request, Approvals: o.Approvals}
		if first {
			v.Refused = refused
		}
		part, err := r.rcv.ExecuteErase(actx, v)
		if err != nil {
			return nil, nil, err
		}
		items = items[n:]
		rep.Erased = append(rep.Erased, part.Erased...)
		rep.Refused = append(rep.Refused, part.Refused...)
		rep.Skipped = append(rep.Skipped, part.Skipped...)
		rep.Reclaimed += part.Reclaimed
		if rep.AuditSeq == 0 {
			rep.AuditSeq = part.AuditSeq
		}
	}
	sort.Slice(rep.Refused, func(i, j int) bool { return rep.Refused[i].ID < rep.Refused[j].ID })
	rep.Coverage = r.Coverage()
	return rep, sent, nil
}
