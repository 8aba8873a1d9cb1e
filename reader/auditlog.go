// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"time"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
)

// AuditVerification is how far the reader has verified the receiver's
// audit log as it follows it (what `sealmail audit verify` checks of the
// whole log, the reader checks line by line as it reads it).
type AuditVerification struct {
	// VerifiedSeq: every line from the genesis through this entry
	// continues the hash chain, and every checkpoint among them is signed
	// with the key pinned at the first attach and names the chain's head.
	// Hash is that entry's hash.
	VerifiedSeq uint64 `json:"verified_seq"`
	Hash        string `json:"hash,omitempty"`
	// HeadSeq is the receiver's last entry when the reader last asked.
	HeadSeq uint64 `json:"head_seq"`
	// CheckpointSeq and CheckpointTime name the latest signed checkpoint
	// the reader verified since it started (0: none since then).
	CheckpointSeq  uint64    `json:"checkpoint_seq,omitempty"`
	CheckpointTime time.Time `json:"checkpoint_time,omitzero"`
	// Failure says why the log does not continue the verified chain, if
	// it did not when the reader last read it: the reader follows it no
	// further.
	Failure string `json:"failure,omitempty"`
	// Locked: the reader follows the log only while unlocked.
	Locked bool `json:"locked"`
}

// AuditLogReport is a page of the audit log, newest first, with how far
// the reader has verified it.
type AuditLogReport struct {
	Entries      []archive.AuditEntry `json:"entries"`
	Verification AuditVerification    `json:"verification"`
	// More: there may be older entries that the filter selects (ask again
	// with BeforeSeq the last entry's Seq).
	More bool `json:"more"`
}

// AuditVerified returns how far the reader has verified the audit log.
func (r *Reader) AuditVerified() AuditVerification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return AuditVerification{VerifiedSeq: r.snap.seq, Hash: r.snap.hash, HeadSeq: r.seen.Head,
		CheckpointSeq: r.checkpoint.Seq, CheckpointTime: r.checkpoint.Time, Failure: r.chainErr, Locked: r.ids == nil}
}

// AuditLog returns the receiver's audit entries that f selects, newest
// first, at most limit ([archive.AuditEntries]), with how far the reader
// has verified the log. The receiver audits the read with the person.
func (r *Reader) AuditLog(ctx context.Context, c Caller, f archive.AuditFilter, limit int) (*AuditLogReport, error) {
	if err := c.may(access.PermAuditLog, r.opts.Now()); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = archive.AuditEntriesDefault
	}
	limit = min(limit, archive.AuditEntriesMax-1)
	es, err := r.rcv.AuditEntries(api.OnBehalfOf(ctx, c.Name), f, limit+1)
	if err != nil {
		return nil, err
	}
	rep := &AuditLogReport{Entries: es, Verification: r.AuditVerified()}
	if len(es) > limit {
		rep.Entries, rep.More = es[:limit], true
	}
	return rep, nil
}
