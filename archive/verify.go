// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
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

// verifier holds one run of [Archive.Verify]: what the audit log says was
// stored, and the problems found so far. Each phase is one method.
type verifier struct {
	a   *Archive
	rep *VerifyReport

	byRecord map[entryRef]*auditedEntry // what the audit log says was stored
	byID     map[uint64][]*auditedEntry
	sealed   map[string]string // segment → SHA-256 at sealing (or last compaction)
	// committed is the store's committed length per segment, from the
	// record scan.
	committed map[store.SegmentSeq]int64
}

func (v *verifier) problem(format string, args ...any) {
	v.rep.Problems = append(v.rep.Problems, fmt.Sprintf(format, args...))
}

// Verify checks the whole archive without the identity: the audit log's
// chain and signatures (and that it extends each external checkpoint), the
// store (record CRCs, sealed segments' SHA-256, catalog ↔ segments), and
// that every stored entry is vouched for by an ingest entry of the audit log
// naming the same record SHA-256 and digest, and every audited ingest is
// stored. Anyone holding the public recipient can forge a valid age record,
// so only the audit chain proves a record's origin. The run is itself
// audited.
func (a *Archive) Verify(ctx context.Context, external []Checkpoint) (*VerifyReport, error) {
	v := &verifier{a: a, rep: &VerifyReport{Archive: a.store.Info().ID, Problems: []string{}},
		byRecord: make(map[entryRef]*auditedEntry), byID: make(map[uint64][]*auditedEntry), sealed: make(map[string]string)}
	if err := v.auditChain(ctx, external); err != nil {
		return nil, err
	}
	if err := v.auditedStorage(ctx); err != nil {
		return nil, err
	}
	if err := v.records(ctx); err != nil {
		return nil, err
	}
	active, err := v.sealedSegments()
	if err != nil {
		return nil, err
	}
	v.missingRecords(active)

	rep := v.rep
	if err := a.logEvent(ctx, audit.TypeVerify, verifyFields{OK: rep.OK(), Problems: len(rep.Problems),
		Records: rep.Records, Entries: rep.Entries, AuditHead: rep.AuditHead}); err != nil {
		return nil, err
	}
	return rep, nil
}

// auditChain is phase 1: the audit log's hash chain and signatures, and
// that it extends each external checkpoint.
func (v *verifier) auditChain(ctx context.Context, external []Checkpoint) error {
	arep, err := audit.Verify(ctx, auditDir(v.a.dir), external)
	if err != nil {
		return fmt.Errorf("verify audit log: %w", err)
	}
	v.rep.AuditEntries, v.rep.AuditHead, v.rep.Checkpoints, v.rep.External = arep.LastSeq, arep.Head.String(), arep.Checkpoints, arep.External
	for _, p := range arep.Problems {
		v.problem("audit log: %s", p)
	}
	return nil
}

// auditedStorage is phase 2: read what the audit log says was stored (up
// to what it held when the run began), rolled back, cut off at start-up,
// sealed and compacted.
func (v *verifier) auditedStorage(ctx context.Context) error {
	head, _ := v.a.audit.Head()
	f := audit.Filter{Types: []string{audit.TypeIngest, audit.TypeIngestRollback, audit.TypeRecover,
		audit.TypeSegmentSeal, audit.TypeSegmentCompact, audit.TypeIntentCommit, audit.TypeIntentAbort}}
	// A seal or compaction audited as an intent counts once its catalog
	// change committed: at its intent.commit entry, or, after a crash that
	// came before that entry (the daemon writes it at its next start), when
	// the catalog still lists the intent as pending.
	intents := make(map[uint64]audit.Entry)
	err := audit.Read(ctx, auditDir(v.a.dir), f, func(e audit.Entry) error {
		if e.Seq > head {
			return nil
		}
		switch e.Type {
		case audit.TypeSegmentSeal, audit.TypeSegmentCompact:
			var f intentFlag
			if err := e.DecodeFields(&f); err == nil && f.Intent {
				intents[e.Seq] = e
				return nil
			}
		case audit.TypeIntentCommit, audit.TypeIntentAbort:
			var f intentFields
			if err := e.DecodeFields(&f); err != nil {
				v.problem("audit entry %d: %v", e.Seq, err)
				return nil
			}
			if i, ok := intents[f.Intent]; ok {
				delete(intents, f.Intent)
				if e.Type == audit.TypeIntentCommit {
					v.apply(i)
				}
			}
			return nil
		}
		v.apply(e)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	pending, err := v.a.store.PendingIntents()
	if err != nil {
		return err
	}
	for _, i := range pending {
		if e, ok := intents[uint64(i)]; ok {
			delete(intents, e.Seq)
			v.apply(e)
		}
	}
	return nil
}

// apply takes in one audit entry of phase 2.
func (v *verifier) apply(e audit.Entry) {
	switch e.Type {
	case audit.TypeIngest:
		var f ingestFields
		if err := e.DecodeFields(&f); err != nil {
			v.problem("audit entry %d: %v", e.Seq, err)
			return
		}
		ae := &auditedEntry{seq: e.Seq, id: f.ID, digest: f.Digest, segment: f.Segment, offset: f.Offset}
		v.byRecord[f.ref()] = ae
		v.byID[ae.id] = append(v.byID[ae.id], ae)
	case audit.TypeIngestRollback:
		var f rollbackFields
		if err := e.DecodeFields(&f); err != nil {
			v.problem("audit entry %d: %v", e.Seq, err)
			return
		}
		for _, id := range f.IDs {
			for _, ae := range v.byID[id] {
				ae.undone = true
			}
		}
	case audit.TypeRecover:
		var f recoverFields
		if err := e.DecodeFields(&f); err != nil {
			v.problem("audit entry %d: %v", e.Seq, err)
			return
		}
		v.recovered(e, f)
	case audit.TypeSegmentSeal:
		var f sealFields
		if err := e.DecodeFields(&f); err != nil {
			v.problem("audit entry %d: %v", e.Seq, err)
			return
		}
		v.sealed[f.Segment] = f.SHA256
	case audit.TypeSegmentCompact:
		var f compactFields
		if err := e.DecodeFields(&f); err != nil {
			v.problem("audit entry %d: %v", e.Seq, err)
			return
		}
		if v.sealed[f.Segment] != f.OldSHA256 {
			v.problem("audit entry %d: compaction of segment %s starts from SHA-256 %s, not the one the log recorded", e.Seq, f.Segment, f.OldSHA256)
		}
		v.sealed[f.Segment] = f.SHA256
		for _, d := range f.Dropped {
			if ae := v.byRecord[d.ref()]; ae != nil {
				ae.undone = true
			}
		}
	}
}

// recovered takes in a start-up repair: the entries it cut off were never
// committed, and a side file it left is reported until deleted.
func (v *verifier) recovered(e audit.Entry, f recoverFields) {
	if f.KeptIn != "" {
		if _, err := os.Stat(filepath.Join(v.a.dir, "segments", f.KeptIn)); err == nil {
			v.problem("segments/%s: the uncommitted tail of a segment (%d entries) set aside at start-up on %s (audit entry %d). "+
				"After a crash these were never acknowledged and their senders retried: delete the file after review. "+
				"If catalog.db was restored from a backup, they are acknowledged messages: restore the catalog instead",
				f.KeptIn, len(f.Entries), e.Time.Format(time.RFC3339), e.Seq)
		}
	}
	// A record cut off without an ingest entry is no problem: the segment
	// is synced in parallel with the audit log, so a crash can keep the
	// record and lose its entry; and what is cut off never reaches the
	// catalog (the kept file is reported above while it exists).
	for _, d := range f.Entries {
		if ae := v.byRecord[d.ref()]; ae != nil {
			ae.undone = true
		}
	}
}

// records is phase 3: the store checks itself (CRCs, sealed hashes,
// catalog ↔ segments), and every entry of every record must be vouched
// for by its ingest entry.
func (v *verifier) records(ctx context.Context) error {
	srep, err := v.a.store.Verify(ctx, func(si store.SegmentInfo, rec store.ScannedRecord) {
		for k, e := range rec.Header.Entries {
			ae := v.byRecord[refOf(rec.SHA256, k)]
			where := fmt.Sprintf("segment %s offset %d entry %d (%s of message %d)", si.Seq, rec.Offset, k, e.Kind, e.ID)
			switch {
			case ae == nil && rec.Offset >= si.Size:
				// The segment is synced in parallel with the audit log, so a
				// crash can keep a record without its entry: say both.
				v.problem("%s: after the committed length and not vouched for by the audit log (no ingest entry names this record): "+
					"a commit a crash interrupted before its audit entry was durable (never acknowledged), or bytes appended outside sealmail; "+
					"not in the catalog, the daemon sets it aside at its next start", where)
			case ae == nil:
				v.problem("%s: not vouched for by the audit log (no ingest entry names this record): added or altered outside sealmail", where)
			case ae.id != uint64(e.ID) || ae.digest != hex.EncodeToString(e.Digest[:]):
				v.problem("%s: the audit log's ingest entry %d names message %d with another digest", where, ae.seq, ae.id)
			case rec.Offset >= si.Size:
				ae.found = true
				v.problem("%s: logged as ingested (audit entry %d) but after the segment's committed length, so not in the catalog: "+
					"either a crash interrupted its commit (it was never acknowledged) or catalog.db is older than the segments", where, ae.seq)
			default:
				ae.found = true
			}
		}
	})
	if err != nil {
		return err
	}
	r := v.rep
	r.Segments, r.Sealed, r.Records, r.Entries, r.Bytes = srep.Segments, srep.Sealed, srep.Records, srep.Entries, srep.Bytes
	for _, f := range srep.Findings {
		v.problem("%s", f)
	}
	v.committed = srep.Committed
	return nil
}

// sealedSegments is phase 4: every sealed segment's SHA-256 is the one the
// audit log recorded at sealing (or at its last compaction). It returns the
// active segment, if any.
func (v *verifier) sealedSegments() (*store.SegmentInfo, error) {
	segs, err := v.a.store.Segments()
	if err != nil {
		return nil, err
	}
	var active *store.SegmentInfo
	for i, si := range segs {
		if si.State != store.SegmentSealed {
			active = &segs[i]
			continue
		}
		want, ok := v.sealed[si.Seq.String()]
		switch {
		case !ok:
			v.problem("segment %s: sealed, but the audit log has no seal entry for it", si.Seq)
		case want != hex.EncodeToString(si.SHA256[:]):
			v.problem("segment %s: the catalog's SHA-256 %x differs from the audit log's %s", si.Seq, si.SHA256, want)
		}
	}
	return active, nil
}

// missingRecords is phase 5: every entry the audit log says was stored,
// and not undone since, was found in the segments.
func (v *verifier) missingRecords(active *store.SegmentInfo) {
	for _, ae := range v.byRecord {
		if ae.found || ae.undone {
			continue
		}
		if active != nil && ae.segment == active.Seq.String() && ae.offset >= v.committed[active.Seq] {
			if !v.a.store.ReadOnly() {
				continue // being committed right now
			}
			v.problem("message %d: the audit log (entry %d) records it stored in segment %s at offset %d, beyond the committed length, "+
				"and the record is not there: a crash interrupted its commit (it was never acknowledged); the daemon records this at its next start",
				ae.id, ae.seq, ae.segment, ae.offset)
			continue
		}
		v.problem("message %d: the audit log (entry %d) records it stored in segment %s at offset %d, but that record is missing or altered",
			ae.id, ae.seq, ae.segment, ae.offset)
	}
}

// Checkpoint is a signed audit checkpoint; its text form
// ([audit.Checkpoint.MarshalText]) is what an operator keeps off the host.
type Checkpoint = audit.Checkpoint

// ParseCheckpoints parses one or more checkpoints in their text form, as
// `sealmail audit checkpoint` prints them.
func ParseCheckpoints(b []byte) ([]Checkpoint, error) { return audit.ParseCheckpoints(b) }

// AuditReport is the result of [Archive.VerifyAudit]. An empty Problems
// means the log verified.
type AuditReport struct {
	Archive     string   `json:"archive"`
	Files       int      `json:"files"`
	Entries     uint64   `json:"entries"`
	Checkpoints int      `json:"checkpoints"` // signed checkpoints whose signature verified
	LastSeq     uint64   `json:"last_seq"`    // of the last entry
	Head        string   `json:"head"`        // hash of the last entry
	Unsigned    uint64   `json:"unsigned"`    // entries after the last checkpoint
	External    int      `json:"external"`    // external checkpoints the log extends
	Problems    []string `json:"problems"`
}

// OK reports whether verification found nothing wrong.
func (r *AuditReport) OK() bool { return len(r.Problems) == 0 }

// VerifyAudit checks the audit log alone: chain, signatures, and that it
// extends each external checkpoint. The run is audited.
func (a *Archive) VerifyAudit(ctx context.Context, external []Checkpoint) (*AuditReport, error) {
	arep, err := audit.Verify(ctx, auditDir(a.dir), external)
	if err != nil {
		return nil, fmt.Errorf("verify audit log: %w", err)
	}
	rep := &AuditReport{Archive: arep.Archive, Files: arep.Files, Entries: arep.Entries, Checkpoints: arep.Checkpoints,
		LastSeq: arep.LastSeq, Head: arep.Head.String(), Unsigned: arep.Unsigned, External: arep.External, Problems: []string{}}
	for _, p := range arep.Problems {
		rep.Problems = append(rep.Problems, p.String())
	}
	if err := a.logEvent(ctx, audit.TypeVerify, verifyAuditFields{Scope: "audit", OK: rep.OK(), Problems: len(rep.Problems),
		Entries: rep.Entries, External: rep.External}); err != nil {
		return nil, err
	}
	return rep, nil
}

// Checkpoint writes a signed audit checkpoint now and returns it, for the
// operator to keep outside the host.
func (a *Archive) Checkpoint(ctx context.Context) (Checkpoint, error) {
	if err := a.logEvent(ctx, audit.TypeAPICall, callFields{Op: "checkpoint"}); err != nil {
		return Checkpoint{}, err
	}
	return a.audit.Checkpoint(ctx)
}

// AuditEntry is one entry of the audit log, as `sealmail audit show`
// prints it.
type AuditEntry = audit.Entry

// AuditFilter selects entries for [ReadAudit].
type AuditFilter = audit.Filter

// AuditTypes lists every audit entry type, for `audit show --type`.
func AuditTypes() []string { return audit.Types() }

// ReadAudit calls fn for each entry of the audit log of the archive in dir
// that f selects, oldest first. It only reads, without the daemon and
// while it writes (it stops at the last complete line).
func ReadAudit(ctx context.Context, dir string, f AuditFilter, fn func(AuditEntry) error) error {
	if !Exists(dir) {
		return fmt.Errorf("no archive at %s: %w", dir, ErrNoArchive)
	}
	return audit.Read(ctx, auditDir(dir), f, fn)
}

// Bounds of [Archive.AuditEntries]: entries per call.
const (
	AuditEntriesDefault = 50
	AuditEntriesMax     = 500
)

// AuditEntries returns the audit log's entries that f selects, newest
// first, at most limit of them (default [AuditEntriesDefault], at most
// [AuditEntriesMax]): the next page is f with BeforeSeq the last one's
// Seq. It reads the log backwards without the chain checks (the reader
// verifies the chain as it follows it; `audit verify` checks it all), so
// a filter matching little reads the whole log. The read is audited
// (api.call, op audit).
func (a *Archive) AuditEntries(ctx context.Context, f AuditFilter, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = AuditEntriesDefault
	}
	limit = min(limit, AuditEntriesMax)
	if err := a.logEvent(ctx, audit.TypeAPICall, callFields{Op: "audit"}); err != nil {
		return nil, err
	}
	out := []AuditEntry{}
	err := audit.ReadBack(auditDir(a.dir), func(e AuditEntry) bool {
		if ctx.Err() != nil || e.Seq < f.FromSeq {
			return false
		}
		if f.Match(e) {
			out = append(out, e)
		}
		return len(out) < limit
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("audit entries: %w", err)
	}
	return out, nil
}
