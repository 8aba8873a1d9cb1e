// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/offsite"
	"github.com/sealmail/sealmail/store"
	"github.com/sealmail/sealmail/vfs"
)

// restoreMarker is the file a restore writes first into the directory it
// restores to and removes last: while it is there, the directory is not an
// archive yet ([Open] refuses it) and only a restore may continue there.
const restoreMarker = "restore.incomplete"

// The recover entry's op for the audit entries a crash lost, and the one
// for those a restored backup does not hold.
const (
	lostInCrash   = "audited entries whose records a crash lost before their commit (never acknowledged)"
	lostInRestore = "audited after the backup's catalog copy was taken: not in the restored backup"
)

func lostOp(o Options) string {
	if o.restoring {
		return lostInRestore
	}
	return lostInCrash
}

// checkRestoreDone refuses an archive whose restore did not finish.
func checkRestoreDone(dir string, o Options) error {
	if o.restoring {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, restoreMarker)); err == nil {
		return fmt.Errorf("%s: a restore into it did not finish (%s is there): run `sealmail restore` into it again", dir, restoreMarker)
	}
	return nil
}

// RestoreOptions configures [Restore].
type RestoreOptions struct {
	// Identities open the backup's secrets (digest key, audit signing
	// key, TLS key): the archive's age identity.
	Identities []age.Identity
	Logger     *slog.Logger
	// FS is the file system the archive is written through; nil means the
	// real one.
	FS vfs.FS
}

// RestoreReport says what [Restore] did.
type RestoreReport struct {
	Archive string    `json:"archive"`
	Dir     string    `json:"dir"`
	Backup  uint64    `json:"backup"`  // the manifest's seq
	Created time.Time `json:"created"` // when the backup was taken
	Files   int       `json:"files"`
	Bytes   int64     `json:"bytes"`
	// Checkpoint is the checkpoint the backup's audit log ends with (text
	// form): the restored log extends it.
	Checkpoint string `json:"checkpoint"`
	// NotInBackup are the messages the audit log records as stored after
	// the backup's catalog copy was taken, up to its checkpoint: they were
	// acknowledged, and the backup does not hold them.
	NotInBackup []uint64 `json:"not_in_backup"`
	// Reapplied are the messages whose deletion the audit log records and
	// that the backup's catalog still had live: deleted again.
	Reapplied []uint64 `json:"reapplied_deletions"`
	Reclaimed int64    `json:"reclaimed_bytes"`
	// Warnings are what the operator must check: changes the audit log
	// records after the catalog copy that the restore cannot redo.
	Warnings []string `json:"warnings"`
}

// Restore restores the newest backup in the directory from into dir, which
// must be empty or missing (or hold a restore that did not finish), with
// the identities that open its secrets. Every file is checked against the
// manifest as it is written. Then the archive is opened, which reconciles
// the audit entries the backup's catalog copy does not reflect, and every
// deletion the audit log records is made again where the catalog copy
// still has the message live (the audit log is the ledger: a message
// deleted before the backup stays deleted). The restore is audited.
//
// It is safe to interrupt: until it has finished, dir holds
// restore.incomplete, the archive does not open, and running Restore again
// finishes it.
func Restore(ctx context.Context, from, dir string, o RestoreOptions) (*RestoreReport, error) {
	fsys := vfs.Or(o.FS)
	t, err := offsite.OpenDir(from, nil)
	if err != nil {
		return nil, invalid("%v", err)
	}
	unlock, err := lockForReading(ctx, t)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, err := offsite.Latest(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("restore from %s: %w", from, err)
	}
	if err := prepareRestore(dir, restoreMarkerContent{Archive: m.Archive, Backup: m.Seq}, fsys); err != nil {
		return nil, err
	}
	rep := &RestoreReport{Archive: m.Archive, Dir: dir, Backup: m.Seq, Created: m.Created, Checkpoint: m.Checkpoint,
		NotInBackup: []uint64{}, Reapplied: []uint64{}, Warnings: []string{}}
	// archive.json last: with it, the files make an archive.
	var last []offsite.File
	for _, f := range m.Files {
		if f.Path == "archive.json" {
			last = append(last, f)
			continue
		}
		if err := restoreFile(ctx, t, f, dir, fsys, o.Identities, rep); err != nil {
			return nil, err
		}
	}
	for _, f := range last {
		if err := restoreFile(ctx, t, f, dir, fsys, o.Identities, rep); err != nil {
			return nil, err
		}
	}
	if err := fsys.MkdirAll(filepath.Join(dir, "segments"), 0o700); err != nil {
		return nil, err
	}
	cp, err := audit.ParseCheckpoint([]byte(m.Checkpoint))
	if err != nil {
		return nil, fmt.Errorf("restore: the backup's checkpoint: %w", err)
	}
	src := restoreSource{From: from, Backup: m.Seq, Created: m.Created, AuditSeq: m.AuditSeq}
	if err := finishRestore(ctx, dir, Options{FS: fsys, Logger: o.Logger, restoring: true}, src, cp.Seq+1, rep); err != nil {
		return nil, err
	}
	if err := fsys.Remove(filepath.Join(dir, restoreMarker)); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return rep, nil
}

// lockForReading takes the target's lock, so that no backup removes what
// a restore or a verification reads meanwhile. A target mounted read-only
// (a drill's) has no writer to keep out: it is read without the lock.
func lockForReading(ctx context.Context, t offsite.Target) (func(), error) {
	unlock, err := t.Lock(ctx)
	if errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission) {
		return func() {}, nil
	}
	return unlock, err
}

// restoreMarkerContent is what restore.incomplete holds: which backup is
// being restored, so that a second run does not mix two backups.
type restoreMarkerContent struct {
	Archive string `json:"archive"`
	Backup  uint64 `json:"backup"`
}

// prepareRestore makes sure dir may take the restore want names and marks
// it.
func prepareRestore(dir string, want restoreMarkerContent, fsys vfs.FS) error {
	des, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := fsys.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if err := fsys.SyncDir(filepath.Dir(dir)); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	case err != nil:
		return fmt.Errorf("restore: %w", err)
	case len(des) > 0:
		b, err := os.ReadFile(filepath.Join(dir, restoreMarker))
		if err != nil {
			return invalid("restore: %s is not empty: restore into a new or empty directory", dir)
		}
		var got restoreMarkerContent
		if json.Unmarshal(b, &got) != nil || got != want {
			return invalid("restore: %s holds an unfinished restore of another backup (%s): remove the directory and restore again", dir, b)
		}
		return nil // continue it: every file is written again
	}
	if err := fsys.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	b, _ := json.Marshal(want) // two plain fields
	if err := vfs.WriteFile(fsys, filepath.Join(dir, restoreMarker), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

func restoreFile(ctx context.Context, t offsite.Target, f offsite.File, dir string, fsys vfs.FS, ids []age.Identity, rep *RestoreReport) error {
	if err := offsite.RestoreFile(ctx, t, f, dir, fsys, ids); err != nil {
		if errors.Is(err, offsite.ErrNoIdentity) {
			return invalid("%v (restore needs the archive's identity: --identity FILE)", err)
		}
		return err
	}
	rep.Files++
	rep.Bytes += f.Size
	return nil
}

// restoreSource is what a restore restored: from where, which backup (0
// for a bucket), taken when, and the audit log's last entry when its
// catalog was read (entries after it may have no effect in the catalog).
type restoreSource struct {
	From     string
	Backup   uint64
	Created  time.Time
	AuditSeq uint64
}

// finishRestore opens the restored archive (which reconciles the audit
// entries beyond the catalog copy), deletes again what the ledger says
// was deleted, reclaims bytes, audits the restore and closes it. cpEntry is
// the checkpoint entry the restored log ends with.
func finishRestore(ctx context.Context, dir string, opts Options, m restoreSource, cpEntry uint64, rep *RestoreReport) error {
	a, err := Open(dir, opts)
	if err != nil {
		return fmt.Errorf("restore: open the restored archive: %w", err)
	}
	err = func() error {
		var lost []uint64
		var changes []string
		err := audit.Read(ctx, auditDir(dir), audit.Filter{FromSeq: m.AuditSeq + 1}, func(e audit.Entry) error {
			switch {
			case e.Seq > cpEntry && e.Type == audit.TypeRecover:
				var f recoverFields
				if err := e.DecodeFields(&f); err == nil && f.Op == lostInRestore {
					for _, d := range f.Entries {
						if d.Kind == store.KindMessage.String() {
							lost = append(lost, d.ID)
						}
					}
				}
			case e.Seq <= cpEntry && (e.Type == audit.TypeHoldCreate || e.Type == audit.TypeHoldRelease || e.Type == audit.TypePolicyChange):
				changes = append(changes, fmt.Sprintf("%s (audit entry %d)", e.Type, e.Seq))
			}
			return nil
		})
		if err != nil {
			return err
		}
		rep.NotInBackup = append(rep.NotInBackup, lost...)
		for _, c := range changes {
			rep.Warnings = append(rep.Warnings, "the audit log records "+c+" after the backup's catalog copy was taken; "+
				"the restored catalog may not have it: check `sealmail hold list` and retention, and repeat it if needed")
		}
		if rep.Reapplied, err = a.reapplyDeletions(ctx, cpEntry); err != nil {
			return fmt.Errorf("restore: deletions: %w", err)
		}
		if rep.Reclaimed, err = a.Compact(ctx); err != nil {
			return fmt.Errorf("restore: reclaim deleted messages' bytes: %w", err)
		}
		return a.logEvent(ctx, audit.TypeRestore, restoreFields{From: m.From, Backup: m.Backup, Created: m.Created.Format(time.RFC3339),
			Checkpoint: cpEntry, Files: rep.Files, NotInBackup: rep.NotInBackup, Reapplied: rep.Reapplied})
	}()
	if cerr := a.Close(); err == nil {
		err = cerr
	}
	return err
}

// reapplyDeletions deletes every message whose deletion committed in the
// archive the backup came from (a tombstone's ingest entry in the audit
// log up to entry upTo, not rolled back or lost) and that the restored
// catalog still has live: a deletion that committed after the catalog was
// copied. The deletion names the purge or erasure that ordered it, as the
// first one did. It returns the ids deleted.
func (a *Archive) reapplyDeletions(ctx context.Context, upTo uint64) ([]uint64, error) {
	type order struct {
		seq    uint64
		reason string
	}
	ordered := make(map[uint64]order)
	tombs := make(map[uint64]entryRef) // message id → its tombstone
	tombSeq := make(map[uint64]uint64)
	f := audit.Filter{Types: []string{audit.TypeIngest, audit.TypeIngestRollback, audit.TypeRecover, audit.TypePurge, audit.TypeErase}}
	err := audit.Read(ctx, auditDir(a.dir), f, func(e audit.Entry) error {
		if e.Seq > upTo {
			return errStopRead
		}
		switch e.Type {
		case audit.TypePurge, audit.TypeErase:
			var f struct {
				DryRun bool     `json:"dry_run"`
				IDs    []uint64 `json:"ids"`
			}
			if err := e.DecodeFields(&f); err != nil || f.DryRun {
				return err
			}
			reason := "retention"
			if e.Type == audit.TypeErase {
				reason = "erasure"
			}
			for _, id := range f.IDs {
				ordered[id] = order{seq: e.Seq, reason: reason}
			}
		case audit.TypeIngest:
			var f ingestFields
			if err := e.DecodeFields(&f); err != nil {
				return err
			}
			if f.Kind == store.KindTombstone.String() {
				tombs[f.ID], tombSeq[f.ID] = f.ref(), e.Seq
			}
		case audit.TypeIngestRollback:
			var f rollbackFields
			if err := e.DecodeFields(&f); err != nil {
				return err
			}
			for _, id := range f.IDs {
				delete(tombs, id)
			}
		case audit.TypeRecover:
			var f recoverFields
			if err := e.DecodeFields(&f); err != nil {
				return err
			}
			for _, d := range f.Entries {
				if r, ok := tombs[d.ID]; ok && r == d.ref() {
					delete(tombs, d.ID)
				}
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopRead) {
		return nil, err
	}
	var dels []store.Deletion
	for id := range tombs {
		m, err := a.store.Message(sealmail.MessageID(id))
		if err != nil || m.State != store.StateLive {
			continue // deleted in the catalog copy already (or never cataloged)
		}
		o, ok := ordered[id]
		if !ok {
			o = order{seq: tombSeq[id], reason: "restore"}
		}
		dels = append(dels, store.Deletion{ID: m.ID, Reason: o.reason, Audit: o.seq, Actor: "restore"})
	}
	if len(dels) == 0 {
		return []uint64{}, nil
	}
	slices.SortFunc(dels, func(x, y store.Deletion) int { return cmp.Compare(x.ID, y.ID) })
	if _, err := a.store.Delete(ctx, dels, a.opts.Now()); err != nil {
		return nil, err
	}
	out := make([]uint64, len(dels))
	for i, d := range dels {
		out[i] = uint64(d.ID)
	}
	return out, nil
}

var errStopRead = errors.New("stop reading")
