// SPDX-License-Identifier: Apache-2.0

package export

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// EMLReader reads .eml files from a directory tree or a zip file; the
// folder of a message is the directory it lies in, relative to the root.
// Files are read in path order; a zip is read entry by entry, each
// decompressed as a stream (a 1 GB zip needs no more memory than its
// largest message and the zip's directory).
type EMLReader struct {
	root  string
	files []string // directory: slash paths relative to root
	zr    *zip.ReadCloser
	zents []*zip.File
	i     int
	max   int64
}

// OpenEML opens a directory or a .zip of .eml files.
func OpenEML(p string, opts ReaderOptions) (*EMLReader, error) {
	r := &EMLReader{root: p, max: opts.max()}
	if isDir(p) {
		err := filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && strings.EqualFold(filepath.Ext(q), ".eml") {
				rel, err := filepath.Rel(p, q)
				if err != nil {
					return err
				}
				r.files = append(r.files, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("import: read %s: %w", p, err)
		}
		slices.Sort(r.files)
		return r, nil
	}
	zr, err := zip.OpenReader(p)
	if err != nil {
		return nil, fmt.Errorf("import: %s is neither a directory nor a zip file: %w", p, err)
	}
	r.zr = zr
	for _, f := range zr.File {
		if !f.FileInfo().IsDir() && strings.EqualFold(path.Ext(f.Name), ".eml") {
			r.zents = append(r.zents, f)
		}
	}
	return r, nil
}

// Progress returns the files read and their count.
func (r *EMLReader) Progress() (done, total int64) {
	return int64(r.i), int64(len(r.files) + len(r.zents))
}

// Close closes the zip file.
func (r *EMLReader) Close() error {
	if r.zr != nil {
		return r.zr.Close()
	}
	return nil
}

func folderOf(name string) string {
	d := path.Dir(name)
	if d == "." {
		return ""
	}
	return d
}

// Next returns the next message.
func (r *EMLReader) Next() (*Message, error) {
	if r.zr == nil {
		if r.i >= len(r.files) {
			return nil, io.EOF
		}
		name := r.files[r.i]
		r.i++
		raw, _, err := readFileMax(filepath.Join(r.root, filepath.FromSlash(name)), r.max)
		if err != nil {
			return nil, &ItemError{Folder: folderOf(name), Position: name, Err: err}
		}
		return &Message{Raw: raw, Folder: folderOf(name), Position: name}, nil
	}
	if r.i >= len(r.zents) {
		return nil, io.EOF
	}
	f := r.zents[r.i]
	r.i++
	pos := fmt.Sprintf("zip entry %s", f.Name)
	ie := func(err error) error { return &ItemError{Folder: folderOf(f.Name), Position: pos, Err: err} }
	if f.UncompressedSize64 > uint64(r.max) {
		return nil, ie(fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, f.UncompressedSize64, r.max))
	}
	rc, err := f.Open()
	if err != nil {
		return nil, ie(err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, r.max+1))
	if err != nil {
		return nil, ie(err) // includes zip.ErrChecksum
	}
	if int64(len(raw)) > r.max {
		return nil, ie(fmt.Errorf("%w: limit %d", ErrTooLarge, r.max))
	}
	return &Message{Raw: raw, Folder: folderOf(f.Name), Position: pos}, nil
}
