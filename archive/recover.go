// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
)

// RecoverResult says what [Recover] rebuilt.
type RecoverResult struct {
	Messages int64  `json:"messages"` // live
	Deleted  int64  `json:"deleted"`
	Receipts int64  `json:"receipts"`
	Segments int    `json:"segments"`
	Sealed   int    `json:"sealed"`
	NextID   uint64 `json:"next_id"`
	// Replaced is where the previous catalog is kept (empty if there was
	// none).
	Replaced string `json:"replaced"`
	// Findings are what did not fit: unreadable segment tails, files the
	// audit log does not vouch for, entries without their message.
	Findings []string `json:"findings"`
}

// Recover rebuilds the catalog of the archive in dir from its segments and
// its audit log, with the daemon stopped (see [store.Recover]). The audit
// log gives what the segments' clear headers do not: retention, which
// audit entry ordered each deletion, the audited segment hashes, the legal
// holds and what they cover, and the highest id ever used. The rebuild is
// audited.
func Recover(ctx context.Context, dir string, opts Options) (*RecoverResult, error) {
	opts.setDefaults()
	info, err := store.ReadArchiveInfo(dir)
	if errors.Is(err, store.ErrNoArchive) {
		return nil, fmt.Errorf("no archive at %s", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("recover %s: %w", dir, err)
	}
	// Holding the audit log's lock also proves that no daemon runs.
	log, err := openAudit(dir, info.ID, opts)
	if err != nil {
		return nil, err
	}
	defer func() { _ = log.Close() }() // the rebuild entry is synced by Append
	in, err := recoverFacts(ctx, dir)
	if err != nil {
		return nil, err
	}
	in.Logger, in.Now = opts.Logger, opts.Now
	sr, err := store.Recover(dir, in)
	if err != nil {
		return nil, err
	}
	res := &RecoverResult{Messages: sr.Messages, Deleted: sr.Deleted, Receipts: sr.Receipts, Segments: sr.Segments,
		Sealed: sr.Sealed, NextID: uint64(sr.NextID), Replaced: sr.Replaced, Findings: append([]string{}, sr.Findings...)}
	_, err = log.Append(WithActor(ctx, actorOf(ctx)), audit.Event{Type: audit.TypeRecover, Actor: actorOf(ctx), Fields: rebuildFields{
		Op: "rebuild catalog", Messages: res.Messages, Deleted: res.Deleted, Segments: res.Segments,
		NextID: res.NextID, Findings: res.Findings, Replaced: res.Replaced,
	}})
	if err != nil {
		return res, fmt.Errorf("recover: the catalog is rebuilt, but auditing it failed: %w", err)
	}
	return res, nil
}

// recoverFacts reads from the audit log what store.Recover needs.
func recoverFacts(ctx context.Context, dir string) (store.RecoverOptions, error) {
	o := store.RecoverOptions{
		Retention: make(map[sealmail.MessageID]store.Retention),
		DeletedBy: make(map[sealmail.MessageID]uint64),
		Ingested:  make(map[sealmail.MessageID]store.Ingested),
		Sealed:    make(map[store.SegmentSeq]store.SealFact),
	}
	var holds policy.Holds
	var holdProblems []string
	members := map[string]*store.HoldRecord{}
	err := audit.Read(ctx, auditDir(dir), audit.Filter{Types: []string{audit.TypeIngest, audit.TypePurge, audit.TypeErase,
		audit.TypeSegmentSeal, audit.TypeSegmentCompact, audit.TypeHoldCreate, audit.TypeHoldRelease, audit.TypeHoldMembers,
		audit.TypePolicyChange}},
		func(e audit.Entry) error {
			switch e.Type {
			case audit.TypeIngest:
				var f ingestFields
				if err := e.DecodeFields(&f); err != nil {
					return err
				}
				id := sealmail.MessageID(f.ID)
				o.MaxID = max(o.MaxID, id)
				until, forever := ParseRetention(f.RetainUntil)
				switch f.Kind {
				case store.KindMessage.String():
					o.Retention[id] = store.Retention{Until: until, Forever: forever}
					in := store.Ingested{Size: f.Size, Received: e.Time, Receipts: o.Ingested[id].Receipts + 1}
					if t, err := time.Parse(time.RFC3339Nano, f.Received); err == nil {
						in.Received = t.UTC()
					}
					if _, err := hex.Decode(in.Digest[:], []byte(f.Digest)); err != nil {
						return fmt.Errorf("audit entry %d: digest: %w", e.Seq, err)
					}
					o.Ingested[id] = in
				case store.KindEnvelope.String():
					in := o.Ingested[id]
					in.Receipts++
					o.Ingested[id] = in
					// A further delivery only lengthens retention.
					r := o.Retention[id]
					switch {
					case forever:
						r.Forever = true
					case !r.Forever && until.After(r.Until):
						r.Until = until
					}
					o.Retention[id] = r
				}
			case audit.TypePolicyChange:
				var f policyFields
				if err := e.DecodeFields(&f); err != nil {
					return err
				}
				for _, c := range f.Changed {
					until, forever := ParseRetention(c.To)
					o.Retention[sealmail.MessageID(c.ID)] = store.Retention{Until: until, Forever: forever}
				}
			case audit.TypePurge, audit.TypeErase:
				// purge and erase entries share these keys.
				var f struct {
					DryRun bool     `json:"dry_run"`
					IDs    []uint64 `json:"ids"`
				}
				if err := e.DecodeFields(&f); err != nil {
					return err
				}
				if f.DryRun {
					return nil
				}
				for _, id := range f.IDs {
					o.DeletedBy[sealmail.MessageID(id)] = e.Seq
				}
			case audit.TypeSegmentSeal, audit.TypeSegmentCompact:
				var f compactFields // a seal entry has a subset of its keys
				if err := e.DecodeFields(&f); err != nil {
					return err
				}
				seq, err := strconv.ParseUint(f.Segment, 10, 32)
				if err != nil {
					return nil
				}
				fact := store.SealFact{Size: f.Size, At: e.Time}
				if _, err := hex.Decode(fact.SHA256[:], []byte(f.SHA256)); err != nil {
					return fmt.Errorf("audit entry %d: sha256: %w", e.Seq, err)
				}
				o.Sealed[store.SegmentSeq(seq)] = fact
				for _, d := range f.Dropped {
					if d.Kind == store.KindMessage.String() || d.Kind == store.KindEnvelope.String() {
						o.DroppedReceipts++
					}
				}
			case audit.TypeHoldCreate:
				var f holdCreateFields
				if err := e.DecodeFields(&f); err != nil {
					return err
				}
				if _, err := holds.Create(f.Name, f.Query, f.Reason, e.Actor, e.Time); err != nil {
					holdProblems = append(holdProblems, fmt.Sprintf("audit entry %d: hold %q: %v", e.Seq, f.Name, err))
				}
			case audit.TypeHoldRelease:
				var f holdReleaseFields
				if err := e.DecodeFields(&f); err != nil {
					return err
				}
				if _, err := holds.Release(f.Name, e.Actor, f.Reason, e.Time); err != nil {
					holdProblems = append(holdProblems, fmt.Sprintf("audit entry %d: release of hold %q: %v", e.Seq, f.Name, err))
				}
				delete(members, f.Name) // a release drops the membership
			case audit.TypeHoldMembers:
				var f holdMembersFields
				if err := e.DecodeFields(&f); err != nil {
					return err
				}
				r := members[f.Name]
				if r == nil {
					r = &store.HoldRecord{}
					members[f.Name] = r
				}
				for _, id := range f.IDs {
					r.IDs = append(r.IDs, sealmail.MessageID(id))
				}
				r.Through = max(r.Through, f.Through)
			}
			return nil
		})
	if err != nil {
		return o, fmt.Errorf("recover: read the audit log: %w", err)
	}
	if len(holdProblems) > 0 {
		return o, fmt.Errorf("recover: the audit log's hold entries do not replay: %v", holdProblems)
	}
	o.HoldMembers = make(map[string]store.HoldRecord, len(members))
	for name, r := range members {
		o.HoldMembers[name] = *r
	}
	if len(holds.All()) > 0 {
		b, err := json.Marshal(holds)
		if err != nil {
			return o, err
		}
		o.Holds = b
	}
	return o, nil
}

// ParseRetention parses a retain-until as [MessageSummary] has it: RFC
// 3339, "forever", or empty (not decided). It is the inverse of retention.
func ParseRetention(s string) (until time.Time, forever bool) {
	if s == "forever" {
		return time.Time{}, true
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), false
}
