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
			return nil, errors.New("purge: only a dry run may look ahead (--as-of in the future)")
		}
		now = o.AsOf
	}
	x, err := a.idx()
	if err != nil {
		return nil, fmt.Errorf("purge: legal holds cannot be checked: %w", err)
	}
	a.holdMu.Lock()
	defer a.holdMu.Unlock()
	held, err := a.heldBy(ctx, x)
	if err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	wm, err := a.store.IndexWatermark()
	if err != nil {
		return nil, err
	}
	rep := &PurgeReport{AsOf: now.UTC(), DryRun: o.DryRun, Kept: map[string]int{}}
	err = a.store.List(0, func(m *store.MessageInfo) (bool, error) {
		if m.State != store.StateLive {
			return true, nil
		}
		switch ok, _ := policy.Eligible(now, m.RetainUntil, m.Forever, held[m.ID]); {
		case len(held[m.ID]) > 0:
			rep.Kept["held"]++
		case !ok && m.RetainUntil.IsZero() && !m.Forever:
			rep.Kept["no retention decided"]++
		case !ok:
			rep.Kept["retained"]++
		case m.ID > wm:
			rep.Kept["not yet indexed (hold status unknown)"]++
		default:
			rep.Deleted = append(rep.Deleted, uint64(m.ID))
		}
		return true, ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	e, err := a.audit.Append(ctx, audit.Event{Type: audit.TypePurge, Actor: actorOf(ctx), Fields: map[string]any{
		"as_of": rep.AsOf.Format(time.RFC3339), "dry_run": o.DryRun, "ids": rep.Deleted, "count": len(rep.Deleted), "kept": rep.Kept,
	}})
	if err != nil {
		return nil, err
	}
	rep.AuditSeq = e.Seq
	if o.DryRun || len(rep.Deleted) == 0 {
		return rep, nil
	}
	if rep.Reclaimed, err = a.delete(ctx, x, rep.Deleted, "retention", e.Seq); err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	return rep, nil
}

// delete removes messages that an audit entry (seq) ordered deleted: a
// tombstone each in the store, out of the index, then compaction reclaims
// what it can. It returns the bytes reclaimed.
func (a *Archive) delete(ctx context.Context, x *index.Index, ids []uint64, reason string, seq uint64) (int64, error) {
	dels := make([]store.Deletion, len(ids))
	gone := make([]sealmail.MessageID, len(ids))
	for i, id := range ids {
		dels[i] = store.Deletion{ID: sealmail.MessageID(id), Reason: reason, Audit: seq}
		gone[i] = sealmail.MessageID(id)
	}
	if err := a.store.Delete(ctx, dels, a.opts.Now()); err != nil {
		return 0, err
	}
	if err := x.Delete(ctx, gone); err != nil {
		a.log.Error("remove deleted messages from the index (search may still list them; `sealmail reindex --all` rebuilds it)", "err", err)
	}
	n, err := a.Compact(ctx)
	if err != nil {
		return n, fmt.Errorf("deleted, but reclaiming their bytes failed (run purge again): %w", err)
	}
	return n, nil
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
			dropped := make([]map[string]any, len(c.Dropped))
			for i, d := range c.Dropped {
				dropped[i] = map[string]any{"id": uint64(d.ID), "kind": d.Kind.String(), "entry": d.Location.Entry,
					"record": hex.EncodeToString(d.RecordSHA256[:])}
			}
			e, err := a.audit.Append(ctx, audit.Event{Type: audit.TypeSegmentCompact, Actor: actorOf(ctx), Fields: map[string]any{
				"segment": c.Segment.String(), "old_sha256": hex.EncodeToString(c.OldSHA256[:]), "old_size": c.OldSize,
				"sha256": hex.EncodeToString(c.NewSHA256[:]), "size": c.NewSize, "dropped": dropped, "intent": true,
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
	what := "deleted"
	stop := errors.New("found")
	audit.Read(ctx, auditDir(a.dir), audit.Filter{FromSeq: de.Audit}, func(e audit.Entry) error {
		switch e.Type {
		case audit.TypePurge:
			what = "deleted by retention policy"
		case audit.TypeErase:
			what = "erased on request"
		}
		return stop
	})
	return fmt.Errorf("message %d was %s on %s (audit entry %d): %w", de.ID, what, de.At.Format(time.DateOnly), de.Audit, store.ErrDeleted)
}
