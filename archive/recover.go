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

// Recover rebuilds the catalog of the archive in dir from its segments and
// its audit log, with the daemon stopped (see [store.Recover]). The audit
// log gives what the segments' clear headers do not: retention, which
// audit entry ordered each deletion, the audited segment hashes, the legal
// holds and the highest id ever used. The rebuild is audited.
func Recover(ctx context.Context, dir string, opts Options) (*store.RecoverResult, error) {
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
	defer log.Close()
	in, err := recoverFacts(ctx, dir)
	if err != nil {
		return nil, err
	}
	in.Logger, in.Now = opts.Logger, opts.Now
	res, err := store.Recover(dir, in)
	if err != nil {
		return nil, err
	}
	_, err = log.Append(WithActor(ctx, actorOf(ctx)), audit.Event{Type: audit.TypeRecover, Actor: actorOf(ctx), Fields: map[string]any{
		"op": "rebuild catalog", "messages": res.Messages, "deleted": res.Deleted, "segments": res.Segments,
		"next_id": uint64(res.NextID), "findings": res.Findings, "replaced": res.Replaced,
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
	err := audit.Read(ctx, auditDir(dir), audit.Filter{Types: []string{audit.TypeIngest, audit.TypePurge, audit.TypeErase,
		audit.TypeSegmentSeal, audit.TypeSegmentCompact, audit.TypeHoldCreate, audit.TypeHoldRelease, audit.TypePolicyChange}},
		func(e audit.Entry) error {
			f := e.Fields
			switch e.Type {
			case audit.TypeIngest:
				id := sealmail.MessageID(num(f["id"]))
				o.MaxID = max(o.MaxID, id)
				until, forever := parseRetention(str(f["retain_until"]))
				switch str(f["kind"]) {
				case store.KindMessage.String():
					o.Retention[id] = store.Retention{Until: until, Forever: forever}
					in := store.Ingested{Size: int64(num(f["size"])), Received: e.Time, Receipts: o.Ingested[id].Receipts + 1}
					if t, err := time.Parse(time.RFC3339Nano, str(f["received"])); err == nil {
						in.Received = t.UTC()
					}
					hex.Decode(in.Digest[:], []byte(str(f["digest"])))
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
				for _, c := range list(f["changed"]) {
					m, _ := c.(map[string]any)
					until, forever := parseRetention(str(m["to"]))
					o.Retention[sealmail.MessageID(num(m["id"]))] = store.Retention{Until: until, Forever: forever}
				}
			case audit.TypePurge, audit.TypeErase:
				if b, _ := f["dry_run"].(bool); b {
					return nil
				}
				for _, id := range list(f["ids"]) {
					o.DeletedBy[sealmail.MessageID(num(id))] = e.Seq
				}
			case audit.TypeSegmentSeal, audit.TypeSegmentCompact:
				seq, err := strconv.ParseUint(str(f["segment"]), 10, 32)
				if err != nil {
					return nil
				}
				fact := store.SealFact{Size: int64(num(f["size"])), At: e.Time}
				hex.Decode(fact.SHA256[:], []byte(str(f["sha256"])))
				o.Sealed[store.SegmentSeq(seq)] = fact
				for _, d := range list(f["dropped"]) {
					m, _ := d.(map[string]any)
					if k := str(m["kind"]); k == store.KindMessage.String() || k == store.KindEnvelope.String() {
						o.DroppedReceipts++
					}
				}
			case audit.TypeHoldCreate:
				if _, err := holds.Create(str(f["name"]), str(f["query"]), str(f["reason"]), e.Actor, e.Time); err != nil {
					holdProblems = append(holdProblems, fmt.Sprintf("audit entry %d: hold %q: %v", e.Seq, str(f["name"]), err))
				}
			case audit.TypeHoldRelease:
				if _, err := holds.Release(str(f["name"]), e.Actor, str(f["reason"]), e.Time); err != nil {
					holdProblems = append(holdProblems, fmt.Sprintf("audit entry %d: release of hold %q: %v", e.Seq, str(f["name"]), err))
				}
			}
			return nil
		})
	if err != nil {
		return o, fmt.Errorf("recover: read the audit log: %w", err)
	}
	if len(holdProblems) > 0 {
		return o, fmt.Errorf("recover: the audit log's hold entries do not replay: %v", holdProblems)
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

// parseRetention is the inverse of retention.
func parseRetention(s string) (until time.Time, forever bool) {
	if s == "forever" {
		return time.Time{}, true
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), false
}
