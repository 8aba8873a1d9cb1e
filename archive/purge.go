// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
)

// Purge and erasure are decided by the reader service, which knows what
// the holds cover and what it has indexed, and sent to the receiver as a
// verdict: the messages to delete, each with the receipt count and the
// retain-until it was decided on. The receiver checks again what it can
// without an index (that every active hold was evaluated, that no hold
// covers a message, retention for purge), audits the order with every id,
// and deletes through the store, which skips a message whose receipts or
// retention changed since the verdict (stale).

// MaxVerdict bounds the messages of one verdict, so that its audit entry
// (which names every id) stays within an audit line. The reader sends
// larger decisions in several verdicts.
const MaxVerdict = 2000

// VerdictItem is one message a verdict deletes, as the reader saw it.
type VerdictItem struct {
	ID       uint64 `json:"id"`
	Receipts int    `json:"receipts"`
	// RetainUntil is as [MessageSummary] has it: RFC 3339, "forever" or
	// empty.
	RetainUntil string `json:"retain_until"`
}

// PurgeVerdict is the reader's decision of a purge.
type PurgeVerdict struct {
	// AsOf is the instant eligibility was judged at; zero means now. Only
	// a dry run may look ahead.
	AsOf   time.Time      `json:"as_of,omitzero"`
	DryRun bool           `json:"dry_run"`
	Delete []VerdictItem  `json:"delete"`
	Kept   map[string]int `json:"kept"` // reason → count, as the reader decided
	// Holds are the active holds the reader evaluated (every one it knew
	// of); a verdict that misses an active hold is refused.
	Holds []string `json:"holds"`
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

// ExecutePurge deletes what a purge verdict lists, but keeps every message
// a hold covers ("held"), whose retention has not ended as of the verdict
// ("retained"; the receiver judges retention itself), or that is no
// longer live ("gone"). It refuses a verdict that did not evaluate every
// active hold, and a real purge that looks ahead. The order is audited
// (purge, every id) before anything is deleted.
func (a *Archive) ExecutePurge(ctx context.Context, v PurgeVerdict) (*PurgeReport, error) {
	now := a.opts.Now()
	if !v.AsOf.IsZero() {
		if !v.DryRun && v.AsOf.After(now) {
			return nil, invalid("purge: only a dry run may look ahead (--as-of in the future)")
		}
		now = v.AsOf
	}
	rep := &PurgeReport{AsOf: now.UTC(), DryRun: v.DryRun, Deleted: []uint64{}, Kept: map[string]int{}}
	for why, n := range v.Kept {
		if n > 0 {
			rep.Kept[why] += n
		}
	}
	a.holdMu.Lock()
	defer a.holdMu.Unlock()
	listed, refused, err := a.verdictListed(ctx, v.Delete, v.Holds, func(m *store.MessageInfo) string {
		switch ok, _ := policy.Eligible(now, m.RetainUntil, m.Forever, nil); {
		case !ok && m.RetainUntil.IsZero() && !m.Forever:
			return "no retention decided"
		case !ok:
			return "retained"
		}
		return ""
	})
	if err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	for _, r := range refused {
		rep.Kept[r.Kept]++
	}
	for _, m := range listed {
		rep.Deleted = append(rep.Deleted, uint64(m.ID))
	}
	e, err := a.audit.Append(ctx, audit.Event{Type: audit.TypePurge, Actor: actorOf(ctx), Fields: purgeFields{
		AsOf: rep.AsOf.Format(time.RFC3339), DryRun: v.DryRun, IDs: rep.Deleted, Count: len(rep.Deleted), Kept: rep.Kept,
	}})
	if err != nil {
		return nil, err
	}
	rep.AuditSeq = e.Seq
	if v.DryRun || len(listed) == 0 {
		return rep, nil
	}
	rep.Reclaimed, rep.Skipped, err = a.delete(ctx, listed, "retention", e.Seq)
	if err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	rep.Deleted = without(rep.Deleted, rep.Skipped)
	return rep, nil
}

// verdictRefusal is a message of a verdict the receiver keeps: Kept is
// the purge report's reason ("held", "gone" or keep's), Why the erasure
// report's.
type verdictRefusal struct {
	ID        uint64
	Kept, Why string
}

// verdictListed checks a verdict's items and returns the catalog entries
// to delete, built from what the verdict was decided on (so that the store
// skips a message that changed since), and the messages it keeps: those an
// active hold covers, those keep(m) names a reason for, those no longer
// live. It refuses a verdict that did not evaluate every active hold. The
// caller holds holdMu.
func (a *Archive) verdictListed(ctx context.Context, items []VerdictItem, evaluated []string,
	keep func(*store.MessageInfo) string) ([]*store.MessageInfo, []verdictRefusal, error) {
	if len(items) > MaxVerdict {
		return nil, nil, invalid("%d messages in one verdict, at most %d", len(items), MaxVerdict)
	}
	var live, decided []*store.MessageInfo
	var refused []verdictRefusal
	for _, it := range items {
		m, err := a.store.Message(sealmail.MessageID(it.ID))
		if errors.Is(err, store.ErrNotFound) || err == nil && m.State != store.StateLive {
			refused = append(refused, verdictRefusal{ID: it.ID, Kept: "gone", Why: "no longer in the archive"})
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		until, forever := ParseRetention(it.RetainUntil)
		live = append(live, m)
		decided = append(decided, &store.MessageInfo{ID: m.ID, Receipts: it.Receipts, RetainUntil: until, Forever: forever})
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
	}
	held, active, err := a.heldBy(live)
	if err != nil {
		return nil, nil, err
	}
	for _, name := range active {
		if !slices.Contains(evaluated, name) {
			return nil, nil, invalid("the legal hold %q was not evaluated by the reader that decided this (it is new): ask again", name)
		}
	}
	var out []*store.MessageInfo
	for i, m := range live {
		switch why := keep(m); {
		case len(held[m.ID]) > 0:
			refused = append(refused, verdictRefusal{ID: uint64(m.ID), Kept: "held", Why: "held by legal hold " + strings.Join(held[m.ID], ", ")})
		case why != "":
			refused = append(refused, verdictRefusal{ID: uint64(m.ID), Kept: why, Why: why})
		default:
			out = append(out, decided[i])
		}
	}
	return out, refused, nil
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
// listed when that was decided: a tombstone each in the store, then
// compaction reclaims what it can. A message that changed since
// it was listed (a further receipt, a longer retention) is skipped by the
// store; the skip is audited. It returns the bytes reclaimed and the ids
// skipped.
func (a *Archive) delete(ctx context.Context, listed []*store.MessageInfo, reason string, seq uint64) (int64, []uint64, error) {
	dels := make([]store.Deletion, len(listed))
	for i, m := range listed {
		dels[i] = store.Deletion{ID: m.ID, Reason: reason, Audit: seq, Actor: actorOf(ctx), Listed: m}
	}
	skippedIDs, err := a.store.Delete(ctx, dels, a.opts.Now())
	if err != nil {
		return 0, nil, err
	}
	var skipped []uint64
	for _, id := range skippedIDs {
		skipped = append(skipped, uint64(id))
	}
	if len(skipped) > 0 {
		if _, err := a.audit.Append(ctx, audit.Event{Type: audit.TypeDeleteSkipped, Actor: actorOf(ctx), Fields: deleteSkippedFields{
			Audit: seq, Reason: reason, IDs: skipped, Count: len(skipped),
			Why: "changed after the deletion was decided (a further receipt or another retention); kept",
		}}); err != nil {
			return 0, skipped, err
		}
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
