// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/offsite"
	"github.com/sealmail/sealmail/store"
)

// BackupVerifyReport is the result of [VerifyBackup]: an empty Problems
// means the backup verified.
type BackupVerifyReport struct {
	Target       string    `json:"target"`
	Archive      string    `json:"archive"`
	Backup       uint64    `json:"backup"`
	Created      time.Time `json:"created"`
	Files        int       `json:"files"`
	Bytes        int64     `json:"bytes"`
	Segments     int       `json:"segments"`
	Records      int64     `json:"records"`
	AuditEntries uint64    `json:"audit_entries"`
	External     int       `json:"external_checkpoints"` // the operator's checkpoints the backup's log extends
	Secrets      int       `json:"secrets_decrypted"`    // with an identity
	Problems     []string  `json:"problems"`
}

// OK reports whether the backup verified.
func (rep *BackupVerifyReport) OK() bool { return len(rep.Problems) == 0 }

// VerifyBackup checks the newest backup in the directory from without the
// archive it came from: the manifest's checksum and every object's and
// file's size and SHA-256; every segment's header and record CRCs; the
// audit log's chain and signatures up to the checkpoint it must end with
// (and that it extends each external checkpoint); that each sealed
// segment's SHA-256 is the one its audit log recorded last; and, with
// identities, that every secret decrypts to the bytes the manifest names.
// What it does not check is whether every record is vouched for by the
// audit log and the catalog agrees with the segments: a restore followed by
// `sealmail verify` does (docs/operations.md, "The restore drill").
func VerifyBackup(ctx context.Context, from string, external []Checkpoint, ids []age.Identity) (*BackupVerifyReport, error) {
	t, err := offsite.OpenDir(from, nil)
	if err != nil {
		return nil, invalid("%v", err)
	}
	unlock, err := lockForReading(ctx, t)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep := &BackupVerifyReport{Target: from, Problems: []string{}}
	m, err := offsite.Latest(ctx, t)
	if errors.Is(err, offsite.ErrCorrupt) {
		rep.Problems = append(rep.Problems, err.Error())
		return rep, nil
	}
	if err != nil {
		return nil, err
	}
	rep.Archive, rep.Backup, rep.Created, rep.Files = m.Archive, m.Seq, m.Created, len(m.Files)
	problem := func(format string, v ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, v...)) }
	probs, err := offsite.Verify(ctx, t, m, func(f offsite.File, r io.Reader) error {
		rep.Bytes += f.Size
		switch {
		case strings.HasPrefix(f.Path, "segments/"):
			return rep.scanSegment(m, f, r)
		case f.Encrypted != nil && len(ids) > 0:
			if _, err := offsite.OpenSecret(r, f, ids); err != nil {
				return err
			}
			rep.Secrets++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, p := range probs {
		problem("%s", p)
	}
	cp, err := audit.ParseCheckpoint([]byte(m.Checkpoint))
	if err != nil {
		problem("the manifest's checkpoint: %v", err)
		return rep, nil
	}
	afs := offsite.FS(ctx, t, m, "audit")
	arep, err := audit.VerifyFS(ctx, afs, from+" audit/", append(append([]Checkpoint(nil), external...), cp))
	if err != nil {
		problem("audit log: %v", err)
		return rep, nil
	}
	rep.AuditEntries, rep.External = arep.LastSeq, max(arep.External-1, 0)
	for _, p := range arep.Problems {
		problem("audit log: %s", p)
	}
	if arep.LastSeq != cp.Seq+1 {
		problem("audit log: it ends at entry %d, but the backup's checkpoint is entry %d", arep.LastSeq, cp.Seq+1)
	}
	if err := rep.checkSeals(ctx, afs, m); err != nil {
		problem("audit log: %v", err)
	}
	return rep, nil
}

// scanSegment checks a segment file's header and every record's CRCs.
func (rep *BackupVerifyReport) scanSegment(m *offsite.Manifest, f offsite.File, r io.Reader) error {
	seg, valid, err := store.Scan(r, func(store.ScannedRecord) error { return nil })
	if seg != nil {
		rep.Segments++
		rep.Records += seg.Records
		if seq, _ := segmentSeq(f.Path); hex.EncodeToString(seg.ArchiveID[:]) != m.Archive || seg.Seq != seq {
			return fmt.Errorf("its header names archive %x segment %s", seg.ArchiveID, seg.Seq)
		}
	}
	if err != nil {
		return fmt.Errorf("unreadable from offset %d: %w", valid, err)
	}
	if valid != f.Size {
		return fmt.Errorf("records end at %d of its %d bytes", valid, f.Size)
	}
	return nil
}

// checkSeals compares each sealed segment's SHA-256 (mode 0444 in the
// manifest) with the last seal or compaction of it that the backup's audit
// log records as committed. An intent without outcome counts when the
// manifest (the catalog) has its hash: the catalog then lists it as pending.
func (rep *BackupVerifyReport) checkSeals(ctx context.Context, afs fs.FS, m *offsite.Manifest) error {
	type seal struct{ segment, sha string }
	sealed := make(map[string]string) // segment → SHA-256
	intents := make(map[uint64]seal)
	f := audit.Filter{Types: []string{audit.TypeSegmentSeal, audit.TypeSegmentCompact, audit.TypeIntentCommit, audit.TypeIntentAbort}}
	err := audit.ReadFS(ctx, afs, "audit", f, func(e audit.Entry) error {
		switch e.Type {
		case audit.TypeIntentCommit, audit.TypeIntentAbort:
			var f intentFields
			if err := e.DecodeFields(&f); err != nil {
				return err
			}
			if i, ok := intents[f.Intent]; ok && e.Type == audit.TypeIntentCommit {
				sealed[i.segment] = i.sha
			}
			delete(intents, f.Intent)
		default:
			var f compactFields // a seal entry has a subset of its keys
			if err := e.DecodeFields(&f); err != nil {
				return err
			}
			if f.Intent {
				intents[e.Seq] = seal{f.Segment, f.SHA256}
			} else {
				sealed[f.Segment] = f.SHA256
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, f := range m.Files {
		seq, ok := segmentSeq(f.Path)
		if !ok || !strings.HasPrefix(f.Path, "segments/") || f.Mode != 0o444 {
			continue
		}
		want, ok := sealed[seq.String()]
		for _, i := range intents {
			if i.segment == seq.String() && i.sha == f.SHA256 {
				want, ok = i.sha, true
			}
		}
		switch {
		case !ok:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: sealed, but the audit log has no seal entry for it", f.Path))
		case want != f.SHA256:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: SHA-256 %s, the audit log recorded %s", f.Path, f.SHA256, want))
		}
	}
	return nil
}
