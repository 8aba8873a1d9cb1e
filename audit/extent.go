// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Extent is one log file and how many of its bytes a copy of the log takes.
type Extent struct {
	Name string // audit-NNNNNN.jsonl
	Size int64
	// Last marks the file the copy ends in: the copy takes it up to the end
	// of one line, and the log may still grow past it. The files before it
	// were rotated and never change again.
	Last bool
}

// Extents returns the files of the log in dir that hold entries 1 to seq,
// the last one cut just after the line of entry seq: what a copy of the log
// as of that entry holds (a backup copies it up to a checkpoint entry). It
// only reads, while a [Log] appends. It fails if entry seq is not in the
// log yet.
func Extents(dir string, seq uint64) ([]Extent, error) {
	ns, err := listFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: extents of %s: %w", dir, err)
	}
	for i := len(ns) - 1; i >= 0; i-- {
		end, found, err := lineEnd(filepath.Join(dir, fileName(ns[i])), seq)
		if err != nil {
			return nil, fmt.Errorf("audit: extents of %s: %w", dir, err)
		}
		if !found {
			continue
		}
		out := make([]Extent, 0, i+1)
		for _, n := range ns[:i] {
			fi, err := os.Stat(filepath.Join(dir, fileName(n)))
			if err != nil {
				return nil, fmt.Errorf("audit: extents of %s: %w", dir, err)
			}
			out = append(out, Extent{Name: fileName(n), Size: fi.Size()})
		}
		return append(out, Extent{Name: fileName(ns[i]), Size: end, Last: true}), nil
	}
	return nil, fmt.Errorf("audit: extents of %s: entry %d is not in the log", dir, seq)
}

// lineEnd returns the offset just past the line of entry seq in the log
// file at path; found is false when the file's entries all come after seq
// (or it has none yet), and an error when seq should be in it but is not.
func lineEnd(path string, seq uint64) (int64, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	lr := newLineReader(f)
	var off int64
	for lineNo := 1; ; lineNo++ {
		l, err := lr.next()
		if errors.Is(err, io.EOF) || err == nil && !l.complete {
			if lineNo <= 2 {
				return 0, false, nil // no complete entry yet
			}
			return 0, false, fmt.Errorf("%s: entry %d not found", filepath.Base(path), seq)
		}
		if err != nil {
			return 0, false, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		off += l.size
		if lineNo == 1 {
			continue
		}
		e, err := parseEntry(l.b, false)
		if err != nil {
			return 0, false, fmt.Errorf("%s line %d: %w: %w", filepath.Base(path), lineNo, ErrCorrupt, err)
		}
		switch {
		case lineNo == 2 && e.Seq > seq:
			return 0, false, nil
		case e.Seq == seq:
			return off, true, nil
		case e.Seq > seq:
			return 0, false, fmt.Errorf("%s: entry %d not found (line %d has %d)", filepath.Base(path), seq, lineNo, e.Seq)
		}
	}
}
