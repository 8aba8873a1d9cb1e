// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/offsite"
	"github.com/sealmail/sealmail/store"
	"github.com/sealmail/sealmail/vfs"
)

// A backup runs in two places. The archive's side (the daemon, or the CLI
// that opened the archive itself) takes a consistent snapshot and serves
// its bytes: [Archive.BackupBegin], [Archive.BackupRead],
// [Archive.BackupEnd]. The CLI's side ([Backup]) writes them to the target
// through package offsite, so that the daemon, which may write only its
// data directory, never needs to reach the NAS.

// BackupSnapshot is what one backup copies, as of one moment: the catalog
// of one read transaction, every segment it names up to the committed
// length it gives, the audit log up to a checkpoint written just after,
// the small files, and the secrets sealed to the archive's recipients.
type BackupSnapshot struct {
	ID         string   `json:"id"` // names the session in BackupRead and BackupEnd
	Archive    string   `json:"archive"`
	Recipients []string `json:"recipients"`
	// Checkpoint is the signed checkpoint the copied audit log ends with
	// (text form); AuditSeq is the log's last entry when the catalog was
	// read: entries after it, up to the checkpoint, may have no effect in
	// the catalog copy.
	Checkpoint string       `json:"checkpoint"`
	AuditSeq   uint64       `json:"audit_seq"`
	Files      []BackupFile `json:"files"`
}

// BackupFile is one file of a [BackupSnapshot]: see [offsite.Source] for
// what Final and Grows let a backup reuse.
type BackupFile struct {
	Path   string      `json:"path"` // in the archive directory, slash-separated
	Mode   fs.FileMode `json:"mode"`
	Size   int64       `json:"size"`
	SHA256 string      `json:"sha256,omitempty"` // what the bytes must hash to (sealed segments)
	Final  bool        `json:"final,omitempty"`
	Grows  bool        `json:"grows,omitempty"`
	// PlainSize and PlainSHA256 are set for a secret: Data is then an age
	// file of it, sealed to the archive's recipients.
	PlainSize   int64  `json:"plain_size,omitempty"`
	PlainSHA256 string `json:"plain_sha256,omitempty"`
	// Data holds a small file's bytes; the others are read with BackupRead.
	Data []byte `json:"data,omitempty"`
}

// BackupResult is what the CLI reports at the end of a backup, for the
// audit log.
type BackupResult struct {
	Target         string `json:"target"`
	Backup         uint64 `json:"backup"` // the manifest's seq; 0 if none was written
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
	Files          int    `json:"files"`
	Copied         int64  `json:"copied_bytes"`
	Reused         int64  `json:"reused_bytes"`
	Error          string `json:"error,omitempty"`
}

// backupIdle ends a backup session that nobody read from for this long
// (the CLI died): its snapshot holds a catalog read transaction and files.
const backupIdle = 15 * time.Minute

// backupSession is one backup in progress on the archive's side.
type backupSession struct {
	snap    *BackupSnapshot
	sn      *store.Snapshot
	catalog *os.File // the catalog copy, removed at the end
	timer   *time.Timer
}

// backups are the archive's backup sessions.
type backups struct {
	mu       sync.Mutex
	sessions map[string]*backupSession
	last     time.Time // the last backup that completed
	// testHook, if set, runs between the catalog snapshot and the
	// checkpoint (tests: what happens in between).
	testHook func()
}

// File names in the archive directory that a backup takes besides the
// catalog, the segments and the audit log files.
var (
	backupPlain   = []string{"archive.json", "audit/signing.pub"}
	backupSecrets = []string{"digest.key", "audit/signing.key", "tls/key.pem", "tls/cert.pem"}
)

// BackupBegin takes a snapshot for a backup and opens a session that
// serves its bytes ([Archive.BackupRead]) until [Archive.BackupEnd], or
// until nobody read from it for 15 minutes. The catalog is read in one
// transaction first, then a checkpoint is written, so the copied audit log
// holds at least every entry the catalog's state depends on (the log is
// written before the catalog commits what it records); restore reconciles
// the entries beyond it (docs/format.md, "Backup target").
func (a *Archive) BackupBegin(ctx context.Context) (*BackupSnapshot, error) {
	info := a.store.Info()
	var rnd [16]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand never fails
	id := hex.EncodeToString(rnd[:])
	a.removeStaleCatalogCopies()
	// The catalog is copied to a local file first: its read transaction
	// lasts as long as the copy, and a commit that must grow the catalog
	// waits for it, so it must not wait for a slow target.
	catPath := filepath.Join(a.dir, catalogCopyPrefix+id)
	cat, err := os.OpenFile(catPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	drop := func() { cat.Close(); os.Remove(catPath) }
	headAtSnapshot, _ := a.audit.Head()
	sn, err := a.store.Snapshot(cat)
	if err != nil {
		drop()
		return nil, fmt.Errorf("backup: %w", err)
	}
	if a.backups.testHook != nil {
		a.backups.testHook()
	}
	snap, err := a.describeBackup(ctx, sn, info)
	if err != nil {
		_ = sn.Close() // the error above is the one to report
		drop()
		return nil, fmt.Errorf("backup: %w", err)
	}
	snap.ID, snap.AuditSeq = id, headAtSnapshot
	s := &backupSession{snap: snap, sn: sn, catalog: cat}
	s.timer = time.AfterFunc(backupIdle, func() {
		if err := a.endBackup(context.WithoutCancel(ctx), id, BackupResult{Error: "abandoned: nothing read for " + backupIdle.String()}); err != nil {
			a.log.Error("backup: end an abandoned session", "err", err)
		}
	})
	a.backups.mu.Lock()
	if a.backups.sessions == nil {
		a.backups.sessions = make(map[string]*backupSession)
	}
	a.backups.sessions[id] = s
	a.backups.mu.Unlock()
	return snap, nil
}

// catalogCopyPrefix names the catalog copies of backups in progress:
// DIR/catalog.db.backup-ID, removed when the backup ends.
const catalogCopyPrefix = "catalog.db.backup-"

// removeStaleCatalogCopies removes the catalog copies of backups that no
// session serves (left by a daemon that died during a backup).
func (a *Archive) removeStaleCatalogCopies() {
	names, _ := filepath.Glob(filepath.Join(a.dir, catalogCopyPrefix+"*"))
	a.backups.mu.Lock()
	defer a.backups.mu.Unlock()
	for _, n := range names {
		if a.backups.sessions[strings.TrimPrefix(filepath.Base(n), catalogCopyPrefix)] == nil {
			if err := os.Remove(n); err != nil {
				a.log.Warn("backup: remove a stale catalog copy", "file", n, "err", err)
			}
		}
	}
}

// describeBackup lists what the snapshot sn and a fresh checkpoint hold.
func (a *Archive) describeBackup(ctx context.Context, sn *store.Snapshot, info store.ArchiveInfo) (*BackupSnapshot, error) {
	cp, err := a.audit.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	text, err := cp.MarshalText()
	if err != nil {
		return nil, err
	}
	snap := &BackupSnapshot{Archive: info.ID, Recipients: info.Recipients, Checkpoint: string(text)}
	snap.Files = append(snap.Files, BackupFile{Path: "catalog.db", Mode: 0o600, Size: sn.CatalogSize()})
	for _, si := range sn.Segments() {
		f := BackupFile{Path: "segments/" + si.FileName(), Mode: 0o600, Size: si.Size, Grows: true}
		if si.State == store.SegmentSealed {
			f.Mode, f.SHA256, f.Final = 0o444, hex.EncodeToString(si.SHA256[:]), true
		}
		snap.Files = append(snap.Files, f)
	}
	// The log up to and including the checkpoint entry (seq cp.Seq+1).
	exts, err := audit.Extents(auditDir(a.dir), cp.Seq+1)
	if err != nil {
		return nil, err
	}
	for _, e := range exts {
		f := BackupFile{Path: "audit/" + e.Name, Mode: 0o440, Size: e.Size, Grows: true, Final: !e.Last}
		if e.Last {
			f.Mode = 0o640
		}
		snap.Files = append(snap.Files, f)
	}
	for _, p := range backupPlain {
		b, err := os.ReadFile(filepath.Join(a.dir, filepath.FromSlash(p)))
		if err != nil {
			return nil, err
		}
		mode := fs.FileMode(0o644)
		snap.Files = append(snap.Files, BackupFile{Path: p, Mode: mode, Size: int64(len(b)), Data: b})
	}
	recips, err := store.ParseRecipients(info.Recipients)
	if err != nil {
		return nil, err
	}
	for _, p := range backupSecrets {
		b, err := os.ReadFile(filepath.Join(a.dir, filepath.FromSlash(p)))
		if errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(p, "tls/") {
			continue // a configured certificate lives elsewhere
		}
		if err != nil {
			return nil, err
		}
		sealed, plain, err := offsite.SealSecret(recips, b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		snap.Files = append(snap.Files, BackupFile{Path: p, Mode: 0o600, Size: int64(len(sealed)), Data: sealed,
			PlainSize: plain.Size, PlainSHA256: plain.SHA256})
	}
	return snap, nil
}

// session returns backup session id and keeps it from timing out.
func (a *Archive) session(id string) (*backupSession, error) {
	a.backups.mu.Lock()
	s := a.backups.sessions[id]
	a.backups.mu.Unlock()
	if s == nil {
		return nil, notFound("backup session %q: no such session (it ended, or timed out after %v without a read)", id, backupIdle)
	}
	s.timer.Reset(backupIdle)
	return s, nil
}

// BackupRead returns n bytes from offset off of file path of backup session
// id.
func (a *Archive) BackupRead(ctx context.Context, id, path string, off, n int64) (io.ReadCloser, error) {
	s, err := a.session(id)
	if err != nil {
		return nil, err
	}
	var f *BackupFile
	for i := range s.snap.Files {
		if s.snap.Files[i].Path == path {
			f = &s.snap.Files[i]
		}
	}
	if f == nil {
		return nil, notFound("backup session %s: no file %q", id, path)
	}
	if off < 0 || n < 0 || off+n > f.Size {
		return nil, invalid("backup %s: bytes %d+%d beyond its %d", path, off, n, f.Size)
	}
	switch {
	case f.Data != nil:
		return io.NopCloser(bytes.NewReader(f.Data[off : off+n])), nil
	case path == "catalog.db":
		return io.NopCloser(io.NewSectionReader(s.catalog, off, n)), nil
	case strings.HasPrefix(path, "segments/"):
		seq, ok := segmentSeq(path)
		if !ok {
			return nil, notFound("backup: %s is not a segment", path)
		}
		r, err := s.sn.Segment(seq)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(io.NewSectionReader(r, off, n)), nil
	default: // an audit log file: append-only, so its first Size bytes stay
		fh, err := os.Open(filepath.Join(a.dir, filepath.FromSlash(path)))
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		return struct {
			io.Reader
			io.Closer
		}{io.NewSectionReader(fh, off, n), fh}, nil
	}
}

// segmentSeq reads the sequence number of a segment file's path.
func segmentSeq(path string) (store.SegmentSeq, bool) {
	var seq uint32
	name := strings.TrimPrefix(path, "segments/")
	if len(name) < 12 {
		return 0, false
	}
	if _, err := fmt.Sscanf(name[:8], "%08d", &seq); err != nil {
		return 0, false
	}
	return store.SegmentSeq(seq), true
}

// BackupEnd ends backup session id and audits the backup (a `backup`
// entry with r's facts).
func (a *Archive) BackupEnd(ctx context.Context, id string, r BackupResult) error {
	if _, err := a.session(id); err != nil {
		return err
	}
	return a.endBackup(ctx, id, r)
}

func (a *Archive) endBackup(ctx context.Context, id string, r BackupResult) error {
	a.backups.mu.Lock()
	s := a.backups.sessions[id]
	delete(a.backups.sessions, id)
	if s != nil && r.Error == "" && r.Backup != 0 {
		a.backups.last = a.opts.Now()
	}
	a.backups.mu.Unlock()
	if s == nil {
		return nil // ended meanwhile (timed out, closed)
	}
	s.timer.Stop()
	if err := s.sn.Close(); err != nil {
		a.log.Warn("backup: close the snapshot", "err", err)
	}
	s.catalog.Close()
	if err := os.Remove(s.catalog.Name()); err != nil {
		a.log.Warn("backup: remove the catalog copy", "err", err)
	}
	if r.Error == "" && r.Backup != 0 {
		if err := a.saveMonitor(); err != nil {
			a.log.Warn("backup: save the time of the last backup", "err", err)
		}
	}
	cp, _ := audit.ParseCheckpoint([]byte(s.snap.Checkpoint)) // ours, from BackupBegin
	return a.logEvent(ctx, audit.TypeBackup, backupFields{Target: r.Target, Backup: r.Backup, ManifestSHA256: r.ManifestSHA256,
		Checkpoint: cp.Seq + 1, Files: r.Files, Copied: r.Copied, Reused: r.Reused, Error: r.Error})
}

// endBackups ends every backup session (the archive closes).
func (a *Archive) endBackups() {
	a.backups.mu.Lock()
	var ids []string
	for id := range a.backups.sessions {
		ids = append(ids, id)
	}
	a.backups.mu.Unlock()
	for _, id := range ids {
		if err := a.endBackup(WithActor(context.Background(), "sealmail"), id, BackupResult{Error: "the archive closed"}); err != nil {
			a.log.Warn("backup: end a session at close", "err", err)
		}
	}
}

// LastBackup returns when the last backup through this archive completed
// (zero if none since it was opened).
func (a *Archive) LastBackup() time.Time {
	a.backups.mu.Lock()
	defer a.backups.mu.Unlock()
	return a.backups.last
}

// BackupSource is what [Backup] needs: an [*Archive], or the daemon
// through the control socket.
type BackupSource interface {
	BackupBegin(ctx context.Context) (*BackupSnapshot, error)
	BackupRead(ctx context.Context, id, path string, off, n int64) (io.ReadCloser, error)
	BackupEnd(ctx context.Context, id string, r BackupResult) error
}

// BackupOptions configures [Backup].
type BackupOptions struct {
	Program string // what writes the manifest, e.g. "sealmail 1.2.0"
	FS      vfs.FS // the file system the target is written through; nil: the real one
}

// BackupReport says what [Backup] did.
type BackupReport struct {
	Target         string    `json:"target"`
	Backup         uint64    `json:"backup"` // the new manifest's seq
	Created        time.Time `json:"created"`
	ManifestSHA256 string    `json:"manifest_sha256"`
	Files          int       `json:"files"`
	Copied         int64     `json:"copied_bytes"`
	Reused         int64     `json:"reused_bytes"`
	Checked        int64     `json:"checked_bytes"`
	Removed        int       `json:"removed_objects"`
	CheckpointSeq  uint64    `json:"checkpoint_seq"`
	Warnings       []string  `json:"warnings"`
}

// Backup writes a backup of the archive that src serves to the directory
// target (docs/operations.md, "Backup and restore"), incrementally: what
// the target's newest backup holds already is not copied again. It runs in
// the CLI; the archive's side only serves bytes. The outcome is audited by
// the archive, success or failure.
func Backup(ctx context.Context, src BackupSource, target string, o BackupOptions) (rep *BackupReport, err error) {
	t, err := offsite.OpenDir(target, o.FS)
	if err != nil {
		return nil, invalid("%v", err)
	}
	snap, err := src.BackupBegin(ctx)
	if err != nil {
		return nil, err
	}
	result := BackupResult{Target: target}
	defer func() {
		if result.Error == "" && err != nil {
			result.Error = err.Error()
		}
		if eerr := src.BackupEnd(context.WithoutCancel(ctx), snap.ID, result); eerr != nil && err == nil {
			err = fmt.Errorf("backup: the backup is complete, but auditing it failed: %w", eerr)
		}
	}()
	sources := make([]offsite.Source, len(snap.Files))
	for i, f := range snap.Files {
		s := offsite.Source{Path: f.Path, Mode: f.Mode, Size: f.Size, SHA256: f.SHA256, Final: f.Final, Grows: f.Grows}
		if f.PlainSHA256 != "" {
			s.Encrypted = &offsite.Plain{Size: f.PlainSize, SHA256: f.PlainSHA256}
		}
		if f.Data != nil {
			data := f.Data
			s.Open = func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(data[off : off+n])), nil
			}
		} else {
			s.Open = func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
				return src.BackupRead(ctx, snap.ID, f.Path, off, n)
			}
		}
		sources[i] = s
	}
	res, err := offsite.Backup(ctx, t, offsite.Options{Archive: snap.Archive, Checkpoint: snap.Checkpoint,
		AuditSeq: snap.AuditSeq, Recipients: snap.Recipients, Program: o.Program}, sources)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	m := res.Manifest
	result = BackupResult{Target: target, Backup: m.Seq, ManifestSHA256: res.ManifestSHA256, Files: len(m.Files),
		Copied: res.Copied, Reused: res.Reused}
	cp, _ := audit.ParseCheckpoint([]byte(snap.Checkpoint)) // the archive's own, from BackupBegin
	return &BackupReport{Target: target, Backup: m.Seq, Created: m.Created, ManifestSHA256: res.ManifestSHA256,
		Files: len(m.Files), Copied: res.Copied, Reused: res.Reused, Checked: res.Checked, Removed: res.Removed,
		CheckpointSeq: cp.Seq, Warnings: append([]string{}, res.Warnings...)}, nil
}
