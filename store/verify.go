// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sealmail/sealmail"
)

// Finding is one problem [Store.Verify] found.
type Finding struct {
	Segment SegmentSeq         // 0 when not about a segment
	Offset  int64              // of the record; -1 when not about one
	ID      sealmail.MessageID // 0 when not about a message
	Problem string
}

func (f Finding) String() string {
	s := ""
	if f.Segment != 0 {
		s += "segment " + f.Segment.String()
		if f.Offset >= 0 {
			s += fmt.Sprintf(" offset %d", f.Offset)
		}
		s += ": "
	}
	if f.ID != 0 {
		s += fmt.Sprintf("message %d: ", f.ID)
	}
	return s + f.Problem
}

// VerifyResult summarises a [Store.Verify] run.
type VerifyResult struct {
	Segments int
	Sealed   int
	Records  int64
	Entries  int64
	Bytes    int64
	// Committed is each segment's committed length when the run started:
	// what it covers.
	Committed map[SegmentSeq]int64
	Findings  []Finding
}

// Verify reads every segment and checks segment headers, every record's
// CRCs, each sealed segment's SHA-256 against the catalog, and that the
// catalog and the segments agree both ways: every catalog entry points at a
// valid record entry of that message, and every record entry is cataloged.
// fn, if not nil, is called for each valid record so that the caller can
// check it against its own records (the audit log). Verify may run while
// appends go on: it covers what was committed when it started.
//
// Verify holds off compaction while it runs: a compaction between reading
// the segment table, the files and the catalog would look like a missing or
// altered record.
func (s *Store) Verify(ctx context.Context, fn func(SegmentInfo, ScannedRecord)) (*VerifyResult, error) {
	s.compactMu.RLock()
	defer s.compactMu.RUnlock()
	if s.testVerifyHook != nil {
		s.testVerifyHook()
	}
	segs, err := s.Segments()
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{Committed: make(map[SegmentSeq]int64)}
	add := func(seg SegmentSeq, off int64, id sealmail.MessageID, format string, v ...any) {
		res.Findings = append(res.Findings, Finding{Segment: seg, Offset: off, ID: id, Problem: fmt.Sprintf(format, v...)})
	}
	known := make(map[string]bool)
	for _, si := range segs {
		known[si.path(s.dir)] = true
		res.Committed[si.Seq] = si.Size
	}
	names, _ := filepath.Glob(filepath.Join(s.dir, "segments", "*.seg"))
	for _, n := range names {
		if !known[n] {
			add(0, -1, 0, "file %s is not a segment the catalog knows", n)
		}
	}

	// Every valid entry found in the segments, by location.
	seen := make(map[Location]Entry)
	for _, si := range segs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res.Segments++
		if si.State == SegmentSealed {
			res.Sealed++
		}
		s.verifySegment(si, seen, res, add, fn)
	}

	// Catalog → segments.
	v, done, err := s.snapshot()
	if err != nil {
		return nil, err
	}
	err = v.forEachMessage(0, func(m *MessageInfo) (bool, error) {
		id := m.ID
		if m.Location.Offset+m.Location.Length > res.Committed[m.Location.Segment] {
			return true, nil // committed after this run started
		}
		check := func(l Location, kind Kind, what string) {
			e, ok := seen[l]
			if m.State == StateDeleted && (!ok || e.ID != id || e.Kind != kind) {
				return // its record was compacted away
			}
			switch {
			case !ok:
				add(l.Segment, l.Offset, id, "the catalog's %s points at entry %d of a record that is missing or damaged", what, l.Entry)
			case e.ID != id || e.Kind != kind:
				add(l.Segment, l.Offset, id, "the catalog's %s points at a %s entry of message %d", what, e.Kind, e.ID)
			case e.Digest != m.Digest:
				add(l.Segment, l.Offset, id, "the %s's keyed digest differs from the catalog's", what)
			}
			delete(seen, l)
		}
		check(m.Location, KindMessage, "message")
		for n := 2; n <= m.Receipts; n++ {
			l, err := v.envelope(id, n)
			if errors.Is(err, ErrNotFound) && m.State == StateDeleted {
				continue // compacted away before a recover, which cannot know where it was
			}
			if err != nil {
				add(0, -1, id, "receipt %d: catalog location unreadable: %v", n, err)
				continue
			}
			check(l, KindEnvelope, fmt.Sprintf("receipt %d", n))
		}
		return true, nil
	}, func(id sealmail.MessageID, err error) {
		add(0, -1, id, "catalog entry unreadable: %v", err)
	})
	done()
	if err != nil {
		return nil, err
	}
	if r := s.replayed; r.entries > 0 {
		add(r.seq, r.from, 0, "%d bytes after the committed length in catalog.db (%d entries, shown from the segment here): "+
			"commits whose catalog changes a crash lost, which the daemon replays at its next start, or a catalog older than the segment",
			r.to-r.from, r.entries)
	}
	// Segments → catalog.
	for l, e := range seen {
		if e.Kind != KindTombstone {
			add(l.Segment, l.Offset, e.ID, "%s entry %d is not in the catalog", e.Kind, l.Entry)
		}
	}
	return res, nil
}

func (s *Store) verifySegment(si SegmentInfo, seen map[Location]Entry, res *VerifyResult,
	add func(SegmentSeq, int64, sealmail.MessageID, string, ...any), fn func(SegmentInfo, ScannedRecord)) {
	f, err := os.Open(si.path(s.dir))
	if err != nil {
		add(si.Seq, -1, 0, "cannot open: %v", err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		add(si.Seq, -1, 0, "cannot stat: %v", err)
		return
	}
	switch {
	case si.State == SegmentSealed && fi.Size() != si.Size:
		add(si.Seq, -1, 0, "sealed segment is %d bytes, the catalog says %d", fi.Size(), si.Size)
	case fi.Size() < si.Size:
		add(si.Seq, -1, 0, "segment is %d bytes, but %d are committed: acknowledged bytes are missing", fi.Size(), si.Size)
	}
	if si.State == SegmentSealed && fi.Mode().Perm()&0o222 != 0 {
		add(si.Seq, -1, 0, "sealed segment is writable (mode %v)", fi.Mode().Perm())
	}
	h := sha256.New()
	r := io.TeeReader(io.LimitReader(f, si.Size), h)
	hdr, valid, scanErr := Scan(r, func(rec ScannedRecord) error {
		res.Records++
		res.Entries += int64(len(rec.Header.Entries))
		for k, e := range rec.Header.Entries {
			seen[Location{Segment: si.Seq, Offset: rec.Offset, Length: rec.Length, Entry: k}] = e
		}
		if fn != nil {
			fn(si, rec)
		}
		return nil
	})
	res.Bytes += valid
	if hdr != nil && (hdr.ArchiveID != s.id || hdr.Seq != si.Seq) {
		add(si.Seq, 0, 0, "segment header names archive %x segment %s", hdr.ArchiveID, hdr.Seq)
	}
	if scanErr != nil || valid != si.Size {
		add(si.Seq, valid, 0, "unreadable from here to the committed length %d: %v", si.Size, scanErr)
		_, _ = io.Copy(h, r) // hash the rest for the seal check; what is unreadable is reported above
	}
	if s.opts.ReadOnly && si.State == SegmentActive && fi.Size() > si.Size {
		// Bytes after the committed length: an interrupted commit (cut off
		// at the daemon's next start), or bytes someone else appended. The
		// caller tells which from its audit log (rec.Offset >= si.Size).
		br := bufio.NewReaderSize(io.NewSectionReader(f, si.Size, fi.Size()-si.Size), 1<<20)
		n := 0
		_, err := scanRecords(br, si.Size, func(rec ScannedRecord) error {
			n += len(rec.Header.Entries)
			if fn != nil {
				fn(si, rec)
			}
			return nil
		})
		add(si.Seq, si.Size, 0, "%d bytes after the committed length (%d complete entries, %v): not cataloged; "+
			"the daemon cuts them off at its next start", fi.Size()-si.Size, n, err)
	}
	if si.State == SegmentSealed {
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		if !bytes.Equal(sum[:], si.SHA256[:]) {
			add(si.Seq, -1, 0, "SHA-256 %x differs from the one recorded at sealing, %x", sum, si.SHA256)
		}
	}
}

// ReadDigestKey reads the keyed-digest key of the archive in dir, for
// readers that check decrypted originals against the catalog's digests
// while another process holds the store.
func ReadDigestKey(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, digestKeyFile))
	if err != nil {
		return nil, fmt.Errorf("read digest key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s: not 64 hex digits: %w", digestKeyFile, ErrCorrupt)
	}
	return key, nil
}

// KeyedDigest computes the keyed digest of an original.
func KeyedDigest(key, original []byte) [32]byte { return keyedDigest(key, original) }
