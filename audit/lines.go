// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Lines reads the log's entry lines as they are stored, byte for byte, for
// a reader in another process that checks the hash chain itself (the
// reader service tails the log through the control socket). It remembers
// where the last read stopped, so that reading on from there does not scan
// the file again. It reads without locking, like [Read], and is safe for
// concurrent use.
type Lines struct {
	dir string

	mu    sync.Mutex
	first map[int]uint64 // file number → seq of its first entry, once it has one
	pos   linePos        // where the last Read stopped
}

type linePos struct {
	seq  uint64 // the last line read
	file int
	off  int64 // just after it
}

// NewLines returns a line reader of the log in dir.
func NewLines(dir string) *Lines { return &Lines{dir: dir, first: make(map[int]uint64)} }

// Genesis returns the first file's header line, without its newline: entry
// 1's prev is its hash ([HashLine]).
func (l *Lines) Genesis() ([]byte, error) {
	f, err := os.Open(filepath.Join(l.dir, fileName(1)))
	if err != nil {
		return nil, fmt.Errorf("audit: genesis: %w", err)
	}
	defer f.Close()
	line, err := newLineReader(f).next()
	if err != nil || !line.complete || line.tooLong {
		return nil, fmt.Errorf("audit: genesis: %s has no complete header line: %w", fileName(1), ErrCorrupt)
	}
	return bytes.Clone(line.b), nil
}

// Read calls fn with the seq and the stored bytes (without the newline) of
// each entry line after seq after, up to and including seq upTo, oldest
// first. fn returns true when it took the line and wants the next, false
// when it did not take it and reading stops. The bytes are valid during
// the call only.
// It stops at the last complete line. The seq is read from the line's start;
// the caller checks the chain.
func (l *Lines) Read(ctx context.Context, after, upTo uint64, fn func(seq uint64, line []byte) bool) error {
	if after >= upTo {
		return nil
	}
	ns, err := listFiles(l.dir)
	if err != nil {
		return fmt.Errorf("audit: read lines: %w", err)
	}
	l.mu.Lock()
	pos := l.pos
	l.mu.Unlock()
	file, off := 0, int64(0)
	if pos.seq == after && pos.file != 0 {
		file, off = pos.file, pos.off
	} else if file, err = l.fileOf(ns, after+1); err != nil {
		return err
	}
	last := ns[len(ns)-1]
	for ; file <= last; file, off = file+1, 0 {
		stop, err := l.readFile(ctx, file, off, after, upTo, fn)
		if err != nil || stop {
			return err
		}
	}
	return nil
}

// readFile reads file n from off (0: after its header), calling fn for
// lines with seq in (after, upTo]. It reports whether reading is done.
func (l *Lines) readFile(ctx context.Context, n int, off int64, after, upTo uint64, fn func(uint64, []byte) bool) (bool, error) {
	name := fileName(n)
	f, err := os.Open(filepath.Join(l.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("audit: read lines: %s is missing: %w", name, ErrCorrupt)
	}
	if err != nil {
		return false, fmt.Errorf("audit: read lines: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return false, fmt.Errorf("audit: read lines: %w", err)
	}
	lr := newLineReader(f)
	for i := 0; ; i++ {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return false, err
			}
		}
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("audit: read %s: %w", name, err)
		}
		if !line.complete {
			return true, nil // being written
		}
		start := off
		off += line.size
		if start == 0 {
			continue // the header
		}
		if line.tooLong {
			return false, fmt.Errorf("audit: read %s at %d: %w: line exceeds %d bytes", name, start, ErrCorrupt, MaxLineBytes)
		}
		seq, err := lineSeq(line.b)
		if err != nil {
			return false, fmt.Errorf("audit: read %s at %d: %w: %w", name, start, ErrCorrupt, err)
		}
		if seq <= after {
			continue
		}
		if seq > upTo {
			return true, nil
		}
		if !fn(seq, line.b) {
			return true, nil
		}
		l.mu.Lock()
		l.pos = linePos{seq: seq, file: n, off: off}
		l.mu.Unlock()
		if seq == upTo {
			return true, nil
		}
	}
}

// fileOf returns the file that holds entry seq: the newest file whose
// first entry is at most seq.
func (l *Lines) fileOf(ns []int, seq uint64) (int, error) {
	for i := len(ns) - 1; i >= 0; i-- {
		first, ok, err := l.firstSeq(ns[i])
		if err != nil {
			return 0, err
		}
		if ok && first <= seq {
			return ns[i], nil
		}
	}
	return ns[0], nil
}

// firstSeq returns the seq of file n's first entry; ok is false while it
// has none.
func (l *Lines) firstSeq(n int) (uint64, bool, error) {
	l.mu.Lock()
	first, ok := l.first[n]
	l.mu.Unlock()
	if ok {
		return first, true, nil
	}
	f, err := os.Open(filepath.Join(l.dir, fileName(n)))
	if err != nil {
		return 0, false, fmt.Errorf("audit: read lines: %w", err)
	}
	defer f.Close()
	lr := newLineReader(f)
	if _, err := lr.next(); err != nil { // the header
		return 0, false, nil
	}
	line, err := lr.next()
	if err != nil || !line.complete {
		return 0, false, nil
	}
	if first, err = lineSeq(line.b); err != nil {
		return 0, false, fmt.Errorf("audit: read %s line 2: %w: %w", fileName(n), ErrCorrupt, err)
	}
	l.mu.Lock()
	l.first[n] = first
	l.mu.Unlock()
	return first, true, nil
}

// lineSeq reads the seq at the start of an entry line: {"seq":N,…
func lineSeq(line []byte) (uint64, error) {
	rest, ok := bytes.CutPrefix(line, []byte(`{"seq":`))
	if !ok {
		return 0, errors.New(`entry line: no {"seq":N at its start`)
	}
	end := bytes.IndexByte(rest, ',')
	if end < 1 {
		return 0, errors.New("entry line: no seq")
	}
	return strconv.ParseUint(string(rest[:end]), 10, 64)
}

// HashLine returns the hash of a stored line (without its newline), as the
// next entry's prev records it.
func HashLine(line []byte) Hash { return hashLine(line) }

// ParseHeader parses a file's header line and returns the archive id it
// names and its file number.
func ParseHeader(line []byte) (archive string, file int, err error) {
	h, err := parseHeader(line)
	if err != nil {
		return "", 0, err
	}
	return h.Archive, h.File, nil
}

// CheckpointOf returns the checkpoint a checkpoint entry carries, without
// checking its signature ([Checkpoint.Verify] does).
func CheckpointOf(e Entry) (Checkpoint, error) { return checkpointFromEntry(e) }
