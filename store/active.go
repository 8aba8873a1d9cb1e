// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/vfs"
)

// openActive opens the newest segment for appending, or creates segment 1 in
// a new archive. Records past the committed length were written by a commit
// that never finished: they are set aside and cut off (see repairTail).
// Every step is safe to repeat after a crash in the middle of it (see
// docs/format.md, "Read and write ordering", start-up).
func (s *Store) openActive() error {
	last, err := s.lastSegment()
	if err != nil {
		return err
	}
	adopted, err := s.adoptNewSegment(last)
	if err != nil {
		return err
	}
	if adopted != nil {
		last = adopted
	}
	if err := s.fixSealedModes(); err != nil {
		return err
	}
	if last == nil || last.State == SegmentSealed {
		next := SegmentSeq(1)
		if last != nil {
			next = last.Seq + 1
		}
		return s.createSegment(next)
	}
	path := segmentPath(s.dir, last.Seq)
	// A crash between the chmod of sealing and its catalog commit leaves
	// the still-active segment read-only: a daemon that is not root could
	// not open it. Sealing chmods after the commit now; older crashes are
	// repaired here.
	if fi, err := s.fs.Stat(path); err == nil && fi.Mode().Perm()&0o200 == 0 {
		if err := s.fs.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("make active segment %s writable again: %w", last.Seq, err)
		}
		s.log.Warn("made the active segment writable again (a crash interrupted its sealing)", "segment", last.Seq.String())
	}
	f, err := s.opts.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open segment %s: %w", last.Seq, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat segment %s: %w", last.Seq, err)
	}
	if fi.Size() < last.Size {
		f.Close()
		return fmt.Errorf("segment %s is %d bytes but the catalog has records up to %d: bytes were lost; "+
			"restore %s from a backup, then run `sealmail verify`: %w", last.Seq, fi.Size(), last.Size, path, ErrCorrupt)
	}
	s.active = &activeSegment{info: *last, f: f}
	if fi.Size() > last.Size {
		if err := s.repairTail(fi.Size()); err != nil {
			f.Close()
			s.active = nil
			return err
		}
	}
	return nil
}

// lastSegment returns the catalog's newest segment, nil in a new archive.
func (s *Store) lastSegment() (*SegmentInfo, error) {
	var last *SegmentInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketSegments).Cursor().Last()
		if k == nil {
			return nil
		}
		var err error
		last, err = decodeSegment(SegmentSeq(beUint32(k)), s.id, v)
		return err
	})
	return last, err
}

// fixSealedModes makes sealed segment files read-only: a crash between a
// seal's catalog commit and its chmod leaves the file writable.
func (s *Store) fixSealedModes() error {
	segs, err := s.Segments()
	if err != nil {
		return err
	}
	for _, si := range segs {
		if si.State != SegmentSealed {
			continue
		}
		p := si.path(s.dir)
		fi, err := s.fs.Stat(p)
		if err != nil || fi.Mode().Perm()&0o222 == 0 {
			continue // a missing file is verify's to report
		}
		if err := s.fs.Chmod(p, 0o444); err != nil {
			return fmt.Errorf("make sealed segment %s read-only: %w", si.Seq, err)
		}
	}
	return nil
}

// repairTail cuts the active segment back to its committed length. What
// lies beyond it was written by a commit that never finished (a crash
// between the segment write and the catalog commit, or a torn write): no
// sender got a 250 for it, so the senders retry and nothing acknowledged is
// lost. The tail is first copied to a side file, complete records found
// there are reported to OnDiscard (their entries may have been audited
// already), and their ids are never reused.
func (s *Store) repairTail(size int64) error {
	a := s.active
	r := bufio.NewReaderSize(io.NewSectionReader(a.f, a.info.Size, size-a.info.Size), 1<<20)
	var found []Committed
	var maxID sealmail.MessageID
	_, scanErr := scanRecords(r, a.info.Size, func(rec ScannedRecord) error {
		for k, e := range rec.Header.Entries {
			found = append(found, Committed{Kind: e.Kind, ID: e.ID, Digest: e.Digest, Size: e.Size, Received: timeFromNanos(e.Received),
				Location: Location{Segment: a.info.Seq, Offset: rec.Offset, Length: rec.Length, Entry: k}, RecordSHA256: rec.SHA256})
			if e.Kind == KindMessage {
				maxID = max(maxID, e.ID)
			}
		}
		return nil
	})
	if scanErr != nil && !errors.Is(scanErr, ErrTorn) && !errors.Is(scanErr, ErrCorrupt) {
		return fmt.Errorf("scan tail of segment %s: %w", a.info.Seq, scanErr)
	}
	var next uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		next = getU64(tx.Bucket(bucketMeta), metaNextID)
		return nil
	})
	if err != nil {
		return err
	}
	if err := oneCommit(found, sealmail.MessageID(next)); err != nil {
		return fmt.Errorf("segment %s has %d bytes (%d entries) after its committed length that are not one interrupted "+
			"group commit (%v), so the catalog is older than the segment; restore catalog.db and run `sealmail verify`: %w",
			a.info.Seq, size-a.info.Size, len(found), err, ErrCorrupt)
	}
	// Nothing is destroyed: the tail is kept in a side file first, so that
	// even a catalog restored from an old backup (whose "uncommitted tail"
	// holds acknowledged messages) loses nothing; verify names the file.
	keep := filepath.Join(s.dir, "segments", fmt.Sprintf("%s.tail-%d", a.info.Seq, s.opts.Now().UnixNano()))
	if err := s.copyRange(a.f, a.info.Size, size-a.info.Size, keep); err != nil {
		return fmt.Errorf("keep uncommitted tail of segment %s: %w", a.info.Seq, err)
	}
	if s.opts.OnDiscard != nil {
		if err := s.opts.OnDiscard(found, size-a.info.Size, keep); err != nil {
			return fmt.Errorf("report discarded tail of segment %s: %w", a.info.Seq, err)
		}
	}
	if err := s.raiseNextID(maxID + 1); err != nil {
		return fmt.Errorf("repair segment %s: %w", a.info.Seq, err)
	}
	if err := a.f.Truncate(a.info.Size); err != nil {
		return fmt.Errorf("truncate uncommitted tail of segment %s: %w", a.info.Seq, err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("sync segment %s: %w", a.info.Seq, err)
	}
	s.log.Warn("cut off the uncommitted tail of the active segment (never acknowledged; senders retry)",
		"segment", a.info.Seq.String(), "bytes", size-a.info.Size, "entries", len(found), "kept_in", keep)
	return nil
}

// oneCommit checks that the entries found after a segment's committed
// length can be what one interrupted group commit wrote, judged by their
// ids, whatever their size: the new messages have contiguous ids from at
// least the catalog's next id on, and every envelope or tombstone is for a
// message cataloged before. Tails that fail this were written by commits
// the catalog does not know: it is older than the segment.
func oneCommit(found []Committed, next sealmail.MessageID) error {
	var want sealmail.MessageID
	for _, c := range found {
		switch c.Kind {
		case KindMessage:
			switch {
			case want == 0 && c.ID < next:
				return fmt.Errorf("message %d below the catalog's next id %d", c.ID, next)
			case want != 0 && c.ID != want:
				return fmt.Errorf("message %d after message %d", c.ID, want-1)
			}
			want = c.ID + 1
		default:
			if c.ID >= next {
				return fmt.Errorf("%s entry for message %d, which the catalog does not hold", c.Kind, c.ID)
			}
		}
	}
	return nil
}

// raiseNextID makes sure no id below next is given again.
func (s *Store) raiseNextID(next sealmail.MessageID) error {
	return s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if uint64(next) > getU64(meta, metaNextID) {
			return putU64(meta, metaNextID, uint64(next))
		}
		return nil
	})
}

// copyRange writes n bytes of r from off into a new file at path, durably.
func (s *Store) copyRange(r io.ReaderAt, off, n int64, path string) error {
	f, err := s.fs.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.NewSectionReader(r, off, n)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return vfs.SyncDir(s.fs, filepath.Dir(path))
}

// createSegment starts a new, empty active segment and records it. The
// file is durable before the catalog names it; a crash in between leaves a
// file with only a header, which [Store.adoptNewSegment] takes at the next
// start.
func (s *Store) createSegment(seq SegmentSeq) error {
	path := segmentPath(s.dir, seq)
	f, err := s.opts.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create segment %s: %w", seq, err)
	}
	h := segmentHeader{Seq: seq, ArchiveID: s.id, Created: s.opts.Now().UnixNano()}
	fail := func(err error) error {
		f.Close()
		s.fs.Remove(path)
		return fmt.Errorf("create segment %s: %w", seq, err)
	}
	if _, err := f.Write(h.encode()); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(&syncError{seq: seq, err: err})
	}
	if err := vfs.SyncDir(s.fs, filepath.Join(s.dir, "segments")); err != nil {
		return fail(&syncError{seq: seq, err: err})
	}
	info := SegmentInfo{Seq: seq, ArchiveID: s.id, State: SegmentActive, Created: h.Created, Size: segmentHeaderSize}
	err = s.putSegment(&info)
	if cerr := (*catalogCommitError)(nil); errors.As(err, &cerr) {
		f.Close() // the catalog may name the file: keep it
		return fmt.Errorf("create segment %s: %w", seq, err)
	}
	if err != nil {
		return fail(err)
	}
	s.active = &activeSegment{info: info, f: f}
	return nil
}

func (s *Store) putSegment(si *SegmentInfo) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSegments).Put(segKey(si.Seq), encodeSegment(si))
	})
}

// seal finishes the active segment: fsync, SHA-256 of the whole file, the
// seal intent (OnSeal), the catalog entry with the intent pending, the
// intent's outcome (OnIntent), chmod read-only. Then it starts the next
// segment. The chmod comes after the catalog commit so that a crash never
// leaves the active segment read-only.
func (s *Store) seal() error {
	a := s.active
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("seal segment %s: %w", a.info.Seq, err)
	}
	path := segmentPath(s.dir, a.info.Seq)
	sum, n, err := fileSHA256(path)
	if err != nil {
		return fmt.Errorf("seal segment %s: %w", a.info.Seq, err)
	}
	if n != a.info.Size {
		return fmt.Errorf("seal segment %s: file is %d bytes, committed %d: %w", a.info.Seq, n, a.info.Size, ErrCorrupt)
	}
	info := a.info
	info.State = SegmentSealed
	info.Sealed = s.opts.Now().UTC()
	info.SHA256 = sum
	var intent Intent
	if s.opts.OnSeal != nil {
		if intent, err = s.opts.OnSeal(info); err != nil {
			return fmt.Errorf("seal segment %s: audit: %w", a.info.Seq, err)
		}
	}
	err = s.update(func(tx *bolt.Tx) error {
		if err := addIntent(tx, intent); err != nil {
			return err
		}
		return tx.Bucket(bucketSegments).Put(segKey(info.Seq), encodeSegment(&info))
	})
	if err != nil {
		s.intentDone(intent, false)
		return fmt.Errorf("seal segment %s: %w", a.info.Seq, err)
	}
	s.intentDone(intent, true)
	a.f.Close()
	s.active = nil
	if err := s.fs.Chmod(path, 0o444); err != nil {
		// The next start makes it read-only (fixSealedModes).
		s.log.Warn("seal: cannot make the segment read-only", "segment", info.Seq.String(), "err", err)
	}
	s.log.Info("sealed segment", "segment", info.Seq.String(), "bytes", info.Size, "records", info.Records)
	s.nextSeq = info.Seq + 1 // the next commit starts it
	return nil
}

// adoptNewSegment handles a segment file the catalog does not know. A crash
// in createSegment leaves the file after last (last+1, or 1 in a new
// archive) with nothing but its header (or less): such a file holds no
// record, and it is adopted as the active segment when its header is
// complete and names this archive, or removed when it is not. Any other
// unknown file means the catalog is older than the segments: Open refuses.
func (s *Store) adoptNewSegment(last *SegmentInfo) (*SegmentInfo, error) {
	names, err := filepath.Glob(filepath.Join(s.dir, "segments", "*.seg"))
	if err != nil {
		return nil, err
	}
	var known SegmentSeq
	if last != nil {
		known = last.Seq
	}
	for _, n := range names {
		var seq uint32
		if _, err := fmt.Sscanf(filepath.Base(n), "%08d.seg", &seq); err != nil || filepath.Base(n) != segmentName(SegmentSeq(seq)) {
			continue
		}
		if SegmentSeq(seq) <= known {
			continue
		}
		refuse := fmt.Errorf("segment file %s is not in the catalog, which knows segments up to %08d: "+
			"the catalog is older than the segments; run `sealmail verify` and restore catalog.db: %w", n, uint32(known), ErrCorrupt)
		if SegmentSeq(seq) != known+1 || (last != nil && last.State != SegmentSealed) {
			return nil, refuse
		}
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("read segment %s: %w", n, err)
		}
		if len(b) > segmentHeaderSize {
			return nil, refuse
		}
		h, herr := parseSegmentHeader(b)
		if herr != nil || h.Seq != SegmentSeq(seq) || h.ArchiveID != s.id {
			s.log.Warn("removing a segment file whose creation a crash interrupted (it holds no record)", "file", n)
			if err := s.fs.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			if err := vfs.SyncDir(s.fs, filepath.Dir(n)); err != nil {
				return nil, err
			}
			continue
		}
		info := SegmentInfo{Seq: h.Seq, ArchiveID: s.id, State: SegmentActive, Created: h.Created, Size: segmentHeaderSize}
		if err := s.putSegment(&info); err != nil {
			return nil, fmt.Errorf("adopt segment %s: %w", n, err)
		}
		s.log.Warn("adopted a new segment whose creation a crash interrupted", "segment", info.Seq.String())
		return &info, nil
	}
	return nil, nil
}

func timeFromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func beUint32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
