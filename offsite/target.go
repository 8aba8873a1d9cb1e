// SPDX-License-Identifier: Apache-2.0

package offsite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sealmail/sealmail/vfs"
)

// Target is where backups are kept: a store of named objects. Names are
// slash-separated paths (manifests/NNNNNNNN.json, data/…). It is a storage
// backend, as restic's is, hence more methods than a small interface: a
// directory ([Dir]) is one kind, an S3 bucket is to be another.
type Target interface {
	// Put makes name hold r's bytes, atomically and durably: when it
	// returns nil the object is complete and survives a power cut; before
	// that, readers see the object's old content or none, never a part.
	// It returns the bytes written.
	Put(ctx context.Context, name string, r io.Reader) (int64, error)
	// Open reads an object; a missing one is an error wrapping
	// fs.ErrNotExist.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns the names of the objects under prefix (a directory
	// name such as "data/"), in any order.
	List(ctx context.Context, prefix string) ([]string, error)
	// Remove removes an object; a missing one is not an error.
	Remove(ctx context.Context, name string) error
	// Lock makes the caller the target's only writer until it calls the
	// returned function, or fails with [ErrLocked].
	Lock(ctx context.Context) (unlock func(), err error)
}

// Dir is a [Target] in a local directory (a mounted NAS, a USB disk).
// Objects are files; writes go through a [vfs.FS], so that the power-loss
// harness can cut the power at any of them.
type Dir struct {
	root string
	fs   vfs.FS
}

var _ Target = (*Dir)(nil)

// dirEntries are the names a target directory may hold at its top.
var dirEntries = []string{"data", "manifests", "lock", "lost+found"}

// OpenDir returns the target in the directory root, which must exist (a
// backup to a NAS that is not mounted must fail, not fill the local disk)
// and hold nothing but a backup's files. fsys nil means the real file
// system.
func OpenDir(root string, fsys vfs.FS) (*Dir, error) {
	fsys = vfs.Or(fsys)
	root = filepath.Clean(root)
	fi, err := fsys.Stat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("backup target %s does not exist: create it on the volume the backups go to (is it mounted?)", root)
	}
	if err != nil {
		return nil, fmt.Errorf("backup target: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("backup target %s is not a directory", root)
	}
	des, err := fsys.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("backup target: %w", err)
	}
	for _, de := range des {
		if !slices.Contains(dirEntries, de.Name()) {
			return nil, fmt.Errorf("backup target %s holds %s, which is not part of a sealmail backup: choose an empty directory", root, de.Name())
		}
	}
	return &Dir{root: root, fs: fsys}, nil
}

// String returns the directory's path.
func (d *Dir) String() string { return d.root }

func (d *Dir) path(name string) (string, error) {
	if !ValidPath(name) {
		return "", fmt.Errorf("backup target: object name %q", name)
	}
	return filepath.Join(d.root, filepath.FromSlash(name)), nil
}

// Put writes name.tmp, fsyncs it, renames it to name and fsyncs the
// directory; missing directories are made durable first.
func (d *Dir) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	p, err := d.path(name)
	if err != nil {
		return 0, err
	}
	if err := d.mkdirs(filepath.Dir(p)); err != nil {
		return 0, fmt.Errorf("put %s: %w", name, err)
	}
	n, err := vfs.WriteFrom(ctx, d.fs, p, r, 0o600, nil)
	if err != nil {
		return n, fmt.Errorf("put %s: %w", name, err)
	}
	return n, nil
}

// mkdirs creates dir and its missing parents below the root, each made
// durable in its parent before the next.
func (d *Dir) mkdirs(dir string) error {
	var missing []string
	for p := dir; p != d.root && strings.HasPrefix(p, d.root); p = filepath.Dir(p) {
		if _, err := d.fs.Stat(p); err == nil {
			break
		}
		missing = append(missing, p)
	}
	for _, p := range slices.Backward(missing) {
		if err := d.fs.MkdirAll(p, 0o700); err != nil {
			return err
		}
		if err := d.fs.SyncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

// Open opens the object's file.
func (d *Dir) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	f, err := d.fs.OpenFile(p, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("backup target: %w", err)
	}
	return f, nil
}

// List walks the directory prefix. Temporary files of interrupted writes
// are not objects and are left out.
func (d *Dir) List(ctx context.Context, prefix string) ([]string, error) {
	prefix = strings.TrimSuffix(prefix, "/")
	top, err := d.path(prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	var walk func(dir, name string) error
	walk = func(dir, name string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		des, err := d.fs.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, de := range des {
			n := path.Join(name, de.Name())
			switch {
			case de.IsDir():
				if err := walk(filepath.Join(dir, de.Name()), n); err != nil {
					return err
				}
			case !strings.HasSuffix(n, vfs.TmpSuffix):
				out = append(out, n)
			}
		}
		return nil
	}
	if err := walk(top, prefix); err != nil {
		return nil, fmt.Errorf("backup target: list %s: %w", prefix, err)
	}
	return out, nil
}

// Remove removes the object's file, then its directories up to data/ or
// manifests/ while they are empty.
func (d *Dir) Remove(ctx context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := d.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup target: %w", err)
	}
	if err := d.fs.SyncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("backup target: %w", err)
	}
	for dir := filepath.Dir(p); strings.Count(strings.TrimPrefix(dir, d.root), string(filepath.Separator)) > 1; dir = filepath.Dir(dir) {
		if des, err := d.fs.ReadDir(dir); err != nil || len(des) > 0 {
			break
		}
		if err := d.fs.Remove(dir); err != nil {
			break // not empty after all, or gone: either way nothing to do
		}
		if err := d.fs.SyncDir(filepath.Dir(dir)); err != nil {
			return fmt.Errorf("backup target: %w", err)
		}
	}
	return nil
}

// removeTemps removes the temporary files that interrupted writes left.
func (d *Dir) removeTemps(ctx context.Context) error {
	for _, top := range []string{"data", "manifests"} {
		err := filepath.WalkDir(filepath.Join(d.root, top), func(p string, de fs.DirEntry, err error) error {
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return nil
			case err != nil:
				return err
			case ctx.Err() != nil:
				return ctx.Err()
			case !de.IsDir() && strings.HasSuffix(p, vfs.TmpSuffix):
				return d.fs.Remove(p)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Lock takes an exclusive flock on TARGET/lock (NFS v4 and SMB 3 servers
// support it), then removes the temporary files that interrupted writes
// left.
func (d *Dir) Lock(ctx context.Context) (func(), error) {
	l, err := vfs.Lock(d.fs, filepath.Join(d.root, "lock"), 0)
	if errors.Is(err, vfs.ErrLocked) {
		return nil, fmt.Errorf("%s: %w", d.root, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("backup target: %w", err)
	}
	unlock := func() { _ = l.Close() } // releasing a lock
	if err := d.removeTemps(ctx); err != nil {
		unlock()
		return nil, fmt.Errorf("backup target: remove leftovers: %w", err)
	}
	return unlock, nil
}
