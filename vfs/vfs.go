// SPDX-License-Identifier: Apache-2.0

package vfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// File is an open file: the part of *os.File that writers use.
type File interface {
	io.Reader
	io.Writer
	io.ReaderAt
	io.Closer
	Sync() error
	Truncate(size int64) error
	Stat() (fs.FileInfo, error)
	Chmod(mode fs.FileMode) error
}

// FS is the file system a writer changes. Every method that changes
// something (OpenFile with O_CREATE or O_TRUNC, Rename, Remove, MkdirAll,
// Chmod, SyncDir, and the returned file's Write, Sync, Truncate and Chmod)
// is a point at which a test may cut the power. Paths are host paths.
type FS interface {
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	MkdirAll(path string, perm fs.FileMode) error
	ReadDir(name string) ([]fs.DirEntry, error)
	Stat(name string) (fs.FileInfo, error)
	Chmod(name string, mode fs.FileMode) error
	// SyncDir makes the directory's entries durable: the files created,
	// renamed into or removed from it.
	SyncDir(dir string) error
	// TryLock takes an exclusive lock on the file name (created if
	// missing) without waiting; it returns [ErrLocked] if another process
	// holds it.
	TryLock(name string) (io.Closer, error)
}

// ErrLocked reports a lock file held by another process.
var ErrLocked = errors.New("vfs: locked by another process")

// OS is the real file system.
type OS struct{}

var _ FS = OS{}

// Or returns fsys, or [OS] if fsys is nil: the zero value of an Options
// field means the real file system.
func Or(fsys FS) FS {
	if fsys == nil {
		return OS{}
	}
	return fsys
}

// OpenFile calls os.OpenFile.
func (OS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // a nil *os.File must not become a non-nil File
	}
	return f, nil
}

// Rename calls os.Rename.
func (OS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove calls os.Remove.
func (OS) Remove(name string) error { return os.Remove(name) }

// MkdirAll calls os.MkdirAll.
func (OS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

// ReadDir calls os.ReadDir.
func (OS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// Stat calls os.Stat.
func (OS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// Chmod calls os.Chmod.
func (OS) Chmod(name string, mode fs.FileMode) error { return os.Chmod(name, mode) }

// SyncDir opens dir and fsyncs it.
func (OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// TryLock takes a non-blocking exclusive flock on name.
func (OS) TryLock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := tryFlock(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// TmpSuffix is the suffix of the temporary file [WriteFile] renames into
// place; a leftover one is the trace of an interrupted WriteFile and may be
// removed.
const TmpSuffix = ".tmp"

// WriteFile replaces (or creates) path with data atomically and durably:
// path.tmp is written and fsync'd, renamed to path, and path's directory is
// fsync'd. After a crash path holds either its old content or data, never a
// mix; a leftover path.tmp may be removed. fsys nil means [OS].
func WriteFile(fsys FS, path string, data []byte, perm fs.FileMode) error {
	fsys = Or(fsys)
	tmp := path + TmpSuffix
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return fsys.SyncDir(filepath.Dir(path))
}

// WriteFrom is [WriteFile] for content that comes from r: path.tmp gets
// r's bytes (until EOF or ctx's end), is fsync'd and given perm exactly,
// and, if check (when not nil) accepts the count, is renamed to path, whose
// directory is fsync'd. It returns the bytes written. On any error
// path.tmp is removed and path is as before.
func WriteFrom(ctx context.Context, fsys FS, path string, r io.Reader, perm fs.FileMode, check func(n int64) error) (int64, error) {
	fsys = Or(fsys)
	tmp := path + TmpSuffix
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	n, err := io.Copy(f, ContextReader(ctx, r))
	if err == nil && check != nil {
		err = check(n)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		_ = fsys.Remove(tmp) // the error above is the one to report
		return n, fmt.Errorf("write %s: %w", path, err)
	}
	return n, nil
}

// SyncDir fsyncs the directory dir; fsys nil means [OS].
func SyncDir(fsys FS, dir string) error { return Or(fsys).SyncDir(dir) }

// Lock takes an exclusive lock on the file name (created if missing),
// waiting up to wait for another process to release it (0: do not wait).
// It returns an error wrapping [ErrLocked] if the lock stays held. Closing
// the returned Closer releases the lock; so does the process's exit.
func Lock(fsys FS, name string, wait time.Duration) (io.Closer, error) {
	fsys = Or(fsys)
	deadline := time.Now().Add(wait)
	for {
		l, err := fsys.TryLock(name)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		time.Sleep(min(20*time.Millisecond, time.Until(deadline)+time.Millisecond))
	}
}
