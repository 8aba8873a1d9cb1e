// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bufio"
	"encoding/binary"

	"errors"
	"fmt"
	"github.com/sealmail/sealmail"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openActive opens the newest segment for appending, or creates segment 1 in
// a new archive. Records past the committed length are cataloged when valid
// (they were written but never acknowledged) and cut off when torn.
func (s *Store) openActive() error {
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
	if err != nil {
		return err
	}
	if err := s.checkNoNewerSegments(last); err != nil {
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
			return err
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
	// One group commit writes at most MaxBatchBytes of frames (plus one
	// more request) and some overhead. A longer tail is not one interrupted
	// commit: the catalog is older than the segment. Cutting it off would
	// destroy acknowledged messages.
	if tail := size - a.info.Size; tail > 2*s.opts.MaxBatchBytes+maxPayload/64 && len(found) > 0 {
		return fmt.Errorf("segment %s has %d bytes (%d entries) after its committed length: more than one "+
			"interrupted group commit, so the catalog is older than the segment; restore catalog.db and run `sealmail verify`: %w",
			a.info.Seq, tail, len(found), ErrCorrupt)
	}
	// Nothing is destroyed: the tail is kept in a side file first, so that
	// even a catalog restored from an old backup (whose "uncommitted tail"
	// holds acknowledged messages) loses nothing; verify names the file.
	keep := filepath.Join(s.dir, "segments", fmt.Sprintf("%s.tail-%d", a.info.Seq, s.opts.Now().UnixNano()))
	if err := copyRange(a.f, a.info.Size, size-a.info.Size, keep); err != nil {
		return fmt.Errorf("keep uncommitted tail of segment %s: %w", a.info.Seq, err)
	}
	if s.opts.OnDiscard != nil {
		if err := s.opts.OnDiscard(found, size-a.info.Size, keep); err != nil {
			return fmt.Errorf("report discarded tail of segment %s: %w", a.info.Seq, err)
		}
	}
	if maxID > 0 {
		err := s.update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if next := getU64(meta, metaNextID); uint64(maxID) >= next {
				return putU64(meta, metaNextID, uint64(maxID)+1)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("repair segment %s: %w", a.info.Seq, err)
		}
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

// copyRange writes n bytes of r from off into a new file at path, durably.
func copyRange(r io.ReaderAt, off, n int64, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
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
	return syncDir(filepath.Dir(path))
}

// createSegment starts a new, empty active segment and records it.
func (s *Store) createSegment(seq SegmentSeq) error {
	path := segmentPath(s.dir, seq)
	f, err := s.opts.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create segment %s: %w", seq, err)
	}
	h := segmentHeader{Seq: seq, ArchiveID: s.id, Created: s.opts.Now().UnixNano()}
	fail := func(err error) error {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("create segment %s: %w", seq, err)
	}
	if _, err := f.Write(h.encode()); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(&syncError{seq: seq, err: err})
	}
	if err := syncDir(filepath.Join(s.dir, "segments")); err != nil {
		return fail(&syncError{seq: seq, err: err})
	}
	info := SegmentInfo{Seq: seq, ArchiveID: s.id, State: SegmentActive, Created: h.Created, Size: segmentHeaderSize}
	err = s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSegments).Put(segKey(seq), encodeSegment(&info))
	})
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

// seal finishes the active segment: fsync, SHA-256 of the whole file, chmod
// read-only, catalog entry. Then it starts the next segment.
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
	if err := os.Chmod(path, 0o444); err != nil {
		return fmt.Errorf("seal segment %s: %w", a.info.Seq, err)
	}
	info := a.info
	info.State = SegmentSealed
	info.Sealed = s.opts.Now().UTC()
	info.SHA256 = sum
	err = s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSegments).Put(segKey(info.Seq), encodeSegment(&info))
	})
	if err != nil {
		return fmt.Errorf("seal segment %s: %w", a.info.Seq, err)
	}
	a.f.Close()
	s.active = nil
	s.log.Info("sealed segment", "segment", info.Seq.String(), "bytes", info.Size, "records", info.Records)
	if s.opts.OnSeal != nil {
		s.opts.OnSeal(info)
	}
	s.nextSeq = info.Seq + 1 // the next commit starts it
	return nil
}

func timeFromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func beUint32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// checkNoNewerSegments refuses a catalog that does not know every segment
// file: it is older than the segments (restored from an old backup, or
// replaced), and appending would write into a segment it believes active.
func (s *Store) checkNoNewerSegments(last *SegmentInfo) error {
	names, err := filepath.Glob(filepath.Join(s.dir, "segments", "*.seg"))
	if err != nil {
		return err
	}
	var known SegmentSeq
	if last != nil {
		known = last.Seq
	}
	for _, n := range names {
		var seq uint32
		if _, err := fmt.Sscanf(filepath.Base(n), "%08d.seg", &seq); err != nil {
			continue
		}
		if SegmentSeq(seq) > known {
			return fmt.Errorf("segment file %s is not in the catalog, which knows segments up to %08d: "+
				"the catalog is older than the segments; run `sealmail verify` and restore catalog.db: %w", n, uint32(known), ErrCorrupt)
		}
	}
	return nil
}
