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

// repairTail brings the catalog up to the end of the active segment. The
// bytes after its committed length were written by the commits since the
// catalog's last flush: acknowledged ones, whose catalog changes a crash
// lost, and perhaps a last one that was cut short or never acknowledged.
// The complete records that the caller's records vouch for
// ([Options.OnReplay]) are replayed into the catalog, in order; what
// follows them was never acknowledged: it is copied to a side file first,
// reported ([Options.OnDiscard]) and cut off, and its ids are never given
// again. catMu must be held.
func (s *Store) repairTail(size int64) error {
	a := s.active
	tail, err := s.scanTail(a.info, a.f, size)
	if err != nil {
		return err
	}
	// What is replayed must be durable. After a power cut it is (it is on
	// the disk); after the process alone died, a write-back error that no
	// one has seen yet is reported to this fsync.
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("sync segment %s: %w", a.info.Seq, err)
	}
	cut := size - tail.end
	var keep string
	if cut > 0 {
		// Nothing is destroyed: the cut bytes are kept in a side file
		// first, so that even a catalog restored from an old backup
		// loses nothing; verify names the file.
		keep = filepath.Join(s.dir, "segments", fmt.Sprintf("%s.tail-%d", a.info.Seq, s.opts.Now().UnixNano()))
		if err := s.copyRange(a.f, tail.end, cut, keep); err != nil {
			return fmt.Errorf("keep uncommitted tail of segment %s: %w", a.info.Seq, err)
		}
		if s.opts.OnDiscard != nil {
			if err := s.opts.OnDiscard(tail.cut, cut, keep); err != nil {
				return fmt.Errorf("report discarded tail of segment %s: %w", a.info.Seq, err)
			}
		}
	}
	s.pendMu.Lock()
	s.pend = tail.replay
	s.pendMu.Unlock()
	err = s.updateLocked(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if next := uint64(tail.maxID) + 1; next > getU64(meta, metaNextID) {
			return putU64(meta, metaNextID, next)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay the tail of segment %s: %w", a.info.Seq, err)
	}
	if tail.replay.seg != nil {
		a.info = *tail.replay.seg
	}
	if tail.entries > 0 {
		s.log.Info("replayed the catalog changes of the active segment's tail (commits after the catalog's last flush)",
			"segment", a.info.Seq.String(), "records", tail.records, "entries", tail.entries)
	}
	if cut > 0 {
		if err := a.f.Truncate(tail.end); err != nil {
			return fmt.Errorf("truncate uncommitted tail of segment %s: %w", a.info.Seq, err)
		}
		if err := a.f.Sync(); err != nil {
			return fmt.Errorf("sync segment %s: %w", a.info.Seq, err)
		}
		s.log.Warn("cut off the uncommitted tail of the active segment (never acknowledged; senders retry)",
			"segment", a.info.Seq.String(), "bytes", cut, "entries", len(tail.cut), "kept_in", keep)
	}
	if tail.unsynced {
		// Only now: a crash before the cut finds the mark again.
		if err := s.updateLocked(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(metaUnsynced) }); err != nil {
			return fmt.Errorf("repair segment %s: %w", a.info.Seq, err)
		}
	}
	return nil
}

// tailScan is what [Store.scanTail] found after a segment's committed
// length.
type tailScan struct {
	replay   *pending // the catalog changes of the records to replay
	end      int64    // the committed length after them
	records  int      // records replayed
	entries  int      // entries replayed
	cut      []Committed
	maxID    sealmail.MessageID // highest message id after the committed length
	unsynced bool               // the catalog marks the tail as never made durable
}

// scanTail reads the records of segment a from its committed length to size
// and decides which of them are replayed: the complete records, in order,
// up to the first whose entries the caller does not vouch for
// ([Options.OnReplay]), none if the catalog marks the tail as written by a
// commit whose fsync failed. It changes nothing.
func (s *Store) scanTail(a SegmentInfo, f io.ReaderAt, size int64) (*tailScan, error) {
	r := bufio.NewReaderSize(io.NewSectionReader(f, a.Size, size-a.Size), 1<<20)
	var recs []ScannedRecord
	var found []Committed
	_, scanErr := scanRecords(r, a.Size, func(rec ScannedRecord) error {
		recs = append(recs, rec)
		for k, e := range rec.Header.Entries {
			found = append(found, Committed{Kind: e.Kind, ID: e.ID, Digest: e.Digest, Size: e.Size, Received: timeFromNanos(e.Received),
				Location: Location{Segment: a.Seq, Offset: rec.Offset, Length: rec.Length, Entry: k}, RecordSHA256: rec.SHA256})
		}
		return nil
	})
	if scanErr != nil && !errors.Is(scanErr, ErrTorn) && !errors.Is(scanErr, ErrCorrupt) {
		return nil, fmt.Errorf("scan tail of segment %s: %w", a.Seq, scanErr)
	}
	t := &tailScan{replay: newPending(), end: a.Size}
	for _, c := range found {
		if c.Kind == KindMessage {
			t.maxID = max(t.maxID, c.ID)
		}
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		v := &catView{tx: tx, layers: []*pending{t.replay}, id: s.id}
		if err := tailIDs(found, sealmail.MessageID(v.nextID())); err != nil {
			return fmt.Errorf("segment %s has %d bytes (%d entries) after its committed length that are not what the commits "+
				"after the catalog's last flush wrote (%v), so the catalog is older than the segment; restore catalog.db and run `sealmail verify`: %w",
				a.Seq, size-a.Size, len(found), err, ErrCorrupt)
		}
		if m := tx.Bucket(bucketMeta).Get(metaUnsynced); len(m) == 12 &&
			SegmentSeq(binary.BigEndian.Uint32(m)) == a.Seq && int64(binary.BigEndian.Uint64(m[4:])) == a.Size {
			t.unsynced = true
		}
		vouched := len(found)
		switch {
		case t.unsynced:
			vouched = 0
		case s.opts.OnReplay != nil && len(found) > 0:
			var err error
			if vouched, err = s.opts.OnReplay(found); err != nil {
				return fmt.Errorf("check the tail of segment %s against the audit log: %w", a.Seq, err)
			}
		}
		i := 0
		for _, rec := range recs {
			n := len(rec.Header.Entries)
			if i+n > vouched {
				break
			}
			for _, c := range found[i : i+n] {
				if err := replayable(v, c); err != nil {
					return fmt.Errorf("segment %s offset %d: %v, so the catalog is older than the segment; "+
						"restore catalog.db and run `sealmail verify`: %w", a.Seq, rec.Offset, err, ErrCorrupt)
				}
				e := Entry{Kind: c.Kind, ID: c.ID, Received: c.Received.UnixNano(), Size: c.Size, Digest: c.Digest}
				if _, err := t.replay.apply(v, &e, c.Location, c.RetainUntil, c.Forever, c.Audit); err != nil {
					return err
				}
			}
			i += n
			t.end = rec.Offset + rec.Length
			t.records++
			t.entries += n
		}
		t.cut = found[i:]
		return nil
	})
	if err != nil {
		return nil, err
	}
	if t.records > 0 {
		seg := a
		seg.Size, seg.Records = t.end, a.Records+int64(t.records)
		t.replay.seg = &seg
	}
	return t, nil
}

// replayable checks that an entry found after the committed length is a
// change the writer could have made to the catalog as it is then: a message
// with the next id, a further receipt of a live message, a deletion of one.
func replayable(v *catView, c Committed) error {
	if c.Kind == KindMessage {
		if next := v.nextID(); uint64(c.ID) < next {
			return fmt.Errorf("message %d below the catalog's next id %d", c.ID, next)
		}
		return nil
	}
	m, err := v.message(c.ID)
	switch {
	case err != nil:
		return fmt.Errorf("%s entry for message %d: %w", c.Kind, c.ID, err)
	case m.State != StateLive:
		return fmt.Errorf("%s entry for message %d, which is deleted", c.Kind, c.ID)
	case c.Kind == KindEnvelope && m.Receipts >= maxReceipts:
		return fmt.Errorf("envelope entry for message %d, which has %d receipts", c.ID, m.Receipts)
	}
	return nil
}

// tailIDs checks that the entries found after a segment's committed length
// can be what the commits after the catalog's last flush wrote, judged by
// their ids, whatever their size: the new messages have contiguous ids
// from at least the catalog's next id on, and every envelope or tombstone
// is for a message cataloged before or stored earlier in the tail. Tails
// that fail this were written by commits the catalog does not know: it is
// older than the segment.
func tailIDs(found []Committed, next sealmail.MessageID) error {
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
			if c.ID >= next && (want == 0 || c.ID >= want) {
				return fmt.Errorf("%s entry for message %d, which neither the catalog nor the tail before it holds", c.Kind, c.ID)
			}
		}
	}
	return nil
}

// raiseNextID makes sure no id below next is given again. catMu must be
// held.
func (s *Store) raiseNextID(next sealmail.MessageID) error {
	return s.updateLocked(func(tx *bolt.Tx) error {
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

// putSegment records a segment's entry. catMu must be held.
func (s *Store) putSegment(si *SegmentInfo) error {
	return s.updateLocked(func(tx *bolt.Tx) error {
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
	err = s.updateLocked(func(tx *bolt.Tx) error {
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
