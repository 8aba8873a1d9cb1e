// SPDX-License-Identifier: Apache-2.0

package offsite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/sealmail/sealmail/vfs"
)

// Want is one object the bucket must hold, as the archive describes it.
type Want struct {
	Key    string // relative to the prefix
	Size   int64
	SHA256 string // hex: the server checks it, and the version is read back
	// Until is when the version's lock may end at the earliest: a new
	// version is locked until then; an older lock is extended to it.
	Until time.Time
	IDs   []IDRange // kept in the state with the object
	// Any says that any locked version of Key in the bucket will do (a
	// secret, sealed anew each time: its bytes differ).
	Any bool
	// Open returns the bytes; nil for an object that must be in the bucket
	// already (a secret sealed once).
	Open func(ctx context.Context) (io.ReadSeekCloser, error)
}

// SyncOptions configures [Sync].
type SyncOptions struct {
	// StatePath is the state file; FS writes it (nil: the real one).
	StatePath string
	FS        vfs.FS
	// Rate bounds the bytes uploaded per second (0: no bound).
	Rate int64
	// Managed reports whether key is a name the archive writes: only such
	// versions are removed, and only when the state does not want them and
	// their lock has ended.
	Managed func(key string) bool
	Now     func() time.Time
	Logger  *slog.Logger
	// Listed is the bucket's versions as [Bucket.List] gave them just
	// before; nil: Sync lists them itself.
	Listed []ObjectVersion
}

// SyncResult says what [Sync] did.
type SyncResult struct {
	Objects       int   `json:"objects"`        // versions the archive wants, now in the bucket
	Uploaded      int   `json:"uploaded"`       // new versions
	UploadedBytes int64 `json:"uploaded_bytes"` // their bytes
	Adopted       int   `json:"adopted"`        // found in the bucket already (a sync cut short), taken into the state
	Extended      int   `json:"extended"`       // locks lengthened
	Removed       int   `json:"removed"`        // versions nobody wants whose lock had ended, deleted
	Retired       int   `json:"retired"`        // versions nobody wants, still locked (removed once their lock ends)
}

// Sync makes the bucket hold every wanted object, each as one version
// locked in COMPLIANCE mode until at least its Until, and removes the
// managed versions nobody wants once their lock has ended. Every change is
// recorded in st and st saved before the next one, so an interruption at
// any point loses nothing: a version uploaded but not yet recorded is found
// and adopted by the next run (its SHA-256 read back from the bucket), so
// that each object is uploaded once.
func Sync(ctx context.Context, b *Bucket, st *State, wants []Want, o SyncOptions) (*SyncResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Managed == nil {
		o.Managed = func(string) bool { return false }
	}
	res := &SyncResult{}
	listed := o.Listed
	if listed == nil {
		var err error
		if listed, err = b.List(ctx, ""); err != nil {
			return res, err
		}
	}
	inBucket := make(map[string][]ObjectVersion)
	for _, v := range listed {
		inBucket[v.Key] = append(inBucket[v.Key], v)
	}
	save := func() error { return st.save(o.FS, o.StatePath) }
	wanted := make(map[[2]string]bool) // key, version
	for _, w := range wants {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		obj, err := syncOne(ctx, b, st, w, inBucket[w.Key], o, res, save)
		if err != nil {
			return res, fmt.Errorf("offsite %s: %w", w.Key, err)
		}
		wanted[[2]string{obj.Key, obj.VersionID}] = true
		res.Objects++
	}
	// What nobody wants: record what the bucket holds besides, then remove
	// what is unlocked.
	for _, v := range listed {
		if wanted[[2]string{v.Key, v.VersionID}] || !o.Managed(v.Key) || st.index(v.Key, v.VersionID) >= 0 {
			continue
		}
		h, err := b.Head(ctx, v.Key, v.VersionID)
		if err != nil {
			return res, err
		}
		st.put(Object{Key: h.Key, VersionID: h.VersionID, Size: h.Size, SHA256: orZeros(h.SHA256), RetainUntil: h.RetainUntil})
		if err := save(); err != nil {
			return res, err
		}
	}
	now := o.Now()
	for _, obj := range slices.Clone(st.Objects) {
		if wanted[[2]string{obj.Key, obj.VersionID}] || !o.Managed(obj.Key) {
			continue
		}
		if obj.RetainUntil.After(now) {
			res.Retired++
			continue
		}
		if err := b.Delete(ctx, obj.Key, obj.VersionID); err != nil {
			if errors.Is(err, ErrLockedObject) {
				// The server's clock or a longer lock: try again later.
				res.Retired++
				continue
			}
			return res, err
		}
		o.Logger.Info("offsite: removed a version nobody needs", "key", obj.Key, "version", obj.VersionID)
		st.remove(obj.Key, obj.VersionID)
		if err := save(); err != nil {
			return res, err
		}
		res.Removed++
	}
	return res, nil
}

// orZeros returns s, or 64 zeros for a version without a SHA-256 (one
// sealmail did not write).
func orZeros(s string) string {
	if s == "" {
		return "0000000000000000000000000000000000000000000000000000000000000000"
	}
	return s
}

// syncOne makes the bucket hold w and returns its version.
func syncOne(ctx context.Context, b *Bucket, st *State, w Want, versions []ObjectVersion, o SyncOptions, res *SyncResult, save func() error) (Object, error) {
	present := func(id string) bool {
		return slices.ContainsFunc(versions, func(v ObjectVersion) bool { return v.VersionID == id })
	}
	obj, ok := st.Object(w.Key)
	if !ok || !w.Any && (obj.SHA256 != w.SHA256 || obj.Size != w.Size) || !present(obj.VersionID) {
		ok = false
		// Not recorded (or not as it is now): a version from a sync cut
		// short after its upload is adopted, newest first.
		for _, v := range slices.Backward(versions) {
			h, err := b.Head(ctx, w.Key, v.VersionID)
			if err != nil {
				return Object{}, err
			}
			if h.Mode == "COMPLIANCE" && isHex32(h.SHA256) && (w.Any || h.SHA256 == w.SHA256 && h.Size == w.Size) {
				obj, ok = Object{Key: w.Key, VersionID: h.VersionID, Size: h.Size, SHA256: h.SHA256, RetainUntil: h.RetainUntil, IDs: w.IDs}, true
				st.put(obj)
				if err := save(); err != nil {
					return Object{}, err
				}
				res.Adopted++
				break
			}
		}
	}
	if !ok {
		if w.Open == nil {
			return Object{}, fmt.Errorf("not in the bucket, and there is nothing to upload it from: %w", ErrNotFound)
		}
		v, err := upload(ctx, b, w, o.Rate)
		if err != nil {
			return Object{}, err
		}
		obj = Object{Key: w.Key, VersionID: v.VersionID, Size: v.Size, SHA256: v.SHA256, RetainUntil: v.RetainUntil, IDs: w.IDs}
		st.put(obj)
		if err := save(); err != nil {
			return Object{}, err
		}
		res.Uploaded++
		res.UploadedBytes += v.Size
		o.Logger.Info("offsite: uploaded", "key", w.Key, "bytes", v.Size, "retain_until", v.RetainUntil)
	}
	if obj.RetainUntil.Before(lockTime(w.Until)) {
		if err := b.Extend(ctx, obj.Key, obj.VersionID, w.Until); err != nil {
			return Object{}, err
		}
		obj.RetainUntil = lockTime(w.Until)
		st.put(obj)
		if err := save(); err != nil {
			return Object{}, err
		}
		res.Extended++
	}
	if !slices.Equal(obj.IDs, w.IDs) {
		obj.IDs = w.IDs
		st.put(obj)
		if err := save(); err != nil {
			return Object{}, err
		}
	}
	return obj, nil
}

// upload puts w's bytes, at most rate bytes per second.
func upload(ctx context.Context, b *Bucket, w Want, rate int64) (ObjectVersion, error) {
	r, err := w.Open(ctx)
	if err != nil {
		return ObjectVersion{}, err
	}
	defer r.Close()
	var body io.ReadSeeker = r
	if rate > 0 {
		// A seek back (for the SDK's payload hash) counts the bytes again.
		body = struct {
			io.Reader
			io.Seeker
		}{vfs.NewPace(ctx, rate).Reader(r), r}
	}
	return b.Put(ctx, w.Key, body, w.Size, w.SHA256, w.Until)
}
