// SPDX-License-Identifier: Apache-2.0

package export

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// EMLDir exports each message as one .eml file in a directory, byte-exact,
// with the manifest files beside them. Each message file is written and
// fsync'd by Add; Close writes the manifests and fsyncs the directory.
type EMLDir struct {
	dir string
	st  state
}

// NewEMLDir starts an EML export into dir, which must not exist (it is
// created, mode 0700, with its parents) or be an empty directory.
func NewEMLDir(dir string, opts Options) (*EMLDir, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("export: create directory %s: %w", dir, err)
		}
	case err != nil:
		return nil, fmt.Errorf("export: create directory %s: %w", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("export: create directory %s: exists and is not a directory", dir)
	default:
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("export: create directory %s: %w", dir, err)
		}
		if len(ents) > 0 {
			return nil, fmt.Errorf("export: create directory %s: not empty", dir)
		}
	}
	w := &EMLDir{dir: dir, st: newState(opts, "eml-dir", digestExported)}
	w.st.opts.Logger.Debug("export started", "format", "eml-dir", "path", dir)
	return w, nil
}

// Add writes it.Raw to <dir>/YYYYMMDD-HHMMSS-<id>.eml and fsyncs it. A
// failed Add leaves no file behind and the export usable.
func (w *EMLDir) Add(ctx context.Context, it Item) error {
	name := emlName(it)
	path := filepath.Join(w.dir, name)
	return w.st.add(ctx, it, name, path, false, func() error { return writeFileSync(path, it.Raw) })
}

// Close writes manifest.csv, manifest.json and manifest.sha256 (which
// lists every message file and both manifests) and fsyncs the directory.
func (w *EMLDir) Close() error { return w.st.finish(w.close) }

func (w *EMLDir) close() error {
	create := func(name string) (io.Writer, func() error, error) {
		path := filepath.Join(w.dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("export: create %s: %w", path, err)
		}
		return f, func() error {
			err := f.Sync()
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("export: sync %s: %w", path, err)
			}
			return nil
		}, nil
	}
	if err := emitManifest(&w.st.man, w.st.opts.Now(), "", messageFiles(&w.st.man), create); err != nil {
		return err
	}
	if err := syncDir(w.dir); err != nil {
		return err
	}
	if err := syncDir(parentDir(w.dir)); err != nil {
		return err
	}
	w.st.opts.Logger.Info("export finished", "format", "eml-dir", "path", w.dir, "count", w.st.man.Count)
	return nil
}

// Manifest returns a copy of the manifest so far.
func (w *EMLDir) Manifest() Manifest { return w.st.manifest() }

// messageFiles lists the message files of an EML export for
// manifest.sha256.
func messageFiles(m *Manifest) []FileDigest {
	out := make([]FileDigest, 0, len(m.Messages)+2)
	for _, r := range m.Messages {
		out = append(out, FileDigest{Name: r.File, Size: r.Size, SHA256: r.SHA256})
	}
	return out
}

// EMLZip exports each message as one .eml entry of a zip archive, with the
// manifest files as entries beside them. Messages are stored (zip method
// 0, no compression), so each entry's bytes in the archive are the
// original bytes and any unzip tool extracts them unchanged; the manifest
// entries are deflated. Zip64 is used when needed.
type EMLZip struct {
	path string
	f    *os.File
	sum  *countHash // hashes the archive as written
	zw   *zip.Writer
	st   state
}

// NewEMLZip creates the zip archive at path, which must not exist.
func NewEMLZip(path string, opts Options) (*EMLZip, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("export: create %s: %w", path, err)
	}
	sum := &countHash{w: f, h: sha256.New()}
	w := &EMLZip{path: path, f: f, sum: sum, zw: zip.NewWriter(sum), st: newState(opts, "eml-zip", digestExported)}
	w.st.opts.Logger.Debug("export started", "format", "eml-zip", "path", path)
	return w, nil
}

// Add appends it.Raw as the entry YYYYMMDD-HHMMSS-<id>.eml. An I/O error
// damages the archive: later Adds and Close return it.
func (w *EMLZip) Add(ctx context.Context, it Item) error {
	name := emlName(it)
	return w.st.add(ctx, it, name, w.path, true, func() error { return w.writeEntry(name, it) })
}

// writeEntry adds one stored (uncompressed) zip entry.
func (w *EMLZip) writeEntry(name string, it Item) error {
	hdr := &zip.FileHeader{
		Name:               name,
		Method:             zip.Store,
		CRC32:              crc32.ChecksumIEEE(it.Raw),
		CompressedSize64:   uint64(len(it.Raw)),
		UncompressedSize64: uint64(len(it.Raw)),
	}
	setModified(hdr, it)
	hdr.SetMode(0o600)
	// CreateRaw with the sizes and CRC known up front writes no data
	// descriptor, the most widely readable form of a stored entry.
	ew, err := w.zw.CreateRaw(hdr)
	if err == nil {
		_, err = ew.Write(it.Raw)
	}
	return err
}

// Close writes the manifest entries and the zip central directory, then
// fsyncs the archive and its directory.
func (w *EMLZip) Close() error { return w.st.finish(w.close) }

func (w *EMLZip) close() error {
	if w.st.err != nil {
		w.f.Close()
		return w.st.err
	}
	now := w.st.opts.Now()
	create := func(name string) (io.Writer, func() error, error) {
		hdr := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: now.UTC()}
		hdr.SetMode(0o600)
		ew, err := w.zw.CreateHeader(hdr)
		if err != nil {
			return nil, nil, fmt.Errorf("export: write %s in %s: %w", name, w.path, err)
		}
		return ew, func() error { return nil }, nil
	}
	if err := emitManifest(&w.st.man, now, "", messageFiles(&w.st.man), create); err != nil {
		w.f.Close()
		return err
	}
	err := w.zw.Close()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export: finish %s: %w", w.path, err)
	}
	w.st.man.Output = FileDigest{Name: filepath.Base(w.path), Size: w.sum.n, SHA256: hex.EncodeToString(w.sum.h.Sum(nil))}
	if err := syncDir(parentDir(w.path)); err != nil {
		return err
	}
	w.st.opts.Logger.Info("export finished", "format", "eml-zip", "path", w.path, "count", w.st.man.Count)
	return nil
}

// Manifest returns a copy of the manifest so far.
func (w *EMLZip) Manifest() Manifest { return w.st.manifest() }

// setModified sets the entry time to the received time (UTC) when the zip
// MS-DOS date field can hold it (1980–2107). [zip.Writer.CreateRaw], unlike
// CreateHeader, does not derive the MS-DOS fields from Modified, so they are
// set here (APPNOTE.TXT 4.4.6: date = day | month<<5 | (year-1980)<<9,
// time = seconds/2 | minute<<5 | hour<<11).
func setModified(hdr *zip.FileHeader, it Item) {
	t := it.Received.UTC()
	if y := t.Year(); y >= 1980 && y <= 2107 {
		hdr.Modified = t
		//lint:ignore SA1019 CreateRaw reads only these fields for the entry time.
		hdr.ModifiedDate = uint16(t.Day() | int(t.Month())<<5 | (y-1980)<<9)
		//lint:ignore SA1019 CreateRaw reads only these fields for the entry time.
		hdr.ModifiedTime = uint16(t.Second()/2 | t.Minute()<<5 | t.Hour()<<11)
	}
}
