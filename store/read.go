// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sealmail/sealmail"
)

// Record is one entry of a stored record: its clear description and the
// record's payload, a standard age file whose plaintext holds the entry's
// zstd frame at [Entry.PlainOffset, +Entry.PlainLen).
type Record struct {
	Entry    Entry
	Location Location
	Payload  []byte
}

// Message returns the catalog entry of id.
func (s *Store) Message(id sealmail.MessageID) (*MessageInfo, error) {
	var m *MessageInfo
	err := s.view(func(v *catView) error {
		var err error
		m, err = v.message(id)
		return err
	})
	return m, err
}

// Records returns the stored entries of message id: the message entry
// first, then one envelope entry per further receipt. Each record's CRC is
// checked; the payloads are not decrypted.
//
// Locations and segment files are looked up in one catalog transaction. A
// compaction may still move the records and remove the file before they are
// read: then the lookup is repeated, and an error stands only if the
// catalog's answer did not change.
func (s *Store) Records(id sealmail.MessageID) (*MessageInfo, []Record, error) {
	var prev []string
	for attempt := 0; ; attempt++ {
		m, locs, paths, err := s.lookupRecords(id)
		if err != nil {
			return nil, nil, err
		}
		if attempt == 0 && s.testReadHook != nil {
			s.testReadHook()
		}
		recs, rerr := s.readRecords(id, locs, paths)
		if rerr == nil {
			return m, recs, nil
		}
		where := make([]string, len(locs))
		for i, l := range locs {
			where[i] = fmt.Sprintf("%s@%d:%d", paths[i], l.Offset, l.Entry)
		}
		if attempt > 0 && slices.Equal(where, prev) || attempt >= 5 {
			return nil, nil, rerr
		}
		prev = where
	}
}

// lookupRecords returns, from one view of the catalog, message id's
// entry, the locations of its records and the files that hold them.
func (s *Store) lookupRecords(id sealmail.MessageID) (*MessageInfo, []Location, []string, error) {
	var m *MessageInfo
	var locs []Location
	var paths []string
	err := s.view(func(v *catView) error {
		var err error
		if m, err = v.message(id); err != nil {
			return err
		}
		if m.State == StateDeleted {
			return &DeletedError{ID: id, At: m.DeletedAt, Audit: m.DeletedAudit}
		}
		locs = append(locs, m.Location)
		for n := 2; n <= m.Receipts; n++ {
			l, err := v.envelope(id, n)
			if err != nil {
				return fmt.Errorf("message %d receipt %d: %w", id, n, err)
			}
			locs = append(locs, l)
		}
		for _, l := range locs {
			si, err := v.segment(l.Segment)
			if err != nil {
				return fmt.Errorf("message %d: %w", id, err)
			}
			paths = append(paths, si.path(s.dir))
		}
		return nil
	})
	return m, locs, paths, err
}

func (s *Store) readRecords(id sealmail.MessageID, locs []Location, paths []string) ([]Record, error) {
	recs := make([]Record, 0, len(locs))
	for i, l := range locs {
		h, payload, err := readRecordAt(paths[i], l)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", id, err)
		}
		if l.Entry >= len(h.Entries) || h.Entries[l.Entry].ID != id {
			return nil, fmt.Errorf("message %d: record at %s:%d has no entry %d for it: %w", id, l.Segment, l.Offset, l.Entry, ErrCorrupt)
		}
		recs = append(recs, Record{Entry: h.Entries[l.Entry], Location: l, Payload: payload})
	}
	return recs, nil
}

// ReadRecord reads and checks the record at l and returns its header and
// payload. l must be current: a compaction moves records (see
// [Store.Records], which copes with that).
func (s *Store) ReadRecord(l Location) (*RecordHeader, []byte, error) {
	si, err := s.segment(l.Segment)
	if err != nil {
		return nil, nil, err
	}
	return readRecordAt(si.path(s.dir), l)
}

func readRecordAt(path string, l Location) (*RecordHeader, []byte, error) {
	if l.Length < recordHeaderSize+entrySize+4+recordTrailer || l.Length > maxPayload+1<<23 {
		return nil, nil, fmt.Errorf("record at %s:%d: length %d: %w", l.Segment, l.Offset, l.Length, ErrCorrupt)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open segment %s: %w", l.Segment, err)
	}
	defer f.Close()
	buf := make([]byte, l.Length)
	if _, err := f.ReadAt(buf, l.Offset); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, fmt.Errorf("read record at %s:%d: %w", l.Segment, l.Offset, err)
	}
	h, err := parseRecordHeader(buf)
	if err != nil {
		return nil, nil, fmt.Errorf("record at %s:%d: %w", l.Segment, l.Offset, err)
	}
	if h.Len() != l.Length {
		return nil, nil, fmt.Errorf("record at %s:%d: length %d, catalog says %d: %w", l.Segment, l.Offset, h.Len(), l.Length, ErrCorrupt)
	}
	if err := checkRecordTrailer(buf); err != nil {
		return nil, nil, fmt.Errorf("record at %s:%d: %w", l.Segment, l.Offset, err)
	}
	return h, buf[h.headerLen() : h.headerLen()+h.PayloadLen], nil
}

// List calls fn for each cataloged message with an id greater than after, in
// id order, until fn returns false or an error.
func (s *Store) List(after sealmail.MessageID, fn func(*MessageInfo) (bool, error)) error {
	v, done, err := s.snapshot()
	if err != nil {
		return err
	}
	defer done()
	return v.forEachMessage(after, fn, nil)
}

// Stats summarises the store.
type Stats struct {
	Messages      int64 // live messages
	Receipts      int64 // envelopes, including each message's first
	OriginalBytes int64 // sum of the originals' sizes
	StoredBytes   int64 // sum of the segment files' committed sizes
	Segments      int
	Sealed        int
	LastID        sealmail.MessageID
}

// Stats returns the store's running totals.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	err := s.view(func(v *catView) error {
		c, err := v.counters()
		if err != nil {
			return err
		}
		st.Messages, st.Receipts, st.OriginalBytes = c.Messages, c.Receipts, c.OriginalBytes
		st.LastID = sealmail.MessageID(v.nextID() - 1)
		segs, err := v.segments()
		for _, si := range segs {
			st.Segments++
			st.StoredBytes += si.Size
			if si.State == SegmentSealed {
				st.Sealed++
			}
		}
		return err
	})
	return st, err
}

// Segments returns the catalog's segment table in order.
func (s *Store) Segments() ([]SegmentInfo, error) {
	var out []SegmentInfo
	err := s.view(func(v *catView) error {
		var err error
		out, err = v.segments()
		return err
	})
	return out, err
}

// IndexWatermark returns the highest message id up to which the index has
// taken in every message with every receipt. Storing a further receipt of a
// message lowers it below that message.
func (s *Store) IndexWatermark() (sealmail.MessageID, error) {
	var w uint64
	err := s.view(func(v *catView) error {
		w = v.watermark()
		return nil
	})
	return sealmail.MessageID(w), err
}

// RaiseIndexWatermark sets the watermark to w() if that is higher. w is
// called inside the catalog transaction, which is serialised with the
// writer's: a further receipt of a message (which lowers the watermark
// below it in the transaction that stores it, since the index lacks its
// envelope until it is indexed) commits either before w runs, so that w
// can know of it (through [Options.OnCommit]), or after, and lowers it
// again.
func (s *Store) RaiseIndexWatermark(w func() sealmail.MessageID) error {
	cur, err := s.IndexWatermark()
	if err != nil {
		return err
	}
	if w() <= cur {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if nw := uint64(w()); nw > getU64(meta, metaWatermark) {
			return putU64(meta, metaWatermark, nw)
		}
		return nil
	})
}

// SetIndexWatermark records that the index holds every message up to id.
func (s *Store) SetIndexWatermark(id sealmail.MessageID) error {
	return s.update(func(tx *bolt.Tx) error {
		return putU64(tx.Bucket(bucketMeta), metaWatermark, uint64(id))
	})
}

// metaHolds is the meta key under which the archive keeps its legal holds,
// as opaque bytes the store does not interpret (docs/format.md).
var metaHolds = []byte("holds")

// Holds returns the stored legal-hold document, nil if none.
func (s *Store) Holds() ([]byte, error) {
	var b []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b = bytes.Clone(tx.Bucket(bucketMeta).Get(metaHolds))
		return nil
	})
	return b, err
}

// SetHolds replaces the stored legal-hold document, durably.
func (s *Store) SetHolds(b []byte) error {
	if s.opts.ReadOnly {
		return fmt.Errorf("set holds: %w", ErrReadOnly)
	}
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaHolds, b) })
}

// segment returns the catalog entry of one segment.
func (s *Store) segment(seq SegmentSeq) (*SegmentInfo, error) {
	var si *SegmentInfo
	err := s.view(func(v *catView) error {
		var err error
		si, err = v.segment(seq)
		return err
	})
	return si, err
}

// SetRetention changes a live message's retain-until (policy re-evaluation)
// and returns the previous value.
func (s *Store) SetRetention(id sealmail.MessageID, until time.Time, forever bool) (prev time.Time, prevForever bool, err error) {
	if s.opts.ReadOnly {
		return prev, false, fmt.Errorf("set retention: %w", ErrReadOnly)
	}
	err = s.update(func(tx *bolt.Tx) error {
		msgs := tx.Bucket(bucketMessages)
		m, err := decodeMessage(id, msgs.Get(idKey(id)))
		if err != nil {
			return err
		}
		prev, prevForever = m.RetainUntil, m.Forever
		m.RetainUntil, m.Forever = until, forever
		return msgs.Put(idKey(id), encodeMessage(m))
	})
	return prev, prevForever, err
}
