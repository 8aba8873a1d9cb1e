// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
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

// repairTail catalogs the valid records after the committed length of the
// active segment and truncates what follows them.
func (s *Store) repairTail(size int64) error {
	a := s.active
	r := bufio.NewReaderSize(io.NewSectionReader(a.f, a.info.Size, size-a.info.Size), 1<<20)
	var found []ScannedRecord
	valid, scanErr := scanRecords(r, a.info.Size, func(rec ScannedRecord) error {
		found = append(found, rec)
		return nil
	})
	if scanErr != nil && !errors.Is(scanErr, ErrTorn) && !errors.Is(scanErr, ErrCorrupt) {
		return fmt.Errorf("scan tail of segment %s: %w", a.info.Seq, scanErr)
	}
	if len(found) > 0 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, rec := range found {
				if err := catalogRecord(tx, a.info.Seq, rec); err != nil {
					return err
				}
			}
			a.info.Size = valid
			a.info.Records += int64(len(found))
			return tx.Bucket(bucketSegments).Put(segKey(a.info.Seq), encodeSegment(&a.info))
		})
		if err != nil {
			return fmt.Errorf("catalog tail of segment %s: %w", a.info.Seq, err)
		}
		s.log.Warn("cataloged records written before a crash", "segment", a.info.Seq.String(), "records", len(found))
	}
	if valid < size {
		if err := a.f.Truncate(valid); err != nil {
			return fmt.Errorf("truncate torn tail of segment %s: %w", a.info.Seq, err)
		}
		if err := a.f.Sync(); err != nil {
			return fmt.Errorf("sync segment %s: %w", a.info.Seq, err)
		}
		s.log.Warn("truncated torn tail of segment", "segment", a.info.Seq.String(), "bytes", size-valid, "err", scanErr)
	}
	return nil
}

// catalogRecord adds the entries of a record found by a scan to the
// catalog, skipping those already there. It is used for tail repair and
// recovery.
func catalogRecord(tx *bolt.Tx, seq SegmentSeq, rec ScannedRecord) error {
	msgs := tx.Bucket(bucketMessages)
	meta := tx.Bucket(bucketMeta)
	c, err := decodeCounters(meta.Get(metaCounters))
	if err != nil {
		return err
	}
	for k, e := range rec.Header.Entries {
		loc := Location{Segment: seq, Offset: rec.Offset, Length: rec.Length, Entry: k}
		switch e.Kind {
		case KindMessage:
			if msgs.Get(idKey(e.ID)) != nil {
				continue
			}
			m := &MessageInfo{ID: e.ID, State: StateLive, Location: loc, Received: timeFromNanos(e.Received), Size: e.Size, Digest: e.Digest, Receipts: 1}
			if err := msgs.Put(idKey(e.ID), encodeMessage(m)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketDigests).Put(e.Digest[:], idKey(e.ID)); err != nil {
				return err
			}
			if next := getU64(meta, metaNextID); uint64(e.ID) >= next {
				if err := putU64(meta, metaNextID, uint64(e.ID)+1); err != nil {
					return err
				}
			}
			c.Messages++
			c.OriginalBytes += e.Size
			c.Receipts++
		case KindEnvelope:
			v := msgs.Get(idKey(e.ID))
			if v == nil {
				return fmt.Errorf("envelope entry at %s:%d for unknown message %d: %w", seq, rec.Offset, e.ID, ErrCorrupt)
			}
			m, err := decodeMessage(e.ID, v)
			if err != nil {
				return err
			}
			// Skip an envelope that is already cataloged at this location.
			envs := tx.Bucket(bucketEnvelopes)
			known := false
			for n := 2; n <= m.Receipts && !known; n++ {
				l, err := decodeLocation(envs.Get(envelopeKey(e.ID, n)))
				known = err == nil && l == loc
			}
			if known {
				continue
			}
			m.Receipts++
			if err := envs.Put(envelopeKey(e.ID, m.Receipts), encodeLocation(loc)); err != nil {
				return err
			}
			if err := msgs.Put(idKey(e.ID), encodeMessage(m)); err != nil {
				return err
			}
			c.Receipts++
		case KindTombstone:
			// Deletion is recorded in the catalog by its own operation.
		}
	}
	return meta.Put(metaCounters, encodeCounters(c))
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
		return fail(err)
	}
	if err := syncDir(filepath.Join(s.dir, "segments")); err != nil {
		return fail(err)
	}
	info := SegmentInfo{Seq: seq, ArchiveID: s.id, State: SegmentActive, Created: h.Created, Size: segmentHeaderSize}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSegments).Put(segKey(seq), encodeSegment(&info))
	})
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
	err = s.db.Update(func(tx *bolt.Tx) error {
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
	return s.createSegment(info.Seq + 1)
}

func timeFromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func beUint32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
