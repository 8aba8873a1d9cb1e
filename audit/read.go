// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Filter selects entries for [Read]. The zero value selects every entry.
type Filter struct {
	// Since and Until, when not zero, keep entries with Since <= Time < Until.
	Since, Until time.Time
	// Types, when not empty, keeps entries whose type is listed.
	Types []string
	// FromSeq keeps entries with Seq >= FromSeq; BeforeSeq, when not
	// zero, entries with Seq < BeforeSeq.
	FromSeq, BeforeSeq uint64
	// Actor, when not empty, keeps entries whose actor is Actor, or a
	// person of that user name as the reader names them ("alice
	// (officer)" for alice).
	Actor string
}

// Match reports whether f selects e.
func (f Filter) Match(e Entry) bool {
	switch {
	case e.Seq < f.FromSeq:
		return false
	case f.BeforeSeq != 0 && e.Seq >= f.BeforeSeq:
		return false
	case f.Actor != "" && e.Actor != f.Actor && !strings.HasPrefix(e.Actor, f.Actor+" ("):
		return false
	case !f.Since.IsZero() && e.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && !e.Time.Before(f.Until):
		return false
	case len(f.Types) > 0 && !slices.Contains(f.Types, e.Type):
		return false
	}
	return true
}

// Read calls fn for every entry that f selects, oldest first. It reads
// without locking, so it works while a [Log] appends: it stops at the last
// complete line. If fn returns an error Read stops and returns it unwrapped,
// so callers may stop early with a sentinel of their own.
//
// Read does not check the hash chain or signatures ([Verify] does); it fails
// with [ErrCorrupt] on a line that does not parse and with
// [ErrUnsupportedVersion] on a file of an unknown format version.
func Read(ctx context.Context, dir string, f Filter, fn func(Entry) error) error {
	return ReadFS(ctx, os.DirFS(dir), dir, f, fn)
}

// ReadFS is [Read] over the log files at the root of fsys (a backup's copy
// of a log, for one); name says in errors which log it is.
func ReadFS(ctx context.Context, fsys fs.FS, name string, f Filter, fn func(Entry) error) error {
	ns, err := listFilesFS(fsys, name)
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", name, err)
	}
	for _, n := range ns {
		stop, err := readFile(ctx, fsys, n, f, fn)
		if err != nil || stop {
			return err
		}
	}
	return nil
}

func readFile(ctx context.Context, fsys fs.FS, n int, f Filter, fn func(Entry) error) (bool, error) {
	name := fileName(n)
	fh, err := fsys.Open(name)
	if err != nil {
		return false, fmt.Errorf("audit: read %s: %w", name, err)
	}
	defer func() { _ = fh.Close() }() // read-only
	lr := newLineReader(fh)
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		l, err := lr.next()
		if errors.Is(err, io.EOF) || err == nil && !l.complete {
			return false, nil // end, or a line still being written
		}
		if err != nil {
			return false, fmt.Errorf("audit: read %s: %w", name, err)
		}
		if lineNo == 1 {
			if _, err := parseHeader(l.b); err != nil {
				if errors.Is(err, ErrUnsupportedVersion) {
					return false, fmt.Errorf("audit: read %s: %w", name, err)
				}
				return false, fmt.Errorf("audit: read %s line 1: %w: %w", name, ErrCorrupt, err)
			}
			continue
		}
		if l.tooLong {
			return false, fmt.Errorf("audit: read %s line %d: %w: line exceeds %d bytes", name, lineNo, ErrCorrupt, MaxLineBytes)
		}
		e, err := ParseEntry(l.b)
		if err != nil {
			return false, fmt.Errorf("audit: read %s line %d: %w: %w", name, lineNo, ErrCorrupt, err)
		}
		if !f.Match(e) {
			continue
		}
		if err := fn(e); err != nil {
			return true, err
		}
	}
}

// scanBack calls fn for entries from the newest backwards, over at most
// maxFiles files (0: all), until fn returns false. A torn final line is
// skipped.
func scanBack(dir string, ns []int, maxFiles int, fn func(Entry) bool) error {
	return scanBackFields(dir, ns, maxFiles, false, fn)
}

// ReadBack calls fn for the entries of the log in dir, newest first, until
// fn returns false. Like [Read] it reads without locking and stops at the
// last complete line; it does not check the chain.
func ReadBack(dir string, fn func(Entry) bool) error {
	ns, err := listFiles(dir)
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", dir, err)
	}
	if err := scanBackFields(dir, ns, 0, true, fn); err != nil {
		return fmt.Errorf("audit: read %s: %w", dir, err)
	}
	return nil
}

func scanBackFields(dir string, ns []int, maxFiles int, withFields bool, fn func(Entry) bool) error {
	for i := len(ns) - 1; i >= 0; i-- {
		if maxFiles > 0 && len(ns)-i > maxFiles {
			return nil
		}
		name := fileName(ns[i])
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		b = b[:bytes.LastIndexByte(b, '\n')+1] // drop a torn or in-progress line
		lines := bytes.Split(b, []byte("\n"))
		lines = lines[:len(lines)-1] // the empty piece after the last newline
		for j := len(lines) - 1; j >= 1; j-- {
			e, err := parseEntry(lines[j], withFields)
			if err != nil {
				return fmt.Errorf("%s line %d: %w: %w", name, j+1, ErrCorrupt, err)
			}
			if !fn(e) {
				return nil
			}
		}
	}
	return nil
}
