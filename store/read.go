// SPDX-License-Identifier: Apache-2.0

package store

import (
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
	// Raw is the whole record (header, entry table, payload, CRC), whose
	// SHA-256 the entry's ingest audit entry names. Payload is a part of it.
	Raw []byte
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
	return s.RecordsCached(id, nil)
}

// RecordCache keeps records [Store.RecordsCached] read, by file and
// offset, for a caller that reads many messages whose records they share
// (a group commit's). A record's bytes in a file never change (compaction
// writes a new file), so what it holds stays right.
type RecordCache map[recordKey]cachedRecord

type recordKey struct {
	path string
	off  int64
}

type cachedRecord struct {
	h   *RecordHeader
	raw []byte
}

// RecordsCached is [Store.Records] reading through cache, which may be
// nil. A cache must not be used concurrently.
func (s *Store) RecordsCached(id sealmail.MessageID, cache RecordCache) (*MessageInfo, []Record, error) {
	var prev []string
	for attempt := 0; ; attempt++ {
		m, locs, paths, err := s.lookupRecords(id)
		if err != nil {
			return nil, nil, err
		}
		if attempt == 0 && s.testReadHook != nil {
			s.testReadHook()
		}
		recs, rerr := s.readRecords(id, locs, paths, cache)
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

func (s *Store) readRecords(id sealmail.MessageID, locs []Location, paths []string, cache RecordCache) ([]Record, error) {
	recs := make([]Record, 0, len(locs))
	for i, l := range locs {
		k := recordKey{path: paths[i], off: l.Offset}
		c, ok := cache[k]
		if !ok || int64(len(c.raw)) != l.Length {
			h, raw, err := readRecordAt(paths[i], l)
			if err != nil {
				return nil, fmt.Errorf("message %d: %w", id, err)
			}
			c = cachedRecord{h: h, raw: raw}
			if cache != nil {
				cache[k] = c
			}
		}
		h, raw := c.h, c.raw
		if l.Entry >= len(h.Entries) || h.Entries[l.Entry].ID != id {
			return nil, fmt.Errorf("message %d: record at %s:%d has no entry %d for it: %w", id, l.Segment, l.Offset, l.Entry, ErrCorrupt)
		}
		recs = append(recs, Record{Entry: h.Entries[l.Entry], Location: l, Payload: h.payload(raw), Raw: raw})
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
	h, raw, err := readRecordAt(si.path(s.dir), l)
	if err != nil {
		return nil, nil, err
	}
	return h, h.payload(raw), nil
}

// readRecordAt reads and checks the record at l in the file at path and
// returns its header and its bytes.
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
	return h, buf, nil
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

// Barrier returns once the group commit in progress, if any, has been
// acknowledged or has failed. The writer holds catMu for the whole commit,
// from its decisions through OnCommit (which the archive's audit entries
// come from) to its catalog changes joining the pending ones, so after
// Barrier every entry reported to OnCommit before it was called is visible
// to every reader of the catalog, or was rolled back. It writes nothing.
func (s *Store) Barrier() error {
	if s.opts.ReadOnly {
		return nil // no writer in this process
	}
	s.catMu.Lock() // taken for the wait only
	defer s.catMu.Unlock()
	return nil
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
