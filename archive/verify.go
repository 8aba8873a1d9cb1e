// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/store"
)

// VerifyReport is the result of [Archive.Verify]. Problems name the message,
// segment, record or audit entry affected; an empty list means the archive
// verified.
type VerifyReport struct {
	Archive      string   `json:"archive"`
	Segments     int      `json:"segments"`
	Sealed       int      `json:"sealed_segments"`
	Records      int64    `json:"records"`
	Entries      int64    `json:"entries"`
	Bytes        int64    `json:"bytes"`
	AuditEntries uint64   `json:"audit_entries"`
	AuditHead    string   `json:"audit_head"`
	Checkpoints  int      `json:"audit_checkpoints"`
	External     int      `json:"external_checkpoints"`
	Problems     []string `json:"problems"`
}

// OK reports whether verification found nothing wrong.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// auditedEntry is what the audit log says about one stored entry.
type auditedEntry struct {
	seq     uint64
	id      uint64
	digest  string
	segment string
	offset  int64
	found   bool // seen in the segments
	undone  bool // rolled back or discarded at start-up
}

// Verify checks the whole archive without the identity: the audit log's
// chain and signatures (and that it extends each external checkpoint), the
// store (record CRCs, sealed segments' SHA-256, catalog ↔ segments), and
// that every stored entry is vouched for by an ingest entry of the audit log
// naming the same record SHA-256 and digest, and every audited ingest is
// stored. Anyone holding the public recipient can forge a valid age record,
// so only the audit chain proves a record's origin. The run is itself
// audited.
func (a *Archive) Verify(ctx context.Context, external []audit.Checkpoint) (*VerifyReport, error) {
	rep := &VerifyReport{Archive: a.store.Info().ID}
	problem := func(format string, v ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, v...)) }

	arep, err := audit.Verify(ctx, auditDir(a.dir), external)
	if err != nil {
		return nil, fmt.Errorf("verify audit log: %w", err)
	}
	rep.AuditEntries, rep.AuditHead, rep.Checkpoints, rep.External = arep.LastSeq, arep.Head.String(), arep.Checkpoints, arep.External
	for _, p := range arep.Problems {
		problem("audit log: %s", p)
	}

	// What the audit log says was stored, up to what it held now.
	head, _ := a.audit.Head()
	byRecord := make(map[string]*auditedEntry) // record SHA-256 / entry index
	byID := make(map[uint64][]*auditedEntry)
	sealed := make(map[string]string) // segment → SHA-256 at sealing
	intents := make(map[uint64]audit.Entry)
	apply := func(e audit.Entry) {
		f := e.Fields
		switch e.Type {
		case audit.TypeIngest:
			ae := &auditedEntry{seq: e.Seq, id: num(f["id"]), digest: str(f["digest"]), segment: str(f["segment"]), offset: int64(num(f["offset"]))}
			byRecord[str(f["record"])+"/"+strconv.FormatUint(num(f["entry"]), 10)] = ae
			byID[ae.id] = append(byID[ae.id], ae)
		case audit.TypeIngestRollback:
			for _, id := range list(f["ids"]) {
				for _, ae := range byID[num(id)] {
					ae.undone = true
				}
			}
		case audit.TypeRecover:
			if kept := str(f["kept_in"]); kept != "" {
				if _, err := os.Stat(filepath.Join(a.dir, "segments", kept)); err == nil {
					problem("segments/%s: the uncommitted tail of a segment (%v entries) set aside at start-up on %s (audit entry %d). "+
						"After a crash these were never acknowledged and their senders retried: delete the file after review. "+
						"If catalog.db was restored from a backup, they are acknowledged messages: restore the catalog instead",
						kept, len(list(f["entries"])), e.Time.Format(time.RFC3339), e.Seq)
				}
			}
			// A record cut off without an ingest entry is no problem: the
			// segment is synced in parallel with the audit log, so a crash can
			// keep the record and lose its entry; and what is cut off never
			// reaches the catalog (the kept file is reported above while it
			// exists).
			for _, d := range list(f["entries"]) {
				m, _ := d.(map[string]any)
				if ae := byRecord[str(m["record"])+"/"+strconv.FormatUint(num(m["entry"]), 10)]; ae != nil {
					ae.undone = true
				}
			}
		case audit.TypeSegmentSeal:
			sealed[str(f["segment"])] = str(f["sha256"])
		case audit.TypeSegmentCompact:
			if sealed[str(f["segment"])] != str(f["old_sha256"]) {
				problem("audit entry %d: compaction of segment %v starts from SHA-256 %v, not the one the log recorded", e.Seq, f["segment"], f["old_sha256"])
			}
			sealed[str(f["segment"])] = str(f["sha256"])
			for _, d := range list(f["dropped"]) {
				m, _ := d.(map[string]any)
				if ae := byRecord[str(m["record"])+"/"+strconv.FormatUint(num(m["entry"]), 10)]; ae != nil {
					ae.undone = true
				}
			}
		}
	}
	err = audit.Read(ctx, auditDir(a.dir), audit.Filter{Types: []string{audit.TypeIngest, audit.TypeIngestRollback, audit.TypeRecover,
		audit.TypeSegmentSeal, audit.TypeSegmentCompact, audit.TypeIntentCommit, audit.TypeIntentAbort}},
		func(e audit.Entry) error {
			if e.Seq > head {
				return nil
			}
			f := e.Fields
			switch e.Type {
			case audit.TypeSegmentSeal, audit.TypeSegmentCompact:
				if f["intent"] == true {
					// It counts when its catalog change committed.
					intents[e.Seq] = e
					return nil
				}
			case audit.TypeIntentCommit:
				if i, ok := intents[num(f["intent"])]; ok {
					delete(intents, i.Seq)
					apply(i)
				}
				return nil
			case audit.TypeIntentAbort:
				delete(intents, num(f["intent"]))
				return nil
			}
			apply(e)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	// Intents whose change the catalog committed before a crash that came
	// before their intent.commit entry (which the daemon writes at its next
	// start) count as committed.
	pending, err := a.store.PendingIntents()
	if err != nil {
		return nil, err
	}
	for _, i := range pending {
		if e, ok := intents[uint64(i)]; ok {
			delete(intents, e.Seq)
			apply(e)
		}
	}

	srep, err := a.store.Verify(ctx, func(si store.SegmentInfo, rec store.ScannedRecord) {
		sum := hex.EncodeToString(rec.SHA256[:])
		for k, e := range rec.Header.Entries {
			ae := byRecord[sum+"/"+strconv.Itoa(k)]
			where := fmt.Sprintf("segment %s offset %d entry %d (%s of message %d)", si.Seq, rec.Offset, k, e.Kind, e.ID)
			switch {
			case ae == nil && rec.Offset >= si.Size:
				// The segment is synced in parallel with the audit log, so a
				// crash can keep a record without its entry: say both.
				problem("%s: after the committed length and not vouched for by the audit log (no ingest entry names this record): "+
					"a commit a crash interrupted before its audit entry was durable (never acknowledged), or bytes appended outside sealmail; "+
					"not in the catalog, the daemon sets it aside at its next start", where)
			case ae == nil:
				problem("%s: not vouched for by the audit log (no ingest entry names this record): added or altered outside sealmail", where)
			case ae.id != uint64(e.ID) || ae.digest != hex.EncodeToString(e.Digest[:]):
				problem("%s: the audit log's ingest entry %d names message %d with another digest", where, ae.seq, ae.id)
			case rec.Offset >= si.Size:
				ae.found = true
				problem("%s: logged as ingested (audit entry %d) but after the segment's committed length, so not in the catalog: "+
					"either a crash interrupted its commit (it was never acknowledged) or catalog.db is older than the segments", where, ae.seq)
			default:
				ae.found = true
			}
		}
	})
	if err != nil {
		return nil, err
	}
	rep.Segments, rep.Sealed, rep.Records, rep.Entries, rep.Bytes = srep.Segments, srep.Sealed, srep.Records, srep.Entries, srep.Bytes
	for _, f := range srep.Findings {
		problem("%s", f)
	}
	segs, err := a.store.Segments()
	if err != nil {
		return nil, err
	}
	active := ""
	for _, si := range segs {
		if si.State != store.SegmentSealed {
			active = si.Seq.String()
			continue
		}
		want, ok := sealed[si.Seq.String()]
		switch {
		case !ok:
			problem("segment %s: sealed, but the audit log has no seal entry for it", si.Seq)
		case want != hex.EncodeToString(si.SHA256[:]):
			problem("segment %s: the catalog's SHA-256 %x differs from the audit log's %s", si.Seq, si.SHA256, want)
		}
	}
	for _, ae := range byRecord {
		if ae.found || ae.undone {
			continue
		}
		if ae.segment == active && ae.offset >= srep.Committed[segs[len(segs)-1].Seq] {
			if !a.store.ReadOnly() {
				continue // being committed right now
			}
			problem("message %d: the audit log (entry %d) records it stored in segment %s at offset %d, beyond the committed length, "+
				"and the record is not there: a crash interrupted its commit (it was never acknowledged); the daemon records this at its next start",
				ae.id, ae.seq, ae.segment, ae.offset)
			continue
		}
		problem("message %d: the audit log (entry %d) records it stored in segment %s at offset %d, but that record is missing or altered",
			ae.id, ae.seq, ae.segment, ae.offset)
	}

	if err := a.Log(ctx, audit.TypeVerify, map[string]any{"ok": rep.OK(), "problems": len(rep.Problems),
		"records": rep.Records, "entries": rep.Entries, "audit_head": rep.AuditHead}); err != nil {
		return nil, err
	}
	return rep, nil
}

func num(v any) uint64 {
	switch n := v.(type) {
	case json.Number:
		u, _ := strconv.ParseUint(n.String(), 10, 64)
		return u
	case float64:
		return uint64(n)
	}
	return 0
}

func str(v any) string { s, _ := v.(string); return s }

func list(v any) []any { l, _ := v.([]any); return l }

// VerifyAudit checks the audit log alone: chain, signatures, and that it
// extends each external checkpoint. The run is audited.
func (a *Archive) VerifyAudit(ctx context.Context, external []audit.Checkpoint) (*audit.Report, error) {
	rep, err := audit.Verify(ctx, auditDir(a.dir), external)
	if err != nil {
		return nil, fmt.Errorf("verify audit log: %w", err)
	}
	if err := a.Log(ctx, audit.TypeVerify, map[string]any{"scope": "audit", "ok": rep.OK(), "problems": len(rep.Problems),
		"entries": rep.Entries, "external": rep.External}); err != nil {
		return nil, err
	}
	return rep, nil
}

// Checkpoint writes a signed audit checkpoint now and returns it, for the
// operator to keep outside the host.
func (a *Archive) Checkpoint(ctx context.Context) (audit.Checkpoint, error) {
	if err := a.Log(ctx, audit.TypeAPICall, map[string]any{"op": "checkpoint"}); err != nil {
		return audit.Checkpoint{}, err
	}
	return a.audit.Checkpoint(ctx)
}
