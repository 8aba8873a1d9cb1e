// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/offsite"
	"github.com/sealmail/sealmail/store"
	"github.com/sealmail/sealmail/vfs"
)

// OffsiteVerifyReport is what [Archive.VerifyOffsite] found.
type OffsiteVerifyReport struct {
	Bucket  string `json:"bucket"`
	Objects int    `json:"objects"` // checked and found right
	// Pending are objects the archive has that no sync has copied yet (a
	// segment sealed since the last sync).
	Pending  []string `json:"pending"`
	Problems []string `json:"problems"`
}

// OK reports whether the bucket holds everything it should, as it should.
func (r *OffsiteVerifyReport) OK() bool { return len(r.Problems) == 0 }

// VerifyOffsite checks the bucket against the catalog and the audit log:
// every sealed segment the catalog names, every audit file up to the last
// checkpoint copied, archive.json, the audit key and the sealed secrets
// must be there as a version whose SHA-256 (as the server computed it on
// upload) is the catalog's or the local file's, locked in COMPLIANCE mode
// at least until its messages' latest retain-until (and still locked
// where they must be kept without an end). It is audited.
func (a *Archive) VerifyOffsite(ctx context.Context, o OffsiteOptions) (rep *OffsiteVerifyReport, err error) {
	rep = &OffsiteVerifyReport{Pending: []string{}, Problems: []string{}}
	defer func() {
		f := offsiteFields{Op: "verify", Bucket: rep.Bucket, Objects: rep.Objects, Problems: rep.Problems}
		if err != nil {
			f.Error = err.Error()
		}
		if aerr := a.logEvent(context.WithoutCancel(ctx), audit.TypeOffsite, f); aerr != nil && err == nil {
			err = aerr
		}
	}()
	b, err := offsite.OpenBucket(ctx, o.Bucket)
	if err != nil {
		return rep, err
	}
	rep.Bucket = b.String()
	st, err := offsite.LoadState(a.opts.FS, filepath.Join(a.dir, offsiteStateFile), a.store.Info().ID, b.String())
	if err != nil {
		return rep, err
	}
	head, _ := a.audit.Head()
	wants, err := a.offsiteWants(ctx, st, head, o.minLock(), nil)
	if err != nil {
		return rep, err
	}
	listed, err := b.List(ctx, "")
	if err != nil {
		return rep, err
	}
	versions := make(map[string][]offsite.ObjectVersion)
	for _, v := range listed {
		versions[v.Key] = append(versions[v.Key], v)
	}
	for _, w := range wants {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		vs := versions[w.Key]
		if len(vs) == 0 {
			if _, ok := st.Object(w.Key); !ok {
				rep.Pending = append(rep.Pending, w.Key)
			} else {
				rep.Problems = append(rep.Problems, w.Key+": missing from the bucket, though a sync put it there")
			}
			continue
		}
		var found *offsite.ObjectVersion
		for _, v := range slices.Backward(vs) {
			h, err := b.Head(ctx, w.Key, v.VersionID)
			if err != nil {
				return rep, err
			}
			if w.Any && h.SHA256 != "" || h.SHA256 == w.SHA256 && h.Size == w.Size {
				found = &h
				break
			}
		}
		switch {
		case found == nil:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: no version of its %d bytes with SHA-256 %s (%d other versions)", w.Key, w.Size, w.SHA256, len(vs)))
		case found.Mode != "COMPLIANCE":
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: version %s is not locked in COMPLIANCE mode (%q)", w.Key, found.VersionID, found.Mode))
		case found.RetainUntil.Before(w.Until.Truncate(time.Second)):
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: version %s is locked until %s, its messages need %s",
				w.Key, found.VersionID, found.RetainUntil.Format(time.RFC3339), w.Until.UTC().Format(time.RFC3339)))
		default:
			rep.Objects++
		}
	}
	return rep, nil
}

// RestoreOffsite rebuilds an archive in dir (missing, empty, or holding
// an unfinished restore of the same archive) from the bucket alone: the
// audit log (rotated files whole, the last from its parts), the audit key,
// archive.json, the secrets (decrypted with the identities), and each
// sealed segment in the version whose SHA-256 the restored audit log
// vouches for. The catalog is rebuilt from them ([Recover]); then the
// archive is opened once as after a directory restore (the audit entries of
// records the bucket does not hold, those of the segment that was active,
// are recorded as not in the restore; deletions the log records are made
// again) and the restore is audited. Interrupted, it leaves
// restore.incomplete, and running it again finishes it.
func RestoreOffsite(ctx context.Context, o OffsiteOptions, dir string, ro RestoreOptions) (*RestoreReport, error) {
	fsys := vfs.Or(ro.FS)
	b, err := offsite.OpenBucket(ctx, o.Bucket)
	if err != nil {
		return nil, err
	}
	listed, err := b.List(ctx, "")
	if err != nil {
		return nil, err
	}
	latest := make(map[string]offsite.ObjectVersion)
	for _, v := range listed {
		if p, ok := latest[v.Key]; !ok || v.Latest || !p.Latest {
			latest[v.Key] = v
		}
	}
	if _, ok := latest["archive.json"]; !ok {
		return nil, invalid("restore: %s holds no archive (no archive.json)", b)
	}
	infoBytes, err := fetch(ctx, b, latest["archive.json"], 1<<20)
	if err != nil {
		return nil, err
	}
	var info store.ArchiveInfo
	if err := json.Unmarshal(infoBytes, &info); err != nil || info.ID == "" {
		return nil, fmt.Errorf("restore: archive.json in %s: %v", b, err)
	}
	if err := prepareRestore(dir, restoreMarkerContent{Archive: info.ID}, fsys); err != nil {
		return nil, err
	}
	rep := &RestoreReport{Archive: info.ID, Dir: dir, NotInBackup: []uint64{}, Reapplied: []uint64{}, Warnings: []string{}}
	put := func(path string, data []byte, mode fs.FileMode) error {
		p := filepath.Join(dir, filepath.FromSlash(path))
		if err := fsys.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := vfs.WriteFile(fsys, p, data, mode); err != nil {
			return fmt.Errorf("restore %s: %w", path, err)
		}
		rep.Files++
		rep.Bytes += int64(len(data))
		return nil
	}
	pub, ok := latest["audit/signing.pub"]
	if !ok {
		return nil, fmt.Errorf("restore: %s holds no audit/signing.pub", b)
	}
	data, err := fetch(ctx, b, pub, 1<<20)
	if err != nil {
		return nil, err
	}
	if err := put("audit/signing.pub", data, 0o644); err != nil {
		return nil, err
	}
	for _, p := range offsiteSecrets {
		v, ok := latest["secrets/"+p+".age"]
		if !ok {
			return nil, fmt.Errorf("restore: %s holds no secrets/%s.age", b, p)
		}
		ct, err := fetch(ctx, b, v, 2<<20)
		if err != nil {
			return nil, err
		}
		plain, err := openSealed(ct, ro.Identities)
		if err != nil {
			return nil, fmt.Errorf("restore %s: %w", p, err)
		}
		if err := put(p, plain, 0o600); err != nil {
			return nil, err
		}
	}
	if err := restoreAuditLog(ctx, b, latest, dir, fsys, rep); err != nil {
		return nil, err
	}
	cpEntry, created, err := lastCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	rep.Created = created
	facts, err := recoverFacts(ctx, dir)
	if err != nil {
		return nil, err
	}
	if err := fsys.MkdirAll(filepath.Join(dir, "segments"), 0o700); err != nil {
		return nil, err
	}
	if err := restoreSegments(ctx, b, listed, facts.Sealed, dir, fsys, rep); err != nil {
		return nil, err
	}
	if err := put("archive.json", infoBytes, 0o644); err != nil {
		return nil, err
	}
	opts := Options{FS: fsys, Logger: ro.Logger, restoring: true}
	rr, err := Recover(WithActor(ctx, "restore"), dir, opts)
	if err != nil {
		return nil, fmt.Errorf("restore: rebuild the catalog: %w", err)
	}
	for _, f := range rr.Findings {
		rep.Warnings = append(rep.Warnings, "rebuilding the catalog: "+f)
	}
	src := restoreSource{From: b.String(), Created: created, AuditSeq: cpEntry}
	if err := finishRestore(ctx, dir, opts, src, cpEntry, rep); err != nil {
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

// fetch reads a small version whole and checks it against the SHA-256
// the server computed on upload.
func fetch(ctx context.Context, b *offsite.Bucket, v offsite.ObjectVersion, limit int64) ([]byte, error) {
	h, err := b.Head(ctx, v.Key, v.VersionID)
	if err != nil {
		return nil, err
	}
	if h.Size > limit {
		return nil, fmt.Errorf("restore: %s: %d bytes, at most %d", v.Key, h.Size, limit)
	}
	r, err := b.Get(ctx, v.Key, h.VersionID)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("restore: %s: %w", v.Key, err)
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != h.Size || hex.EncodeToString(sum[:]) != h.SHA256 {
		return nil, fmt.Errorf("restore: %s: read %d bytes with SHA-256 %x, the bucket says %d, %s: %w", v.Key, len(data), sum, h.Size, h.SHA256, offsite.ErrMismatch)
	}
	return data, nil
}

// fetchFile writes a version to path (PATH.tmp, checked against want, or
// the server's SHA-256 if want is empty, fsync'd, mode, renamed, directory
// fsync'd).
func fetchFile(ctx context.Context, b *offsite.Bucket, v offsite.ObjectVersion, want string, path string, mode fs.FileMode, fsys vfs.FS) (int64, error) {
	r, err := b.Get(ctx, v.Key, v.VersionID)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	h := sha256.New()
	n, err := vfs.WriteFrom(ctx, fsys, path, io.TeeReader(r, h), mode, func(n int64) error {
		if n != v.Size || hex.EncodeToString(h.Sum(nil)) != want {
			return fmt.Errorf("%s: read %d bytes with SHA-256 %x, want %d bytes, %s: %w", v.Key, n, h.Sum(nil), v.Size, want, offsite.ErrMismatch)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("restore %s: %w", v.Key, err)
	}
	return n, nil
}

// openSealed decrypts a secret sealed to the archive's recipients.
func openSealed(ct []byte, ids []age.Identity) ([]byte, error) {
	if len(ids) == 0 {
		return nil, invalid("the bucket's secrets are encrypted: give the archive's identity (--identity FILE)")
	}
	r, err := age.Decrypt(bytes.NewReader(ct), ids...)
	var nm *age.NoIdentityMatchError
	if errors.As(err, &nm) {
		return nil, invalid("none of the identities opens the bucket's secrets (--identity: the archive's identity)")
	}
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(r, 1<<20))
}

// restoreAuditLog writes every audit file: a rotated one from its whole
// object, the last one from its parts, which must follow on from 0.
func restoreAuditLog(ctx context.Context, b *offsite.Bucket, latest map[string]offsite.ObjectVersion, dir string, fsys vfs.FS, rep *RestoreReport) error {
	type part struct {
		off int64
		v   offsite.ObjectVersion
	}
	files := make(map[string][]part) // name → parts; a whole file is its part at -1
	for key, v := range latest {
		name, ok := strings.CutPrefix(key, "audit/audit-")
		if !ok || !managedKey(key) {
			continue
		}
		name = "audit-" + name
		base, off, hasOff := strings.Cut(name, ".jsonl.")
		if !hasOff {
			files[name] = append(files[name], part{-1, v})
			continue
		}
		n, err := strconv.ParseInt(off, 10, 64)
		if err != nil {
			continue
		}
		files[base+".jsonl"] = append(files[base+".jsonl"], part{n, v})
	}
	if len(files) == 0 {
		return fmt.Errorf("restore: %s holds no audit log", b)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, name := range names {
		parts := files[name]
		slices.SortFunc(parts, func(x, y part) int { return int(x.off - y.off) })
		mode := fs.FileMode(0o440)
		if i == len(names)-1 {
			mode = 0o640
		}
		p := filepath.Join(dir, "audit", name)
		if parts[0].off == -1 { // the whole file
			h, err := b.Head(ctx, parts[0].v.Key, parts[0].v.VersionID)
			if err != nil {
				return err
			}
			n, err := fetchFile(ctx, b, h, h.SHA256, p, mode, fsys)
			if err != nil {
				return err
			}
			rep.Files++
			rep.Bytes += n
			continue
		}
		var buf bytes.Buffer
		for _, q := range parts {
			if q.off != int64(buf.Len()) {
				return fmt.Errorf("restore: %s: the bucket's parts end at %d, the next starts at %d: a part is missing", name, buf.Len(), q.off)
			}
			data, err := fetch(ctx, b, q.v, 4*audit.DefaultMaxFileBytes)
			if err != nil {
				return err
			}
			buf.Write(data)
		}
		if err := vfs.WriteFile(fsys, p, buf.Bytes(), mode); err != nil {
			return fmt.Errorf("restore %s: %w", name, err)
		}
		rep.Files++
		rep.Bytes += int64(buf.Len())
	}
	return nil
}

// lastCheckpoint returns the restored log's last entry, which must be a
// checkpoint (every sync copies the log up to one), and its time.
func lastCheckpoint(dir string) (uint64, time.Time, error) {
	var last audit.Entry
	err := audit.ReadBack(auditDir(dir), func(e audit.Entry) bool { last = e; return false })
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("restore: read the restored audit log: %w", err)
	}
	if last.Type != audit.TypeCheckpoint {
		return 0, time.Time{}, fmt.Errorf("restore: the restored audit log ends with entry %d of type %s, not a checkpoint", last.Seq, last.Type)
	}
	return last.Seq, last.Time, nil
}

// restoreSegments writes, for every segment the audit log names, the
// version whose SHA-256 is the one it audited last (at sealing or the last
// compaction).
func restoreSegments(ctx context.Context, b *offsite.Bucket, listed []offsite.ObjectVersion, sealed map[store.SegmentSeq]store.SealFact, dir string, fsys vfs.FS, rep *RestoreReport) error {
	bySeq := make(map[store.SegmentSeq][]offsite.ObjectVersion)
	for _, v := range listed {
		name, ok := strings.CutPrefix(v.Key, "segments/")
		if !ok || !managedKey(v.Key) {
			continue
		}
		seq, err := strconv.ParseUint(name[:8], 10, 32)
		if err != nil {
			continue
		}
		bySeq[store.SegmentSeq(seq)] = append(bySeq[store.SegmentSeq(seq)], v)
	}
	seqs := make([]store.SegmentSeq, 0, len(sealed))
	for s := range sealed {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		sum := sealed[seq].SHA256
		want := hex.EncodeToString(sum[:])
		var found *offsite.ObjectVersion
		for _, v := range slices.Backward(bySeq[seq]) {
			h, err := b.Head(ctx, v.Key, v.VersionID)
			if err != nil {
				return err
			}
			if h.SHA256 == want {
				found = &h
				break
			}
		}
		if found == nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("segment %s: the bucket holds no version with the SHA-256 %s the audit log records last: "+
				"its messages are not restored (a sync after its sealing or compaction had not finished)", seq, want))
			continue
		}
		n, err := fetchFile(ctx, b, *found, want, filepath.Join(dir, "segments", strings.TrimPrefix(found.Key, "segments/")), 0o444, fsys)
		if err != nil {
			return err
		}
		rep.Files++
		rep.Bytes += n
	}
	return nil
}
