// SPDX-License-Identifier: Apache-2.0

package store

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sealmail/sealmail"
)

// The segment is the commit point: a group commit is acknowledged once its
// records (and their audit entries) are fsync'd, and the catalog trails it.
// What acknowledged commits changed in the catalog is kept in memory as
// pending changes until a flush writes them to catalog.db in one bbolt
// transaction (which bbolt fsyncs, as every catalog transaction). Readers
// see catalog.db with the pending changes on top; a crash loses only the
// pending changes, and Open replays them from the records after the
// committed length that catalog.db has for the active segment
// (docs/format.md, "Read and write ordering").

// Flush policy: the writer flushes the pending changes once they hold
// flushEntries entries or the oldest is [Options.FlushInterval] old, and
// before any other catalog change (seal, compaction, retention, holds, …),
// which then commits in the same transaction.
const flushEntries = 4096

// envRef names a further receipt: message id and receipt number (2, 3, …).
type envRef struct {
	id sealmail.MessageID
	n  int
}

// pending is a set of catalog changes not in catalog.db: those of the
// acknowledged commits since the last flush ([Store.pend]), or those of one
// group commit while it is written. Values are whole (a message's full
// catalog entry), so a later change of the same key replaces an earlier.
type pending struct {
	msgs    map[sealmail.MessageID]*MessageInfo
	envs    map[envRef]Location
	digests map[[32]byte]sealmail.MessageID // 0: the digest was removed
	c       *counters                       // nil: unchanged
	next    uint64                          // 0: unchanged
	seg     *SegmentInfo                    // the active segment's entry; nil: unchanged
	entries int                             // entries stored
	since   time.Time                       // when the first change came (for the flush policy)
}

func newPending() *pending {
	return &pending{msgs: make(map[sealmail.MessageID]*MessageInfo), envs: make(map[envRef]Location),
		digests: make(map[[32]byte]sealmail.MessageID)}
}

func (p *pending) empty() bool {
	return p.entries == 0 && len(p.msgs) == 0 && len(p.envs) == 0 && len(p.digests) == 0 && p.c == nil &&
		p.next == 0 && p.seg == nil
}

// merge adds the changes of q, which came after p's.
func (p *pending) merge(q *pending, now time.Time) {
	if p.empty() {
		p.since = now
	}
	maps.Copy(p.msgs, q.msgs)
	maps.Copy(p.envs, q.envs)
	maps.Copy(p.digests, q.digests)
	if q.c != nil {
		p.c = q.c
	}
	p.next = max(p.next, q.next)
	if q.seg != nil {
		p.seg = q.seg
	}
	p.entries += q.entries
}

// clone returns a copy that later changes to p do not touch (values are
// replaced, never changed in place, so a shallow copy of the maps is one).
func (p *pending) clone() *pending {
	q := *p
	q.msgs, q.envs, q.digests = maps.Clone(p.msgs), maps.Clone(p.envs), maps.Clone(p.digests)
	return &q
}

// writeTo puts the changes into a catalog transaction.
func (p *pending) writeTo(tx *bolt.Tx) error {
	msgs, envs, digests := tx.Bucket(bucketMessages), tx.Bucket(bucketEnvelopes), tx.Bucket(bucketDigests)
	meta, segs := tx.Bucket(bucketMeta), tx.Bucket(bucketSegments)
	// In key order: bbolt fills its pages best with ascending keys.
	for _, id := range slices.Sorted(maps.Keys(p.msgs)) {
		if err := msgs.Put(idKey(id), encodeMessage(p.msgs[id])); err != nil {
			return err
		}
	}
	for _, r := range slices.SortedFunc(maps.Keys(p.envs), func(a, b envRef) int {
		return cmp.Or(cmp.Compare(a.id, b.id), cmp.Compare(a.n, b.n))
	}) {
		if err := envs.Put(envelopeKey(r.id, r.n), encodeLocation(p.envs[r])); err != nil {
			return err
		}
	}
	for d, id := range p.digests {
		var err error
		if id == 0 {
			err = digests.Delete(d[:])
		} else {
			err = digests.Put(d[:], idKey(id))
		}
		if err != nil {
			return err
		}
	}
	if p.c != nil {
		if err := meta.Put(metaCounters, encodeCounters(*p.c)); err != nil {
			return err
		}
	}
	if p.next > getU64(meta, metaNextID) {
		if err := putU64(meta, metaNextID, p.next); err != nil {
			return err
		}
	}
	if p.seg != nil {
		if err := segs.Put(segKey(p.seg.Seq), encodeSegment(p.seg)); err != nil {
			return err
		}
	}
	return nil
}

// catView is the catalog as one reader sees it: a catalog.db transaction
// with pending changes on top (newest first).
type catView struct {
	tx     *bolt.Tx
	layers []*pending
	id     [16]byte // the archive id, for segment entries
}

// message returns message id's entry (a copy the caller may change), or an
// error wrapping ErrNotFound.
func (v *catView) message(id sealmail.MessageID) (*MessageInfo, error) {
	for _, l := range v.layers {
		if m, ok := l.msgs[id]; ok {
			c := *m
			return &c, nil
		}
	}
	b := v.tx.Bucket(bucketMessages).Get(idKey(id))
	if b == nil {
		return nil, fmt.Errorf("message %d: %w", id, ErrNotFound)
	}
	return decodeMessage(id, b)
}

// envelope returns where receipt n (2, 3, …) of message id is.
func (v *catView) envelope(id sealmail.MessageID, n int) (Location, error) {
	for _, l := range v.layers {
		if loc, ok := l.envs[envRef{id, n}]; ok {
			return loc, nil
		}
	}
	b := v.tx.Bucket(bucketEnvelopes).Get(envelopeKey(id, n))
	if b == nil {
		return Location{}, fmt.Errorf("no location: %w", ErrNotFound)
	}
	return decodeLocation(b)
}

// digest returns the live message that holds an original, 0 if none.
func (v *catView) digest(d [32]byte) sealmail.MessageID {
	for _, l := range v.layers {
		if id, ok := l.digests[d]; ok {
			return id
		}
	}
	if b := v.tx.Bucket(bucketDigests).Get(d[:]); len(b) == 8 {
		return sealmail.MessageID(beUint64(b))
	}
	return 0
}

func (v *catView) counters() (counters, error) {
	for _, l := range v.layers {
		if l.c != nil {
			return *l.c, nil
		}
	}
	return decodeCounters(v.tx.Bucket(bucketMeta).Get(metaCounters))
}

// nextID returns the next message id to give.
func (v *catView) nextID() uint64 {
	n := getU64(v.tx.Bucket(bucketMeta), metaNextID)
	for _, l := range v.layers {
		n = max(n, l.next)
	}
	return n
}

// segment returns the entry of segment seq.
func (v *catView) segment(seq SegmentSeq) (*SegmentInfo, error) {
	for _, l := range v.layers {
		if l.seg != nil && l.seg.Seq == seq {
			si := *l.seg
			return &si, nil
		}
	}
	b := v.tx.Bucket(bucketSegments).Get(segKey(seq))
	if b == nil {
		return nil, fmt.Errorf("segment %s is not in the catalog: %w", seq, ErrCorrupt)
	}
	return decodeSegment(seq, v.id, b)
}

// segments returns the segment table in order.
func (v *catView) segments() ([]SegmentInfo, error) {
	var out []SegmentInfo
	err := v.tx.Bucket(bucketSegments).ForEach(func(k, b []byte) error {
		si, err := v.segment(SegmentSeq(beUint32(k)))
		if err != nil {
			return err
		}
		out = append(out, *si)
		return nil
	})
	return out, err
}

// forEachMessage calls fn for each message with an id greater than after,
// in id order, until fn returns false or an error. An entry that does not
// decode stops it with the error, unless bad (if not nil) takes it.
func (v *catView) forEachMessage(after sealmail.MessageID, fn func(*MessageInfo) (bool, error), bad func(sealmail.MessageID, error)) error {
	var ids []sealmail.MessageID // pending messages, in order
	for _, l := range v.layers {
		for id := range l.msgs {
			if id > after {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	c := v.tx.Bucket(bucketMessages).Cursor()
	k, b := c.Seek(idKey(after + 1))
	for k != nil || len(ids) > 0 {
		var id sealmail.MessageID
		var m *MessageInfo
		var err error
		if k != nil && (len(ids) == 0 || beUint64(k) < uint64(ids[0])) {
			id = sealmail.MessageID(beUint64(k))
			m, err = decodeMessage(id, b)
			k, b = c.Next()
		} else {
			if k != nil && beUint64(k) == uint64(ids[0]) {
				k, b = c.Next()
			}
			id = ids[0]
			m, err = v.message(id)
			ids = ids[1:]
		}
		if err != nil && bad != nil {
			bad(id, err)
			continue
		}
		if err != nil {
			return err
		}
		more, err := fn(m)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// view runs fn on the catalog as readers see it. fn must not call back into
// the Store.
func (s *Store) view(fn func(v *catView) error) error {
	s.pendMu.RLock()
	defer s.pendMu.RUnlock()
	return s.db.View(func(tx *bolt.Tx) error {
		return fn(&catView{tx: tx, layers: []*pending{s.pend}, id: s.id})
	})
}

// snapshot returns a view that stays as it is while the caller iterates
// (and may call into the Store): a read transaction begun together with a
// copy of the pending changes. The caller must call done.
func (s *Store) snapshot() (v *catView, done func(), err error) {
	s.pendMu.RLock()
	defer s.pendMu.RUnlock()
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, nil, err
	}
	return &catView{tx: tx, layers: []*pending{s.pend.clone()}, id: s.id}, func() { _ = tx.Rollback() }, nil
}

// apply records in p the catalog change of one entry that is (or is about
// to be) stored at loc, as seen through v (whose top layer is p): a new
// message, a further receipt or a deletion. until, forever and audit are
// what the entry table does not carry: the retention decided for the
// delivery and, for a tombstone, the audit entry that ordered it. It does not
// decide whether the change may be made: the writer did that (decide), and
// replay checks it first. It returns the receipt number.
func (p *pending) apply(v *catView, e *Entry, loc Location, until time.Time, forever bool, audit uint64) (int, error) {
	c, err := v.counters()
	if err != nil {
		return 0, err
	}
	receipt := 0
	switch e.Kind {
	case KindMessage:
		p.msgs[e.ID] = &MessageInfo{ID: e.ID, State: StateLive, Location: loc, Received: timeFromNanos(e.Received),
			Size: e.Size, Digest: e.Digest, Receipts: 1, RetainUntil: until, Forever: forever}
		p.digests[e.Digest] = e.ID
		p.next = max(p.next, v.nextID(), uint64(e.ID)+1)
		c.Messages++
		c.OriginalBytes += e.Size
		c.Receipts++
		receipt = 1
	case KindEnvelope:
		m, err := v.message(e.ID)
		if err != nil {
			return 0, fmt.Errorf("add envelope to message %d: %w", e.ID, err)
		}
		m.Receipts++
		if forever {
			m.Forever = true
		} else if !m.Forever && until.After(m.RetainUntil) {
			m.RetainUntil = until
		}
		p.msgs[e.ID] = m
		p.envs[envRef{e.ID, m.Receipts}] = loc
		c.Receipts++
		receipt = m.Receipts
	case KindTombstone:
		m, err := v.message(e.ID)
		if err != nil {
			return 0, fmt.Errorf("delete message %d: %w", e.ID, err)
		}
		m.State = StateDeleted
		m.DeletedAt, m.DeletedAudit = timeFromNanos(e.Received), audit
		p.msgs[e.ID] = m
		c.Messages--
		c.OriginalBytes -= m.Size
		// A new delivery of the same bytes is a new message.
		if v.digest(m.Digest) == m.ID {
			p.digests[m.Digest] = 0
		}
	default:
		return 0, fmt.Errorf("catalog: unexpected entry kind %s", e.Kind)
	}
	p.c = &c
	p.entries++
	return receipt, nil
}

// place sets where an entry that apply recorded without its location is.
func (p *pending) place(e *Entry, receipt int, loc Location) {
	switch e.Kind {
	case KindMessage:
		p.msgs[e.ID].Location = loc
	case KindEnvelope:
		p.envs[envRef{e.ID, receipt}] = loc
	}
}
