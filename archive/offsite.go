// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/offsite"
	"github.com/sealmail/sealmail/store"
)

// The offsite copy (docs/offsite.md): every sealed segment and the audit
// log, with its checkpoints, go to an S3 bucket with Object Lock, each
// object version locked in COMPLIANCE mode for as long as the messages it
// holds must be kept. The archive decides what must be there and for how
// long ([Archive.OffsiteSync] builds the list); package offsite talks to
// the bucket and keeps DIR/offsite.json, its record of what it put there.

// OffsiteBucket says which bucket the offsite copy goes to and how to
// reach it (package offsite's options, for callers above archive).
type OffsiteBucket = offsite.BucketOptions

// OffsiteOptions configures the offsite copy.
type OffsiteOptions struct {
	Bucket OffsiteBucket
	// MinLock is the shortest lock of any version, and how far ahead the
	// lock of what must be kept without an end (a held message's segment,
	// one kept forever, the audit log) is kept: renewed once less than half
	// of it remains. Default 30 days.
	MinLock time.Duration
	// Rate bounds the bytes uploaded per second (0: no bound).
	Rate int64
}

func (o *OffsiteOptions) minLock() time.Duration {
	if o.MinLock <= 0 {
		return 30 * 24 * time.Hour
	}
	return o.MinLock
}

// OffsiteReport says what one [Archive.OffsiteSync] did.
type OffsiteReport struct {
	Bucket string `json:"bucket"`
	offsite.SyncResult
	// Checkpoint is the checkpoint entry the copied audit log ends with.
	Checkpoint uint64 `json:"checkpoint"`
	Error      string `json:"error,omitempty"`
}

// OffsiteStatus is the offsite copy's state since the archive opened, for
// metrics.
type OffsiteStatus struct {
	LastSuccess   time.Time `json:"last_success"`
	LastError     string    `json:"last_error,omitempty"`
	Objects       int       `json:"objects"`
	Syncs         int64     `json:"syncs"`
	Failures      int64     `json:"failures"`
	Uploaded      int64     `json:"uploaded"`
	UploadedBytes int64     `json:"uploaded_bytes"`
	Extended      int64     `json:"extended"`
	Removed       int64     `json:"removed"`
}

// offsiteState is the archive's side of the offsite copy.
type offsiteState struct {
	run    sync.Mutex // one sync at a time
	mu     sync.Mutex
	status OffsiteStatus
}

// OffsiteStatusNow returns the offsite copy's state.
func (a *Archive) OffsiteStatusNow() OffsiteStatus {
	a.offsite.mu.Lock()
	defer a.offsite.mu.Unlock()
	return a.offsite.status
}

// offsiteStateFile is the local record of the offsite copy.
const offsiteStateFile = "offsite.json"

// OffsiteSync brings the offsite copy up to date: a checkpoint is written;
// every sealed segment the catalog names is uploaded once (its SHA-256
// checked by the server and read back against the catalog's), the audit
// log up to that checkpoint too (rotated files whole, the last one in
// parts as it grows), with archive.json, the audit key and, sealed to the
// archive's recipients, the digest and signing keys; every lock is
// extended to what the messages now need (retention, legal holds); and the
// versions nobody needs any more (older generations of compacted segments,
// audit parts a whole file replaced) are removed once their lock has
// ended. It runs one at a time, is safe to interrupt at any point, and is
// audited (an offsite entry), failed runs too.
func (a *Archive) OffsiteSync(ctx context.Context, o OffsiteOptions) (rep *OffsiteReport, err error) {
	if !a.offsite.run.TryLock() {
		return nil, invalid("offsite: a sync is running already: try again when it has finished")
	}
	defer a.offsite.run.Unlock()
	rep = &OffsiteReport{}
	defer func() {
		if err != nil {
			rep.Error = err.Error()
		}
		a.offsite.mu.Lock()
		s := &a.offsite.status
		s.Syncs++
		s.Uploaded += int64(rep.Uploaded)
		s.UploadedBytes += rep.UploadedBytes
		s.Extended += int64(rep.Extended)
		s.Removed += int64(rep.Removed)
		if err != nil {
			s.Failures++
			s.LastError = rep.Error
		} else {
			s.LastSuccess, s.LastError, s.Objects = a.opts.Now(), "", rep.Objects
		}
		a.offsite.mu.Unlock()
		if aerr := a.logEvent(context.WithoutCancel(ctx), audit.TypeOffsite, offsiteFields{Op: "sync", Bucket: rep.Bucket,
			Checkpoint: rep.Checkpoint, Objects: rep.Objects, Uploaded: rep.Uploaded, UploadedBytes: rep.UploadedBytes,
			Adopted: rep.Adopted, Extended: rep.Extended, Removed: rep.Removed, Retired: rep.Retired, Error: rep.Error}); aerr != nil && err == nil {
			err = fmt.Errorf("offsite: the sync is done, but auditing it failed: %w", aerr)
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
	// The checkpoint first, then the segment table: the copied log then
	// vouches for at most what the copied segments hold.
	cp, err := a.audit.Checkpoint(ctx)
	if err != nil {
		return rep, err
	}
	rep.Checkpoint = cp.Seq + 1
	listed, err := b.List(ctx, "")
	if err != nil {
		return rep, err
	}
	wants, err := a.offsiteWants(ctx, st, cp.Seq+1, o.minLock(), &bucketParts{b: b, listed: listed})
	if err != nil {
		return rep, err
	}
	res, err := offsite.Sync(ctx, b, st, wants, offsite.SyncOptions{StatePath: filepath.Join(a.dir, offsiteStateFile), FS: a.opts.FS,
		Rate: o.Rate, Managed: managedKey, Now: a.opts.Now, Logger: a.log, Listed: listed})
	rep.SyncResult = *res
	return rep, err
}

// managedKeyRE matches the object names an archive writes below its prefix.
var managedKeyRE = regexp.MustCompile(`^(archive\.json|audit/signing\.pub|secrets/(digest\.key|audit/signing\.key)\.age|` +
	`segments/[0-9]{8}(\.g[0-9]+)?\.seg|audit/audit-[0-9]{6,}\.jsonl(\.[0-9]+)?)$`)

func managedKey(key string) bool { return managedKeyRE.MatchString(key) }

// offsiteSecrets are the secrets the copy holds sealed to the archive's
// recipients: what a restore from the bucket alone needs besides the
// segments and the log.
var offsiteSecrets = []string{"digest.key", "audit/signing.key"}

// offsiteWants lists what the bucket must hold, with the lock each needs:
// the audit log up to entry upTo, the sealed segments, the small files
// and the secrets. With bp nil (verify) nothing is sealed, the audit
// log's part not yet copied is left out, and Until is what the lock must
// reach at least now (not the renewal sync aims at).
func (a *Archive) offsiteWants(ctx context.Context, st *offsite.State, upTo uint64, minLock time.Duration, bp *bucketParts) ([]offsite.Want, error) {
	now := a.opts.Now()
	upload := bp != nil
	// rolling is the lock of what is kept without an end: at least minLock
	// ahead, renewed when less than half of it remains.
	// For verify (upload false) it must only still hold.
	rolling := func(key string) time.Time {
		if !upload {
			return now
		}
		if o, ok := st.Object(key); ok && o.RetainUntil.After(now.Add(minLock/2)) {
			return o.RetainUntil
		}
		return now.Add(minLock)
	}
	segs, err := a.store.Segments()
	if err != nil {
		return nil, err
	}
	type segWant struct {
		si  store.SegmentInfo
		key string
		ids []offsite.IDRange
	}
	var sw []segWant
	for _, si := range segs {
		if si.State != store.SegmentSealed {
			continue
		}
		key := "segments/" + si.FileName()
		sum := hex.EncodeToString(si.SHA256[:])
		w := segWant{si: si, key: key}
		if o, ok := st.Object(key); ok && o.SHA256 == sum && o.IDs != nil {
			w.ids = o.IDs
		} else if w.ids, err = segmentIDs(filepath.Join(a.dir, "segments", si.FileName())); err != nil {
			return nil, err
		}
		sw = append(sw, w)
	}
	ranges := make([][]offsite.IDRange, len(sw))
	for i, w := range sw {
		ranges[i] = w.ids
	}
	locks, latest, err := a.retentionOf(ranges)
	if err != nil {
		return nil, err
	}
	var wants []offsite.Want
	// The log and the small files are kept as long as the archive is, and
	// at least as long as the longest retention.
	keep := func(key string) time.Time {
		u := rolling(key)
		if latest.After(u) {
			return latest
		}
		return u
	}
	exts, err := audit.Extents(auditDir(a.dir), upTo)
	if err != nil {
		return nil, err
	}
	for _, e := range exts {
		ws, err := a.auditWants(ctx, st, e, keep, bp)
		if err != nil {
			return nil, err
		}
		wants = append(wants, ws...)
	}
	for i, w := range sw {
		until := locks[i].until
		if locks[i].indefinite {
			until = later(until, rolling(w.key))
		}
		if _, ok := st.Object(w.key); !ok && upload {
			until = later(until, now.Add(minLock))
		}
		path := filepath.Join(a.dir, "segments", w.si.FileName())
		wants = append(wants, offsite.Want{Key: w.key, Size: w.si.Size, SHA256: hex.EncodeToString(w.si.SHA256[:]), Until: until, IDs: w.ids,
			Open: func(context.Context) (io.ReadSeekCloser, error) { return openSection(path, 0, w.si.Size) }})
	}
	for _, p := range []string{"archive.json", "audit/signing.pub"} {
		b, err := os.ReadFile(filepath.Join(a.dir, filepath.FromSlash(p)))
		if err != nil {
			return nil, err
		}
		wants = append(wants, bytesWant(p, b, keep(p)))
	}
	recips, err := store.ParseRecipients(a.store.Info().Recipients)
	if err != nil {
		return nil, err
	}
	for _, p := range offsiteSecrets {
		key := "secrets/" + p + ".age"
		if o, ok := st.Object(key); ok {
			wants = append(wants, offsite.Want{Key: key, Size: o.Size, SHA256: o.SHA256, Until: keep(key), Any: true})
			continue
		}
		if !upload {
			wants = append(wants, offsite.Want{Key: key, Until: keep(key), Any: true})
			continue
		}
		plain, err := os.ReadFile(filepath.Join(a.dir, filepath.FromSlash(p)))
		if err != nil {
			return nil, err
		}
		sealed, _, err := offsite.SealSecret(recips, plain)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		w := bytesWant(key, sealed, now.Add(minLock))
		w.Any = true
		wants = append(wants, w)
	}
	return wants, ctx.Err()
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// bucketParts finds the audit parts a sync cut short uploaded without
// recording them.
type bucketParts struct {
	b      *offsite.Bucket
	listed []offsite.ObjectVersion
}

// find returns the size and SHA-256 of a version of key in the bucket
// whose bytes are those of path from off (at most n of them).
func (bp *bucketParts) find(ctx context.Context, key, path string, off, n int64) (int64, string, bool, error) {
	for _, v := range slices.Backward(bp.listed) {
		if v.Key != key || v.Size <= 0 || v.Size > n {
			continue
		}
		h, err := bp.b.Head(ctx, v.Key, v.VersionID)
		if err != nil {
			return 0, "", false, err
		}
		sum, err := fileSHA256(path, off, h.Size)
		if err != nil {
			return 0, "", false, err
		}
		if sum == h.SHA256 && h.Mode == "COMPLIANCE" {
			return h.Size, sum, true, nil
		}
	}
	return 0, "", false, nil
}

// auditWants lists the objects of audit file e: a rotated file whole, the
// last one as the parts uploaded so far (recorded, or found in the bucket)
// plus one for what it gained.
func (a *Archive) auditWants(ctx context.Context, st *offsite.State, e audit.Extent, keep func(string) time.Time, bp *bucketParts) ([]offsite.Want, error) {
	upload := bp != nil
	path := filepath.Join(auditDir(a.dir), e.Name)
	key := "audit/" + e.Name
	part := func(off, n int64, sum string) offsite.Want {
		k := key
		if !(off == 0 && n == e.Size && !e.Last) {
			k = key + "." + strconv.FormatInt(off, 10)
		}
		return offsite.Want{Key: k, Size: n, SHA256: sum, Until: keep(k),
			Open: func(context.Context) (io.ReadSeekCloser, error) { return openSection(path, off, n) }}
	}
	if !e.Last {
		if o, ok := st.Object(key); ok && o.Size == e.Size {
			return []offsite.Want{part(0, e.Size, o.SHA256)}, nil
		}
		sum, err := fileSHA256(path, 0, e.Size)
		if err != nil {
			return nil, err
		}
		return []offsite.Want{part(0, e.Size, sum)}, nil
	}
	// The parts the state has, in order, as long as they follow on from 0
	// within the file.
	type p struct {
		off int64
		o   offsite.Object
	}
	var parts []p
	for _, o := range st.Objects {
		if s, ok := strings.CutPrefix(o.Key, key+"."); ok {
			if off, err := strconv.ParseInt(s, 10, 64); err == nil && strconv.FormatInt(off, 10) == s {
				parts = append(parts, p{off, o})
			}
		}
	}
	slices.SortFunc(parts, func(x, y p) int { return int(x.off - y.off) })
	var out []offsite.Want
	var end int64
	for _, q := range parts {
		if q.off != end || end+q.o.Size > e.Size {
			break
		}
		out = append(out, part(q.off, q.o.Size, q.o.SHA256))
		end += q.o.Size
	}
	for upload && end < e.Size {
		n, sum, ok, err := bp.find(ctx, key+"."+strconv.FormatInt(end, 10), path, end, e.Size-end)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		out = append(out, part(end, n, sum))
		end += n
	}
	if end < e.Size {
		if !upload {
			return out, nil // not copied yet: verify says how far the copy goes
		}
		sum, err := fileSHA256(path, end, e.Size-end)
		if err != nil {
			return nil, err
		}
		out = append(out, part(end, e.Size-end, sum))
	}
	return out, nil
}

// segLock is what a segment's messages need of its lock.
type segLock struct {
	until      time.Time // the latest retain-until of its live messages
	indefinite bool      // a live message held, kept forever or without a retain-until
}

// retentionOf returns, for each segment's id ranges, the lock its live
// messages need, and the latest retain-until of any live message. One
// pass over the catalog in id order, sweeping the ranges.
func (a *Archive) retentionOf(ranges [][]offsite.IDRange) ([]segLock, time.Time, error) {
	held, err := a.heldIDs()
	if err != nil {
		return nil, time.Time{}, err
	}
	type r struct {
		lo, hi uint64
		seg    int
	}
	var all []r
	for i, rs := range ranges {
		for _, x := range rs {
			all = append(all, r{x[0], x[1], i})
		}
	}
	slices.SortFunc(all, func(x, y r) int { return cmpU(x.lo, y.lo) })
	out := make([]segLock, len(ranges))
	var latest time.Time
	var active []r
	next := 0
	err = a.store.List(0, func(m *store.MessageInfo) (bool, error) {
		if m.State != store.StateLive {
			return true, nil
		}
		id := uint64(m.ID)
		for next < len(all) && all[next].lo <= id {
			active = append(active, all[next])
			next++
		}
		active = slices.DeleteFunc(active, func(x r) bool { return x.hi < id })
		indefinite := held[m.ID] || m.Forever || m.RetainUntil.IsZero()
		if !indefinite && m.RetainUntil.After(latest) {
			latest = m.RetainUntil
		}
		for _, x := range active {
			l := &out[x.seg]
			if indefinite {
				l.indefinite = true
			} else if m.RetainUntil.After(l.until) {
				l.until = m.RetainUntil
			}
		}
		return true, nil
	})
	return out, latest, err
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// heldIDs returns the messages an active hold covers.
func (a *Archive) heldIDs() (map[sealmail.MessageID]bool, error) {
	hs, err := a.loadHolds()
	if err != nil {
		return nil, err
	}
	out := make(map[sealmail.MessageID]bool)
	for _, h := range hs.Active() {
		if _, err := a.store.HoldMembers(h.Name, func(id sealmail.MessageID) error { out[id] = true; return nil }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// segmentIDs reads the message ids a segment's entries name from its
// clear record headers, as ranges.
func segmentIDs(path string) ([]offsite.IDRange, error) {
	var ids []uint64
	_, _, err := store.ScanFile(path, func(r store.ScannedRecord) error {
		for _, e := range r.Header.Entries {
			ids = append(ids, uint64(e.ID))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("offsite: read the ids of %s: %w", filepath.Base(path), err)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := []offsite.IDRange{}
	for _, id := range ids {
		if n := len(out); n > 0 && out[n-1][1]+1 == id {
			out[n-1][1] = id
			continue
		}
		out = append(out, offsite.IDRange{id, id})
	}
	return out, nil
}

// bytesWant is a small object held in memory.
func bytesWant(key string, b []byte, until time.Time) offsite.Want {
	sum := sha256.Sum256(b)
	return offsite.Want{Key: key, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Until: until,
		Open: func(context.Context) (io.ReadSeekCloser, error) {
			return nopSeekCloser{strings.NewReader(string(b))}, nil
		}}
}

type nopSeekCloser struct{ io.ReadSeeker }

func (nopSeekCloser) Close() error { return nil }

// openSection opens bytes [off, off+n) of a file.
func openSection(path string, off, n int64) (io.ReadSeekCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return struct {
		io.ReadSeeker
		io.Closer
	}{io.NewSectionReader(f, off, n), f}, nil
}

// fileSHA256 returns the hex SHA-256 of bytes [off, off+n) of a file.
func fileSHA256(path string, off, n int64) (string, error) {
	r, err := openSection(path, off, n)
	if err != nil {
		return "", err
	}
	defer r.Close()
	h := sha256.New()
	if got, err := io.Copy(h, r); err != nil || got != n {
		return "", fmt.Errorf("offsite: read %s: %d of %d bytes: %v", filepath.Base(path), got, n, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
