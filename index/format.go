// SPDX-License-Identifier: Apache-2.0

package index

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sealmail/sealmail/vfs"
)

// FormatVersion is the version of the index's on-disk mapping (the fields,
// their options and encodings; docs/format.md, "Full-text index"). Any
// change of them is a new version: an index of another version is removed
// by [Open] and rebuilt by its caller.
const FormatVersion = 2

// formatFile names the file in the index directory that holds
// "sealmail-index VERSION\n". An index without it is of version 1.
const formatFile = "FORMAT"

const formatMagic = "sealmail-index "

// DirVersion is the format version of the index in dir: 0 if there is no
// index there yet (a missing or empty directory). [Open] removes an index
// of a version below [FormatVersion]; a caller that must record that first
// asks here.
func DirVersion(dir string) (int, error) {
	v, _, err := dirVersion(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return v, err
}

// dirVersion is [DirVersion] with the directory's entries but LOCK.
func dirVersion(dir string) (int, []os.DirEntry, error) {
	version := 0 // no index yet
	b, err := os.ReadFile(filepath.Join(dir, formatFile))
	switch {
	case err == nil:
		v, ok := strings.CutPrefix(strings.TrimSuffix(string(b), "\n"), formatMagic)
		n, perr := strconv.Atoi(v)
		if !ok || perr != nil || n < 1 {
			return 0, nil, fmt.Errorf("index: %s: not a format file: %q", formatFile, b)
		}
		version = n
	case errors.Is(err, fs.ErrNotExist):
	default:
		return 0, nil, fmt.Errorf("index: read %s: %w", formatFile, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, nil, fmt.Errorf("index: read %s: %w", dir, err)
	}
	ents = slices.DeleteFunc(ents, func(e os.DirEntry) bool { return e.Name() == "LOCK" })
	if version == 0 && len(ents) > 0 {
		version = 1 // an index from before the FORMAT file
	}
	return version, ents, nil
}

// checkFormat makes dir an index of [FormatVersion]: an empty directory
// gets the FORMAT file; one of an older version loses every file but
// LOCK (the caller holds it), then gets the FORMAT file, so that after a
// crash in between the next Open removes the rest again. A newer version is refused with
// [ErrUnsupportedVersion]: this sealmail cannot read it and must not
// destroy it.
func checkFormat(dir string, log *slog.Logger) error {
	version, ents, err := dirVersion(dir)
	if err != nil {
		return err
	}
	if version == FormatVersion {
		return nil
	}
	if version > FormatVersion {
		return fmt.Errorf("index: format version %d, this sealmail reads %d: %w", version, FormatVersion, ErrUnsupportedVersion)
	}
	if version > 0 {
		log.Info("index: removing an index of an older format version; its documents are indexed again",
			"dir", dir, "version", version, "current", FormatVersion)
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("index: remove the version-%d index: %w", version, err)
			}
		}
	}
	if err := vfs.WriteFile(nil, filepath.Join(dir, formatFile), fmt.Appendf(nil, "%s%d\n", formatMagic, FormatVersion), 0o600); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}
