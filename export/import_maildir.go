// SPDX-License-Identifier: Apache-2.0

package export

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaildirReader reads every message of a Maildir tree: the maildir at the
// root (folder "INBOX") and every directory below it that holds cur/ or
// new/ — Maildir++ folders (".Sent", ".Archive.2019": folder "Sent",
// "Archive/2019") and plain nested maildirs (folder = the relative path).
// tmp/ is never read: it holds deliveries in progress. Folders are read in
// name order, and in each folder cur/ then new/ in file name order, one
// file at a time.
type MaildirReader struct {
	root    string
	folders []maildirFolder
	files   []string // of the current folder, relative to its dir
	fi      int
	max     int64
}

type maildirFolder struct{ dir, name string }

// OpenMaildir lists the folders of the Maildir tree at root.
func OpenMaildir(root string, opts ReaderOptions) (*MaildirReader, error) {
	r := &MaildirReader{root: root, max: opts.max()}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		switch d.Name() {
		case "cur", "new", "tmp":
			if p != root {
				return fs.SkipDir
			}
		}
		if isDir(filepath.Join(p, "cur")) || isDir(filepath.Join(p, "new")) {
			r.folders = append(r.folders, maildirFolder{dir: p, name: maildirFolderName(root, p)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("import: read maildir %s: %w", root, err)
	}
	if len(r.folders) == 0 {
		return nil, fmt.Errorf("import: %s is not a Maildir: no cur/ or new/ in it or below it", root)
	}
	slices.SortFunc(r.folders, func(a, b maildirFolder) int { return strings.Compare(a.name, b.name) })
	return r, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func maildirFolderName(root, dir string) string {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == "." {
		return "INBOX"
	}
	rel = filepath.ToSlash(rel)
	if !strings.Contains(rel, "/") && strings.HasPrefix(rel, ".") {
		// Maildir++: .Parent.Child
		return strings.ReplaceAll(strings.TrimPrefix(rel, "."), ".", "/")
	}
	return rel
}

// Close releases nothing; it exists for [Reader].
func (r *MaildirReader) Close() error { return nil }

// Next returns the next message.
func (r *MaildirReader) Next() (*Message, error) {
	for r.fi >= len(r.files) {
		if len(r.folders) == 0 {
			return nil, io.EOF
		}
		if r.files != nil {
			r.folders = r.folders[1:]
			r.files, r.fi = nil, 0
			if len(r.folders) == 0 {
				return nil, io.EOF
			}
		}
		var files []string
		for _, sub := range []string{"cur", "new"} {
			ents, err := os.ReadDir(filepath.Join(r.folders[0].dir, sub))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("import: read maildir folder %s: %w", r.folders[0].name, err)
			}
			for _, e := range ents {
				if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
					files = append(files, sub+"/"+e.Name())
				}
			}
		}
		r.files = append(files, []string(nil)...)
		if r.files == nil {
			r.files = []string{}
		}
	}
	f := r.folders[0]
	name := r.files[r.fi]
	r.fi++
	p := filepath.Join(f.dir, filepath.FromSlash(name))
	raw, mtime, err := readFileMax(p, r.max)
	if err != nil {
		return nil, &ItemError{Folder: f.name, Position: name, Err: err}
	}
	received := maildirTime(filepath.Base(name))
	if received.IsZero() {
		received = mtime
	}
	return &Message{Raw: raw, Folder: f.name, Received: received, Position: name}, nil
}

// maildirTime reads the delivery time from a maildir file name
// ("1700000000.M12P34.host:2,S": seconds since the epoch first).
func maildirTime(name string) time.Time {
	i := strings.IndexByte(name, '.')
	if i <= 0 {
		return time.Time{}
	}
	s, err := strconv.ParseInt(name[:i], 10, 64)
	if err != nil || s <= 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// readFileMax reads a whole file of at most max bytes.
func readFileMax(p string, max int64) ([]byte, time.Time, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	if fi.Size() > max {
		return nil, time.Time{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, fi.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, time.Time{}, err
	}
	if int64(len(b)) > max {
		return nil, time.Time{}, fmt.Errorf("%w: limit %d", ErrTooLarge, max)
	}
	return b, fi.ModTime().UTC(), nil
}
