// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/index"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
)

// PurgeOptions says what a purge may delete.
type PurgeOptions struct {
	DryRun bool
	// AsOf is the instant eligibility is judged at; zero means now. Only a
	// dry run may look ahead.
	AsOf time.Time
}

// PurgeReport says what a purge deleted (or would delete) and why the rest
// stays.
type PurgeReport struct {
	AsOf     time.Time      `json:"as_of"`
	DryRun   bool           `json:"dry_run"`
	Deleted  []uint64       `json:"deleted"` // or eligible, in a dry run
	Kept     map[string]int `json:"kept"`    // reason → count
	AuditSeq uint64         `json:"audit_seq,omitempty"`
	// Skipped are messages listed for deletion that changed before their
	// tombstone committed (a further receipt, a longer retention): they
	// stay, and the next purge decides again. Not in Deleted.
	Skipped []uint64 `json:"skipped,omitempty"`
	// Reclaimed is the bytes compaction removed from sealed segments.
	Reclaimed int64 `json:"reclaimed_bytes"`
}

// Purge deletes every live message whose retention has ended and that no
// active legal hold covers. Hold queries are run against the index, so a
// message the index does not hold yet (above the watermark) is kept: its
// hold status is unknown. The purge is audited (with every id) before
// anything is deleted; each deletion is a tombstone in the store.
func (a *Archive) Purge(ctx context.Context, o PurgeOptions) (*PurgeReport, error) {
	now := a.opts.Now()
	if !o.AsOf.IsZero() {
		if !o.DryRun && o.AsOf.After(now) {
			return nil, invalid("purge: only a dry run may look ahead (--as-of in the future)")
		}
		now = o.AsOf
	}
	x, err := a.idx()
	if err != nil {
		return nil, fmt.Errorf("purge: legal holds cannot be checked: %w", err)
	}
	a.holdMu.Lock()
	defer a.holdMu.Unlock()
	// The order matters: list the messages, then read the watermark, then
	// run the holds. A receipt stored before the listing is either not
	// indexed yet when the watermark is read (the watermark is below its
	// message: kept) or indexed, so that the holds see it; one stored after
	// the listing makes the message's tombstone stale (skipped).
	rep := &PurgeReport{AsOf: now.UTC(), DryRun: o.DryRun, Deleted: []uint64{}, Kept: map[string]int{}}
	retained := func(m *store.MessageInfo) string {
		switch ok, _ := policy.Eligible(now, m.RetainUntil, m.Forever, nil); {
		case !ok && m.RetainUntil.IsZero() && !m.Forever:
			return "no retention decided"
		case !ok:
			return "retained"
		}
		return ""
	}
	var due []*store.MessageInfo
	err = a.store.List(0, func(m *store.MessageInfo) (bool, error) {
		if m.State != store.StateLive {
			return true, nil
		}
		if why := retained(m); why != "" {
			rep.Kept[why]++
		} else {
			due = append(due, m)
		}
		return true, ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	wm, err := a.store.IndexWatermark()
	if err != nil {
		return nil, err
	}
	held, err := a.heldBy(ctx, x)
	if err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	var listed []*store.MessageInfo
	isDue := make(map[sealmail.MessageID]bool, len(due))
	for _, m := range due {
		isDue[m.ID] = true
		switch {
		case len(held[m.ID]) > 0:
			rep.Kept["held"]++
		case m.ID > wm:
			rep.Kept["not yet indexed (hold status unknown)"]++
		default:
			rep.Deleted = append(rep.Deleted, uint64(m.ID))
			listed = append(listed, m)
		}
	}
	// A held message counts as held, whatever else keeps it.
	for id := range held {
		if isDue[id] {
			continue
		}
		if m, err := a.store.Message(id); err == nil && m.State == store.StateLive {
			if why := retained(m); why != "" && rep.Kept[why] > 0 {
				rep.Kept[why]--
				rep.Kept["held"]++
			}
		}
	}
	for why, n := range rep.Kept {
		if n == 0 {
			delete(rep.Kept, why)
		}
	}
	e, err := a.audit.Append(ctx, audit.Event{Type: audit.TypePurge, Actor: actorOf(ctx), Fields: purgeFields{
		AsOf: rep.AsOf.Format(time.RFC3339), DryRun: o.DryRun, IDs: rep.Deleted, Count: len(rep.Deleted), Kept: rep.Kept,
	}})
	if err != nil {
		return nil, err
	}
	rep.AuditSeq = e.Seq
	if o.DryRun || len(rep.Deleted) == 0 {
		return rep, nil
	}
	rep.Reclaimed, rep.Skipped, err = a.delete(ctx, x, listed, "retention", e.Seq)
	if err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	rep.Deleted = without(rep.Deleted, rep.Skipped)
	return rep, nil
}

// without returns ids less those in drop.
func without(ids, drop []uint64) []uint64 {
	if len(drop) == 0 {
		return ids
	}
	skip := make(map[uint64]bool, len(drop))
	for _, id := range drop {
		skip[id] = true
	}
	out := ids[:0:0]
	for _, id := range ids {
		if !skip[id] {
			out = append(out, id)
		}
	}
	return out
}

// delete removes messages that an audit entry (seq) ordered deleted, as
// listed when that was decided: a tombstone each in the store, out of the
// index, then compaction reclaims what it can. A message that changed since
// it was listed (a further receipt, a longer retention) is skipped by the
// store; the skip is audited. It returns the bytes reclaimed and the ids
// skipped.
func (a *Archive) delete(ctx context.Context, x *index.Index, listed []*store.MessageInfo, reason string, seq uint64) (int64, []uint64, error) {
	dels := make([]store.Deletion, len(listed))
	for i, m := range listed {
		dels[i] = store.Deletion{ID: m.ID, Reason: reason, Audit: seq, Actor: actorOf(ctx), Listed: m}
	}
	skippedIDs, err := a.store.Delete(ctx, dels, a.opts.Now())
	if err != nil {
		return 0, nil, err
	}
	var skipped []uint64
	skip := make(map[sealmail.MessageID]bool, len(skippedIDs))
	for _, id := range skippedIDs {
		skipped = append(skipped, uint64(id))
		skip[id] = true
	}
	if len(skipped) > 0 {
		if _, err := a.audit.Append(ctx, audit.Event{Type: audit.TypeDeleteSkipped, Actor: actorOf(ctx), Fields: deleteSkippedFields{
			Audit: seq, Reason: reason, IDs: skipped, Count: len(skipped),
			Why: "changed after the deletion was decided (a further receipt or another retention); kept",
		}}); err != nil {
			return 0, skipped, err
		}
	}
	gone := make([]sealmail.MessageID, 0, len(listed))
	for _, m := range listed {
		if !skip[m.ID] {
			gone = append(gone, m.ID)
		}
	}
	if err := x.Delete(ctx, gone); err != nil {
		a.log.Error("remove deleted messages from the index (search may still list them; `sealmail reindex --all` rebuilds it)", "err", err)
	}
	n, err := a.Compact(ctx)
	if err != nil {
		return n, skipped, fmt.Errorf("deleted, but reclaiming their bytes failed (run purge again): %w", err)
	}
	return n, skipped, nil
}

// Compact rewrites every sealed segment that holds records of deleted
// messages only, and returns the bytes reclaimed. Each compaction is
// audited (both hashes, every dropped entry) before its catalog change
// commits. Records in the active segment wait until it is sealed.
func (a *Archive) Compact(ctx context.Context) (int64, error) {
	segs, err := a.store.Segments()
	if err != nil {
		return 0, err
	}
	var reclaimed int64
	for _, si := range segs {
		if si.State != store.SegmentSealed {
			continue
		}
		c, err := a.store.Compact(ctx, si.Seq, func(c *store.Compaction) (store.Intent, error) {
			e, err := a.audit.Append(ctx, audit.Event{Type: audit.TypeSegmentCompact, Actor: actorOf(ctx), Fields: compactFields{
				Segment: c.Segment.String(), OldSHA256: hex.EncodeToString(c.OldSHA256[:]), OldSize: c.OldSize,
				SHA256: hex.EncodeToString(c.NewSHA256[:]), Size: c.NewSize, Dropped: droppedOf(c.Dropped), Intent: true,
			}})
			return store.Intent(e.Seq), err
		})
		if err != nil {
			return reclaimed, err
		}
		if c != nil {
			reclaimed += c.OldSize - c.NewSize
		}
	}
	return reclaimed, nil
}

// deletedWhy turns a store.DeletedError into the reason an operator reads:
// which operation deleted the message, when, on which audit entry.
func (a *Archive) deletedWhy(ctx context.Context, de *store.DeletedError) error {
	e := &DeletedError{ID: de.ID, At: de.At, Audit: de.Audit, What: "deleted"}
	stop := errors.New("found")
	err := audit.Read(ctx, auditDir(a.dir), audit.Filter{FromSeq: de.Audit}, func(ae audit.Entry) error {
		switch ae.Type {
		case audit.TypePurge:
			e.What = "deleted by retention policy"
		case audit.TypeErase:
			e.What = "erased on request"
		}
		return stop
	})
	if err != nil && !errors.Is(err, stop) {
		a.log.Warn("read the audit entry of a deletion", "id", uint64(de.ID), "audit", de.Audit, "err", err)
	}
	return e
}
