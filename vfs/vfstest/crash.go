// SPDX-License-Identifier: Apache-2.0

package vfstest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/sealmail/sealmail/vfs"
)

// ErrCrashed is returned by every mutating operation at and after the
// crash point.
var ErrCrashed = errors.New("vfstest: power lost")

// Options configures a [CrashFS].
type Options struct {
	// CrashAt cuts the power at the CrashAt-th mutating operation (counting
	// from 1): that operation and every later one fail with [ErrCrashed]
	// and change nothing. 0 never crashes.
	CrashAt int
	// CrashAfter cuts the power just after operation CrashAt instead: it
	// takes effect (and succeeds), and the external files are copied at
	// once, so that their commits made before the next operation are lost
	// too. Crashing before and after every operation covers the moments
	// between an operation and the next external commit.
	CrashAfter bool
	// TornWrites keeps, of the bytes appended to a file after its last
	// sync, the first half: a disk may have written some of what was never
	// synced, cut anywhere. Without it none of them survive.
	TornWrites bool
	// External are paths relative to the root of files written by code
	// that does not use the FS and fsyncs every change it commits (bbolt's
	// catalog.db). See the package documentation.
	External []string
	// Ignore are paths relative to the root (files or directory trees) that
	// are neither tracked nor restored.
	Ignore []string
}

// CrashFS is a strict [vfs.FS] over a real directory. See the package
// documentation.
type CrashFS struct {
	root string
	opts Options

	mu      sync.Mutex
	cur     map[string]*inode // the names as they are now
	dur     map[string]*inode // the names as a power cut would leave them
	ops     int
	crashed bool
	crashOp string            // the operation the power was cut at
	pending string            // CrashAfter: the operation to crash after
	snap    map[string][]byte // external files at the crash; nil: absent
}

// inode is a file or directory; data and mode are its durable state.
type inode struct {
	dir  bool
	data []byte
	mode fs.FileMode
}

var _ vfs.FS = (*CrashFS)(nil)

// New returns a CrashFS over the directory root, whose present content is
// taken as durable.
func New(root string, opts Options) (*CrashFS, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	c := &CrashFS{root: filepath.Clean(root), opts: opts, cur: make(map[string]*inode)}
	err = filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == c.root {
			return nil
		}
		if c.ignored(p) || c.external(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			c.cur[p] = &inode{dir: true, mode: fi.Mode().Perm()}
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		c.cur[p] = &inode{data: b, mode: fi.Mode().Perm()}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vfstest: scan %s: %w", root, err)
	}
	c.dur = maps.Clone(c.cur)
	return c, nil
}

// Ops returns how many mutating operations were counted so far (the crash
// points a run offers).
func (c *CrashFS) Ops() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops
}

// Crashed reports whether the power was cut, and at which operation.
func (c *CrashFS) Crashed() (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.crashed, c.crashOp
}

// Crash cuts the power now, as if the next operation were the crash point.
func (c *CrashFS) Crash() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.crashed {
		c.crash("explicit")
	}
}

func (c *CrashFS) crash(op string) {
	c.crashed, c.crashOp = true, op
	c.snap = make(map[string][]byte)
	for _, e := range c.opts.External {
		if b, err := os.ReadFile(filepath.Join(c.root, e)); err == nil {
			c.snap[e] = b
		}
	}
}

// op counts one mutating operation; it returns ErrCrashed at and after the
// crash point. c.mu must be held.
func (c *CrashFS) op(format string, v ...any) error {
	if c.crashed {
		return ErrCrashed
	}
	c.ops++
	if c.ops == c.opts.CrashAt {
		desc := fmt.Sprintf("#%d "+format, append([]any{c.ops}, v...)...)
		if c.opts.CrashAfter {
			c.pending = "after " + desc
			return nil
		}
		c.crash("before " + desc)
		return ErrCrashed
	}
	return nil
}

// done ends a mutating operation: with CrashAfter, the power goes now.
// c.mu must be held.
func (c *CrashFS) done() {
	if c.pending != "" && !c.crashed {
		c.crash(c.pending)
	}
	c.pending = ""
}

// tracked reports whether p is a path whose durable state CrashFS keeps.
func (c *CrashFS) tracked(p string) bool {
	return strings.HasPrefix(p, c.root+string(filepath.Separator)) && !c.ignored(p) && !c.external(p)
}

func (c *CrashFS) rel(p string) string {
	r, _ := filepath.Rel(c.root, p)
	return r
}

func (c *CrashFS) ignored(p string) bool {
	r := c.rel(p)
	for _, i := range c.opts.Ignore {
		if r == i || strings.HasPrefix(r, i+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

func (c *CrashFS) external(p string) bool { return slices.Contains(c.opts.External, c.rel(p)) }

func clean(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	return a
}

// OpenFile opens name; creating it or truncating it is a mutating
// operation.
func (c *CrashFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	name = clean(name)
	if !c.tracked(name) {
		return vfs.OS{}.OpenFile(name, flag, perm)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.done()
	ino, exists := c.cur[name]
	switch {
	case exists && ino.dir:
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("is a directory")}
	case !exists && flag&os.O_CREATE != 0:
		if err := c.op("create %s", c.rel(name)); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
	case exists && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case exists && flag&os.O_TRUNC != 0:
		if err := c.op("truncate %s", c.rel(name)); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
	case !exists:
		if _, err := os.Lstat(name); err == nil {
			return nil, fmt.Errorf("vfstest: %s exists but was not made through the FS", name)
		}
	}
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if !exists {
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		ino = &inode{mode: fi.Mode().Perm()}
		c.cur[name] = ino
	}
	return &file{c: c, f: f, ino: ino, name: c.rel(name)}, nil
}

// Rename renames a file or directory.
func (c *CrashFS) Rename(oldpath, newpath string) error {
	oldpath, newpath = clean(oldpath), clean(newpath)
	if !c.tracked(oldpath) || !c.tracked(newpath) {
		return os.Rename(oldpath, newpath)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.done()
	if err := c.op("rename %s %s", c.rel(oldpath), c.rel(newpath)); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	moved := make(map[string]*inode)
	for p, ino := range c.cur {
		if p == newpath || strings.HasPrefix(p, newpath+string(filepath.Separator)) {
			delete(c.cur, p)
		}
		if p == oldpath || strings.HasPrefix(p, oldpath+string(filepath.Separator)) {
			delete(c.cur, p)
			moved[newpath+strings.TrimPrefix(p, oldpath)] = ino
		}
	}
	maps.Copy(c.cur, moved)
	return nil
}

// Remove removes a file or an empty directory.
func (c *CrashFS) Remove(name string) error {
	name = clean(name)
	if !c.tracked(name) {
		return os.Remove(name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.done()
	if err := c.op("remove %s", c.rel(name)); err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	if err := os.Remove(name); err != nil {
		return err
	}
	delete(c.cur, name)
	return nil
}

// MkdirAll creates the missing directories of path, each a mutating
// operation.
func (c *CrashFS) MkdirAll(path string, perm fs.FileMode) error {
	path = clean(path)
	if !c.tracked(path) {
		return os.MkdirAll(path, perm)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.done()
	var missing []string
	for p := path; c.tracked(p); p = filepath.Dir(p) {
		if ino, ok := c.cur[p]; ok {
			if !ino.dir {
				return &fs.PathError{Op: "mkdir", Path: p, Err: errors.New("not a directory")}
			}
			break
		}
		missing = append(missing, p)
	}
	for _, p := range slices.Backward(missing) {
		if err := c.op("mkdir %s", c.rel(p)); err != nil {
			return &fs.PathError{Op: "mkdir", Path: p, Err: err}
		}
		if err := os.Mkdir(p, perm); err != nil {
			return err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		c.cur[p] = &inode{dir: true, mode: fi.Mode().Perm()}
	}
	return nil
}

// ReadDir reads the real directory.
func (c *CrashFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// Stat stats the real file.
func (c *CrashFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// Chmod changes a mode; it is durable at once.
func (c *CrashFS) Chmod(name string, mode fs.FileMode) error {
	name = clean(name)
	if !c.tracked(name) {
		return os.Chmod(name, mode)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.done()
	if err := c.op("chmod %s %v", c.rel(name), mode); err != nil {
		return &fs.PathError{Op: "chmod", Path: name, Err: err}
	}
	if err := os.Chmod(name, mode); err != nil {
		return err
	}
	if ino := c.cur[name]; ino != nil {
		ino.mode = mode.Perm()
	}
	return nil
}

// SyncDir makes the entries of dir durable as they are now.
func (c *CrashFS) SyncDir(dir string) error {
	dir = clean(dir)
	if dir != c.root && !c.tracked(dir) {
		return vfs.OS{}.SyncDir(dir)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.done()
	if ino := c.cur[dir]; dir != c.root && (ino == nil || !ino.dir) {
		return &fs.PathError{Op: "sync", Path: dir, Err: fs.ErrNotExist}
	}
	if err := c.op("syncdir %s", c.rel(dir)); err != nil {
		return &fs.PathError{Op: "sync", Path: dir, Err: err}
	}
	for p := range c.dur {
		if filepath.Dir(p) == dir && c.cur[p] == nil {
			delete(c.dur, p)
		}
	}
	for p, ino := range c.cur {
		if filepath.Dir(p) == dir {
			c.dur[p] = ino
		}
	}
	return nil
}

// TryLock locks through the real file system; locks are not durable state.
func (c *CrashFS) TryLock(name string) (io.Closer, error) { return vfs.OS{}.TryLock(name) }

// Restore rolls the real directory back to the durable state, as a power
// cut at the crash point (or now, if the power was not cut) leaves it, and
// starts a new life: the operation count is reset and no further crash is
// planned. The code that used the FS must have stopped using it.
func (c *CrashFS) Restore() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.crashed {
		c.crash("restore")
	}
	for _, e := range c.opts.External {
		p := filepath.Join(c.root, e)
		if b, ok := c.snap[e]; ok {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				return err
			}
			if err := os.Truncate(p, int64(len(b))); err != nil {
				return err
			}
		} else if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	reachable := func(p string) bool {
		for q := p; q != c.root; q = filepath.Dir(q) {
			if c.dur[q] == nil || (q != p && !c.dur[q].dir) {
				return false
			}
		}
		return true
	}
	// Remove what the power cut does not keep.
	var present []string
	err := filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == c.root {
			return nil
		}
		if !c.tracked(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		present = append(present, p)
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range present {
		ino := c.dur[p]
		if ino == nil || !reachable(p) || ino.dir != isDir(p) {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
	}
	if c.opts.TornWrites {
		for p, ino := range c.dur {
			if ino.dir || c.cur[p] != ino {
				continue
			}
			now, err := os.ReadFile(p)
			if err == nil && len(now) > len(ino.data) && bytes.HasPrefix(now, ino.data) {
				ino.data = now[:len(ino.data)+(len(now)-len(ino.data))/2]
			}
		}
	}
	// Put back what it keeps, parents first.
	paths := slices.Sorted(maps.Keys(c.dur))
	keep := make(map[string]*inode, len(paths))
	for _, p := range paths {
		ino := c.dur[p]
		if !reachable(p) {
			continue
		}
		keep[p] = ino
		if ino.dir {
			if err := os.MkdirAll(p, 0o700); err != nil {
				return err
			}
		} else {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := os.WriteFile(p, ino.data, 0o600); err != nil {
				return err
			}
		}
		if err := os.Chmod(p, ino.mode); err != nil {
			return err
		}
	}
	// The files that survive are the durable inodes: give each a fresh
	// inode so that a file still open elsewhere cannot change them.
	c.cur = make(map[string]*inode, len(keep))
	for p, ino := range keep {
		c.cur[p] = &inode{dir: ino.dir, data: ino.data, mode: ino.mode}
	}
	c.dur = maps.Clone(c.cur)
	c.crashed, c.crashOp, c.pending, c.snap, c.ops = false, "", "", nil, 0
	c.opts.CrashAt = 0
	return nil
}

func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}

// file is an open file of a CrashFS.
type file struct {
	c    *CrashFS
	f    *os.File
	ino  *inode
	name string
}

func (f *file) Read(b []byte) (int, error)              { return f.f.Read(b) }
func (f *file) ReadAt(b []byte, off int64) (int, error) { return f.f.ReadAt(b, off) }
func (f *file) Stat() (fs.FileInfo, error)              { return f.f.Stat() }
func (f *file) Close() error                            { return f.f.Close() }

func (f *file) Write(b []byte) (int, error) {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	defer f.c.done()
	if err := f.c.op("write %s %d bytes", f.name, len(b)); err != nil {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: err}
	}
	return f.f.Write(b)
}

func (f *file) Truncate(size int64) error {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	defer f.c.done()
	if err := f.c.op("truncate %s to %d", f.name, size); err != nil {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: err}
	}
	return f.f.Truncate(size)
}

func (f *file) Chmod(mode fs.FileMode) error {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	defer f.c.done()
	if err := f.c.op("chmod %s %v", f.name, mode); err != nil {
		return &fs.PathError{Op: "chmod", Path: f.name, Err: err}
	}
	if err := f.f.Chmod(mode); err != nil {
		return err
	}
	f.ino.mode = mode.Perm()
	return nil
}

// Sync makes the file's present content its durable content.
func (f *file) Sync() error {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	defer f.c.done()
	if err := f.c.op("sync %s", f.name); err != nil {
		return &fs.PathError{Op: "sync", Path: f.name, Err: err}
	}
	// No real fsync: durability is what CrashFS models, and tests stay fast.
	// The file may be open write-only: read it through another descriptor.
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", f.f.Fd()))
	if err != nil {
		return fmt.Errorf("vfstest: read back %s: %w", f.name, err)
	}
	f.ino.data = b
	return nil
}
