// SPDX-License-Identifier: Apache-2.0

package offsite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// OpenFile returns a reader of file f's stored bytes from t: its parts in
// order, each checked as it is read. A part that is missing, shorter,
// longer or has another SHA-256, or a file whose whole SHA-256 differs,
// fails the read (with [ErrMismatch]) before its last byte is returned, so
// a caller that reads to the end never takes damaged bytes for good ones.
func OpenFile(ctx context.Context, t Target, f File) io.ReadCloser {
	return &fileReader{ctx: ctx, t: t, f: f, whole: sha256.New()}
}

type fileReader struct {
	ctx   context.Context
	t     Target
	f     File
	whole hash.Hash

	i    int // the part being read
	cur  io.ReadCloser
	ph   hash.Hash
	left int64  // bytes of part i still to come
	last []byte // part i's last bytes, held back until it checked out
	held []byte // checked bytes still to hand out
	err  error
}

func (r *fileReader) Read(b []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(b) == 0 {
		return 0, nil
	}
	n, err := r.read(b)
	if err != nil {
		r.err = err
		r.closePart()
	}
	return n, err
}

func (r *fileReader) read(b []byte) (int, error) {
	for {
		if len(r.held) > 0 {
			n := copy(b, r.held)
			r.held = r.held[n:]
			return n, nil
		}
		if r.i == len(r.f.Parts) {
			if len(r.f.Parts) == 0 {
				if err := r.checkWhole(); err != nil {
					return 0, err
				}
			}
			return 0, io.EOF
		}
		p := r.f.Parts[r.i]
		if r.cur == nil {
			c, err := r.t.Open(r.ctx, p.Object)
			if err != nil {
				return 0, fmt.Errorf("%s: part %s: %w", r.f.Path, p.Object, err)
			}
			r.cur, r.ph, r.left = c, sha256.New(), p.Size
		}
		if r.left == 0 {
			// The part must end here and match; only then are its last
			// bytes (and, for the last part, the file's) handed out.
			var one [1]byte
			if n, _ := r.cur.Read(one[:]); n > 0 {
				return 0, fmt.Errorf("%s: part %s is longer than its %d bytes: %w", r.f.Path, p.Object, p.Size, ErrMismatch)
			}
			if got := hex.EncodeToString(r.ph.Sum(nil)); got != p.SHA256 {
				return 0, fmt.Errorf("%s: part %s: SHA-256 %s, the manifest says %s: %w", r.f.Path, p.Object, got, p.SHA256, ErrMismatch)
			}
			r.closePart()
			if r.i++; r.i == len(r.f.Parts) {
				if err := r.checkWhole(); err != nil {
					return 0, err
				}
			}
			r.held, r.last = r.last, nil
			continue
		}
		buf := b
		if int64(len(buf)) > r.left {
			buf = buf[:r.left]
		}
		n, err := r.cur.Read(buf)
		if n > 0 {
			r.ph.Write(buf[:n])
			r.whole.Write(buf[:n])
			r.left -= int64(n)
			if r.left == 0 {
				r.last = append(r.last[:0], buf[:n]...)
				continue
			}
			return n, nil
		}
		if errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("%s: part %s ends %d bytes short of its %d: %w", r.f.Path, p.Object, r.left, p.Size, ErrMismatch)
		}
		if err != nil {
			return 0, fmt.Errorf("%s: part %s: %w", r.f.Path, p.Object, err)
		}
	}
}

func (r *fileReader) checkWhole() error {
	if got := hex.EncodeToString(r.whole.Sum(nil)); got != r.f.SHA256 {
		return fmt.Errorf("%s: SHA-256 %s, the manifest says %s: %w", r.f.Path, got, r.f.SHA256, ErrMismatch)
	}
	return nil
}

func (r *fileReader) closePart() {
	if r.cur != nil {
		_ = r.cur.Close() // read-only
		r.cur = nil
	}
}

// Close releases the part being read.
func (r *fileReader) Close() error {
	r.closePart()
	if r.err == nil {
		r.err = fs.ErrClosed
	}
	return nil
}

// Problem is one thing [Verify] found wrong with a backup.
type Problem struct {
	Path   string // the file concerned, "" for the backup as a whole
	Detail string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Detail
	}
	return p.Path + ": " + p.Detail
}

// Verify reads every file of m from t to its end, checking each part's and
// each file's size and SHA-256, and returns what did not check out. check,
// if not nil, is called for each file with a reader of its bytes (a
// checked stream, as [OpenFile] gives) and may read as much of it as it
// likes; what it leaves is read after it, and an error it returns is a
// problem of the file. The error is for failures to run (ctx ended).
func Verify(ctx context.Context, t Target, m *Manifest, check func(File, io.Reader) error) ([]Problem, error) {
	var out []Problem
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		r := OpenFile(ctx, t, f)
		var err error
		if check != nil {
			err = check(f, r)
		}
		if _, cerr := io.Copy(io.Discard, r); err == nil {
			err = cerr
		}
		r.Close()
		if err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			out = append(out, Problem{Path: f.Path, Detail: strings.TrimPrefix(err.Error(), f.Path+": ")})
		}
	}
	return out, nil
}

// FS returns the files of m under the directory dir (such as "audit") as an
// fs.FS rooted there, read from t through [OpenFile], for readers that take
// a file system (the audit log's verifier).
func FS(ctx context.Context, t Target, m *Manifest, dir string) fs.FS {
	b := &backupFS{ctx: ctx, t: t, files: make(map[string]File)}
	prefix := dir + "/"
	for _, f := range m.Files {
		if name, ok := strings.CutPrefix(f.Path, prefix); ok && !strings.Contains(name, "/") {
			b.files[name] = f
		}
	}
	return b
}

type backupFS struct {
	ctx   context.Context
	t     Target
	files map[string]File
}

func (b *backupFS) Open(name string) (fs.File, error) {
	if name == "." {
		return &backupDir{fs: b}, nil
	}
	f, ok := b.files[name]
	if !fs.ValidPath(name) || !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &backupFile{r: OpenFile(b.ctx, b.t, f), info: fileInfo{f: f}}, nil
}

// ReadDir lists the directory: only "." has entries.
func (b *backupFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != "." {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	out := make([]fs.DirEntry, 0, len(b.files))
	for _, f := range b.files {
		out = append(out, fs.FileInfoToDirEntry(fileInfo{f: f}))
	}
	slices.SortFunc(out, func(x, y fs.DirEntry) int { return strings.Compare(x.Name(), y.Name()) })
	return out, nil
}

type backupFile struct {
	r    io.ReadCloser
	info fileInfo
}

func (f *backupFile) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *backupFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *backupFile) Close() error               { return f.r.Close() }

type backupDir struct {
	fs      *backupFS
	entries []fs.DirEntry // nil until the first ReadDir
	read    bool
}

func (d *backupDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: ".", Err: fs.ErrInvalid}
}
func (d *backupDir) Stat() (fs.FileInfo, error) { return dirInfo{}, nil }
func (d *backupDir) Close() error               { return nil }

// ReadDir returns the next n entries (all of them for n <= 0), as
// fs.ReadDirFile says.
func (d *backupDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		d.entries, _ = d.fs.ReadDir(".") // "." always exists
		d.read = true
	}
	if n <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	out := d.entries[:n]
	d.entries = d.entries[n:]
	return out, nil
}

type fileInfo struct{ f File }

func (i fileInfo) Name() string       { return path.Base(i.f.Path) }
func (i fileInfo) Size() int64        { return i.f.Size }
func (i fileInfo) Mode() fs.FileMode  { return fs.FileMode(i.f.Mode) }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return false }
func (i fileInfo) Sys() any           { return nil }

type dirInfo struct{}

func (dirInfo) Name() string       { return "." }
func (dirInfo) Size() int64        { return 0 }
func (dirInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o500 }
func (dirInfo) ModTime() time.Time { return time.Time{} }
func (dirInfo) IsDir() bool        { return true }
func (dirInfo) Sys() any           { return nil }
