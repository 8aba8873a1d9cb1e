// SPDX-License-Identifier: Apache-2.0

package offsite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"time"
)

// Source is one file a backup takes, as the archive describes it.
type Source struct {
	Path string // in the archive directory, slash-separated
	Mode fs.FileMode
	Size int64 // the bytes to copy
	// SHA256, if set (hex), is what the copied bytes must hash to (a sealed
	// segment's hash from the catalog): a mismatch fails the backup.
	SHA256 string
	// Final says the file never changes again (a sealed segment, a rotated
	// audit file): a previous backup's copy of the same path and size (and
	// SHA256, if given) is taken as it is.
	Final bool
	// Grows says the file changes only by appending: a previous backup's
	// copy of the same path is a prefix of it, reused once its SHA-256 was
	// checked against the file's first bytes.
	Grows bool
	// Encrypted, if set, says that the bytes are an age file ([SealSecret])
	// of a plaintext of this size and SHA-256.
	Encrypted *Plain
	// Open returns n bytes of the file from offset off.
	Open func(ctx context.Context, off, n int64) (io.ReadCloser, error)
}

// Options describes the backup being written.
type Options struct {
	Archive    string   // the archive id
	Checkpoint string   // the audit checkpoint the backup ends with, text form
	AuditSeq   uint64   // the audit log's head when the catalog was read
	Recipients []string // whom Encrypted sources are sealed to
	Program    string   // e.g. "sealmail 1.2.0"
	Now        func() time.Time
	Logger     *slog.Logger
}

// Result says what [Backup] wrote.
type Result struct {
	Manifest *Manifest
	// ManifestSHA256 is the SHA-256 of the manifest object's bytes.
	ManifestSHA256 string
	Copied         int64 // bytes written to the target
	Reused         int64 // bytes of the previous backup's objects taken again
	Checked        int64 // bytes read again to check a reused prefix
	Removed        int   // objects and manifests no longer needed, removed
	// Warnings are what the operator should know but did not stop the
	// backup (a prefix that no longer matched and was copied whole).
	Warnings []string
}

// Backup writes a new backup of files to t and returns its manifest. It
// holds the target's lock throughout. Files are copied in the order given.
// The previous backup's objects are reused where [Source] allows it. The
// new manifest is the commit point: only after it is durable are older
// manifests and unreferenced objects removed, so an interruption at any
// point leaves the previous backup complete (and perhaps objects no
// manifest names, which the next backup removes).
func Backup(ctx context.Context, t Target, o Options, files []Source) (*Result, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	unlock, err := t.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	prev, err := Latest(ctx, t)
	switch {
	case errors.Is(err, ErrNoBackup):
		prev = nil
	case err != nil:
		return nil, err
	case prev.Archive != o.Archive:
		return nil, fmt.Errorf("target holds backups of archive %s, not %s: %w", prev.Archive, o.Archive, ErrOtherArchive)
	}
	seq := uint64(1)
	if prev != nil {
		seq = prev.Seq + 1
	}
	m := &Manifest{Magic: manifestMagic, Version: manifestVersion, Archive: o.Archive, Seq: seq,
		Created: o.Now().UTC(), Program: o.Program, Checkpoint: o.Checkpoint, AuditSeq: o.AuditSeq, Recipients: o.Recipients}
	res := &Result{Manifest: m}
	for _, src := range files {
		if !ValidPath(src.Path) {
			return nil, fmt.Errorf("backup: source path %q", src.Path)
		}
		f, err := copyFile(ctx, t, seq, prev.file(src.Path), src, res)
		if err != nil {
			return nil, fmt.Errorf("backup %s: %w", src.Path, err)
		}
		m.Files = append(m.Files, f)
	}
	if err := m.check(); err != nil {
		panic(fmt.Sprintf("offsite: backup made an invalid manifest: %v", err))
	}
	b, err := m.encode()
	if err != nil {
		return nil, err
	}
	if _, err := t.Put(ctx, manifestName(seq), bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("backup: write manifest: %w", err)
	}
	sum := sha256.Sum256(b)
	res.ManifestSHA256 = hex.EncodeToString(sum[:])
	// Committed. What follows only removes what no backup needs.
	n, err := prune(ctx, t, m)
	res.Removed = n
	if err != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the backup is complete, but removing what older backups left failed (the next backup tries again): %v", err))
		o.Logger.Warn("backup: prune the target", "err", err)
	}
	return res, nil
}

// copyFile writes src into the target as backup seq, reusing the previous
// backup's copy pf where src allows it.
func copyFile(ctx context.Context, t Target, seq uint64, pf *File, src Source, res *Result) (File, error) {
	f := File{Path: src.Path, Mode: Mode(src.Mode.Perm()), Size: src.Size, Encrypted: src.Encrypted}
	h := sha256.New()
	var from int64 // where the bytes still to copy start
	switch {
	case pf != nil && src.Encrypted == nil && pf.Encrypted == nil && src.Final && pf.Size == src.Size &&
		(src.SHA256 == "" || src.SHA256 == pf.SHA256):
		f.SHA256, f.Parts = pf.SHA256, pf.Parts
		res.Reused += pf.Size
		return f, nil
	case pf != nil && src.Encrypted == nil && pf.Encrypted == nil && src.Grows && pf.Size <= src.Size:
		ok, err := prefixMatches(ctx, src, pf, h)
		if err != nil {
			return File{}, err
		}
		res.Checked += pf.Size
		if ok {
			f.Parts = append(f.Parts, pf.Parts...)
			res.Reused += pf.Size
			from = pf.Size
			break
		}
		h.Reset()
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s: its first %d bytes differ from the previous backup's copy; copied whole", src.Path, pf.Size))
	}
	if n := src.Size - from; n > 0 {
		p, err := copyPart(ctx, t, objectName(seq, src.Path, from), src, from, n, h)
		if err != nil {
			return File{}, err
		}
		f.Parts = append(f.Parts, p)
		res.Copied += n
	}
	f.SHA256 = hex.EncodeToString(h.Sum(nil))
	if src.SHA256 != "" && f.SHA256 != src.SHA256 {
		return File{}, fmt.Errorf("its bytes hash to %s, but they must hash to %s: the archive's file is damaged; "+
			"this backup stops and the previous one stays (run `sealmail verify`): %w", f.SHA256, src.SHA256, ErrMismatch)
	}
	return f, nil
}

// prefixMatches reads the first pf.Size bytes of src into h and reports
// whether they are pf's.
func prefixMatches(ctx context.Context, src Source, pf *File, h hash.Hash) (bool, error) {
	if pf.Size == 0 {
		return true, nil
	}
	r, err := src.Open(ctx, 0, pf.Size)
	if err != nil {
		return false, err
	}
	defer r.Close()
	n, err := io.Copy(h, r)
	if err != nil {
		return false, fmt.Errorf("read: %w", err)
	}
	if n != pf.Size {
		return false, fmt.Errorf("read %d bytes of the first %d: %w", n, pf.Size, io.ErrUnexpectedEOF)
	}
	return hex.EncodeToString(h.Sum(nil)) == pf.SHA256, nil // Sum leaves h going on
}

// copyPart copies n bytes of src from off into the object name, adding
// them to h too.
func copyPart(ctx context.Context, t Target, name string, src Source, off, n int64, h hash.Hash) (Part, error) {
	r, err := src.Open(ctx, off, n)
	if err != nil {
		return Part{}, err
	}
	defer r.Close()
	ph := sha256.New()
	cr := &countReader{r: io.TeeReader(io.LimitReader(r, n), io.MultiWriter(h, ph))}
	if _, err := t.Put(ctx, name, cr); err != nil {
		return Part{}, err
	}
	if cr.n != n {
		return Part{}, fmt.Errorf("read %d bytes from offset %d, want %d: %w", cr.n, off, n, io.ErrUnexpectedEOF)
	}
	return Part{Object: name, Offset: off, Size: n, SHA256: hex.EncodeToString(ph.Sum(nil))}, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// Latest returns the newest backup of the target: the manifest with the
// highest seq. It fails with [ErrNoBackup] when there is none, and when the
// newest manifest does not check out (it does not fall back to an older
// one silently).
func Latest(ctx context.Context, t Target) (*Manifest, error) {
	seqs, err := manifests(ctx, t)
	if err != nil {
		return nil, err
	}
	if len(seqs) == 0 {
		return nil, ErrNoBackup
	}
	return ReadManifest(ctx, t, seqs[len(seqs)-1])
}

// manifests returns the seqs of the target's manifests, ascending.
func manifests(ctx context.Context, t Target) ([]uint64, error) {
	names, err := t.List(ctx, "manifests/")
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, n := range names {
		if seq, ok := parseManifestName(n); ok {
			seqs = append(seqs, seq)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// ReadManifest reads and checks backup seq's manifest.
func ReadManifest(ctx context.Context, t Target, seq uint64) (*Manifest, error) {
	name := manifestName(seq)
	r, err := t.Open(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > maxManifestBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes: %w", name, maxManifestBytes, ErrCorrupt)
	}
	m, err := decodeManifest(name, b)
	if err != nil {
		return nil, err
	}
	if m.Seq != seq {
		return nil, fmt.Errorf("%s: says it is backup %d: %w", name, m.Seq, ErrCorrupt)
	}
	return m, nil
}

// prune removes every manifest but m's and every object m does not name.
func prune(ctx context.Context, t Target, m *Manifest) (int, error) {
	removed := 0
	seqs, err := manifests(ctx, t)
	if err != nil {
		return removed, err
	}
	for _, seq := range seqs {
		if seq == m.Seq {
			continue
		}
		if err := t.Remove(ctx, manifestName(seq)); err != nil {
			return removed, err
		}
		removed++
	}
	keep := make(map[string]bool)
	for _, f := range m.Files {
		for _, p := range f.Parts {
			keep[p.Object] = true
		}
	}
	names, err := t.List(ctx, "data/")
	if err != nil {
		return removed, err
	}
	for _, n := range names {
		if keep[n] || !strings.HasPrefix(n, "data/") {
			continue
		}
		if err := t.Remove(ctx, n); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}
