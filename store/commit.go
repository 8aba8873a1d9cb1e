// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sealmail/sealmail"
)

// Message is what [Store.Append] stores.
type Message struct {
	Original []byte             // the original message, byte-exact
	Report   []byte             // the journal report it arrived in, or nil
	Envelope *sealmail.Envelope // how this copy arrived; stored encrypted
	Received time.Time
	// RetainUntil and Forever are what the retention policy decided for
	// this delivery. A further delivery of a stored original can only
	// lengthen its retention.
	RetainUntil time.Time
	Forever     bool
}

// AppendResult tells where a message went.
type AppendResult struct {
	ID sealmail.MessageID
	// Duplicate is true when the original was already stored: only the new
	// envelope (and report) was appended, as a further receipt.
	Duplicate bool
	Receipt   int // 1 for a new message, 2, 3, … for further envelopes
	Digest    [32]byte
	Location  Location
}

type appendReq struct {
	entry   Entry
	frame   []byte             // the entry's compressed plaintext
	env     *sealmail.Envelope // for OnCommit
	until   time.Time          // retention
	forever bool
	audit   uint64 // tombstones: the audit entry that ordered the deletion
	done    chan appendResp
}

// Committed describes one entry of a group commit, for the caller's audit
// trail ([Options.OnCommit]).
type Committed struct {
	Kind     Kind
	ID       sealmail.MessageID
	Receipt  int // 1 for a new message, 2, 3, … for further envelopes
	Digest   [32]byte
	Size     int64
	Received time.Time
	Location Location
	// RecordSHA256 is the SHA-256 of the whole record that holds the entry
	// (shared by its entries). Audited, it makes a substituted record
	// detectable without the identity.
	RecordSHA256 [32]byte
	Envelope     *sealmail.Envelope // nil for entries recovered at Open
	RetainUntil  time.Time          // what the retention policy decided for this delivery
	Forever      bool
}

type appendResp struct {
	id      sealmail.MessageID
	receipt int
	loc     Location
	err     error
}

// Append stores m durably. It returns after the record is fsync'd and the
// catalog transaction committed, or with an error, in which case nothing of
// m is cataloged. A second copy of an original already in the store is
// stored as an envelope entry only. Errors from a full disk wrap
// [sealmail.ErrStorageFull].
func (s *Store) Append(ctx context.Context, m *Message) (AppendResult, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return AppendResult{}, ErrClosed
	}
	s.appends.Add(1)
	s.mu.Unlock()
	defer s.appends.Done()

	digest := keyedDigest(s.key, m.Original)
	release, err := s.lockDigest(ctx, digest)
	if err != nil {
		return AppendResult{}, err
	}
	defer release()

	var existing sealmail.MessageID
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketDigests).Get(digest[:]); len(v) == 8 {
			existing = sealmail.MessageID(beUint64(v))
		}
		return nil
	})
	if err != nil {
		return AppendResult{}, fmt.Errorf("look up digest: %w", err)
	}
	sum := sha256.Sum256(m.Original)
	ph := PayloadHeader{
		Version: 1, Received: m.Received.UTC(), Size: int64(len(m.Original)),
		SHA256: hex.EncodeToString(sum[:]), Envelope: m.Envelope, ReportSize: int64(len(m.Report)),
	}
	req := &appendReq{
		entry:   Entry{Received: m.Received.UnixNano(), Digest: digest},
		env:     m.Envelope,
		until:   m.RetainUntil,
		forever: m.Forever,
		done:    make(chan appendResp, 1),
	}
	if existing != 0 {
		ph.Kind = KindEnvelope.String()
		req.entry.Kind, req.entry.ID, req.entry.Size = KindEnvelope, existing, int64(len(m.Report))
		req.frame, err = s.codec.compress(&ph, m.Report)
	} else {
		ph.Kind = KindMessage.String()
		req.entry.Kind, req.entry.Size = KindMessage, int64(len(m.Original))
		report, cut := cutOriginal(m.Report, m.Original)
		if cut != nil {
			ph.Version, ph.ReportCut, ph.ReportSize = 2, cut, int64(len(report))
		}
		req.frame, err = s.codec.compress(&ph, m.Original, report)
	}
	if err != nil {
		return AppendResult{}, err
	}
	req.entry.PlainLen = int64(len(req.frame))
	s.reqs <- req
	resp := <-req.done
	if resp.err != nil {
		return AppendResult{}, resp.err
	}
	return AppendResult{ID: resp.id, Duplicate: existing != 0, Receipt: resp.receipt, Digest: digest, Location: resp.loc}, nil
}

// Deletion asks for one message to be deleted.
type Deletion struct {
	ID     sealmail.MessageID
	Reason string // "retention", "erasure"
	Audit  uint64 // the audit entry that ordered it
}

// Delete marks messages deleted: a tombstone entry per message (encrypted
// like any other, giving the reason and the audit entry) is written and
// synced, then the catalog marks them deleted and forgets their digests.
// Their records' bytes stay in the segments until compaction reclaims them.
func (s *Store) Delete(ctx context.Context, dels []Deletion, at time.Time) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.appends.Add(1)
	s.mu.Unlock()
	defer s.appends.Done()
	reqs := make([]*appendReq, 0, len(dels))
	for _, d := range dels {
		m, err := s.Message(d.ID)
		if err != nil {
			return err
		}
		if m.State != StateLive {
			continue
		}
		frame, err := s.codec.compress(&PayloadHeader{Version: 1, Kind: KindTombstone.String(), Received: at.UTC(), Reason: d.Reason, Audit: d.Audit})
		if err != nil {
			return err
		}
		reqs = append(reqs, &appendReq{
			entry: Entry{Kind: KindTombstone, ID: d.ID, Received: at.UnixNano(), Digest: m.Digest, PlainLen: int64(len(frame))},
			frame: frame, audit: d.Audit, done: make(chan appendResp, 1),
		})
	}
	for _, r := range reqs {
		s.reqs <- r
	}
	var first error
	for _, r := range reqs {
		if resp := <-r.done; resp.err != nil && first == nil {
			first = resp.err
		}
	}
	return first
}

// lockDigest serialises appends of the same original, so that the second of
// two concurrent copies sees the first in the catalog and becomes an
// envelope record.
func (s *Store) lockDigest(ctx context.Context, d [32]byte) (func(), error) {
	for {
		s.mu.Lock()
		ch, busy := s.inflight[d]
		if !busy {
			ch = make(chan struct{})
			s.inflight[d] = ch
			s.mu.Unlock()
			return func() {
				s.mu.Lock()
				delete(s.inflight, d)
				s.mu.Unlock()
				close(ch)
			}, nil
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// run is the writer goroutine: it takes every request that is waiting,
// writes them, syncs once and commits once.
func (s *Store) run() {
	defer close(s.done)
	var batch []*appendReq
	for req := range s.reqs {
		batch = append(batch[:0], req)
		bytes := int64(len(req.frame))
	drain:
		for bytes < s.opts.MaxBatchBytes {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
				bytes += int64(len(r.frame))
			default:
				break drain
			}
		}
		resps, err := s.commit(batch)
		for i, r := range batch {
			if err != nil {
				r.done <- appendResp{err: err}
			} else {
				r.done <- resps[i]
			}
		}
	}
}

// recordTarget is the plaintext size at which a batch's entries start a new
// record. Records stay small enough that reading one message means reading
// little else, while the key wrap is shared by many small messages.
const recordTarget = 1 << 20

// commit writes one batch. On error it undoes the write so that the segment
// ends at its committed length again; if even that fails the store refuses
// further appends until it is reopened (which repairs the tail).
func (s *Store) commit(batch []*appendReq) ([]appendResp, error) {
	if s.broken != nil {
		return nil, fmt.Errorf("store unusable after an earlier failure, restart needed: %w", s.broken)
	}
	if s.active == nil {
		return nil, errors.New("store: no active segment")
	}
	if s.active.info.Size >= s.opts.SealSize {
		if err := s.seal(); err != nil {
			s.broken = err
			return nil, err
		}
	}
	a := s.active
	start := a.info.Size
	off := start
	resps := make([]appendResp, len(batch))
	var recs [][]byte
	committed := make([]Committed, len(batch))
	logged := false // OnCommit succeeded: a failure after it must be reported

	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		msgs := tx.Bucket(bucketMessages)
		c, err := decodeCounters(meta.Get(metaCounters))
		if err != nil {
			return err
		}
		next := getU64(meta, metaNextID)
		for lo := 0; lo < len(batch); {
			// One record: entries until recordTarget bytes of plaintext.
			hi, plain := lo, int64(0)
			for hi < len(batch) && (hi == lo || plain < recordTarget) && hi-lo < maxEntries {
				plain += int64(len(batch[hi].frame))
				hi++
			}
			h := &RecordHeader{Entries: make([]Entry, 0, hi-lo)}
			frames := make([][]byte, 0, hi-lo)
			var poff int64
			for _, r := range batch[lo:hi] {
				if r.entry.Kind == KindMessage {
					r.entry.ID = sealmail.MessageID(next)
					next++
				}
				r.entry.PlainOffset = poff
				poff += r.entry.PlainLen
				h.Entries = append(h.Entries, r.entry)
				frames = append(frames, r.frame)
			}
			payload, err := s.codec.encrypt(frames)
			if err != nil {
				return err
			}
			rec := encodeRecord(h, payload)
			recs = append(recs, rec)
			recSum := sha256.Sum256(rec)
			for k, r := range batch[lo:hi] {
				loc := Location{Segment: a.info.Seq, Offset: off, Length: int64(len(rec)), Entry: k}
				switch r.entry.Kind {
				case KindMessage:
					mi := &MessageInfo{ID: r.entry.ID, State: StateLive, Location: loc, Received: timeFromNanos(r.entry.Received),
						Size: r.entry.Size, Digest: r.entry.Digest, Receipts: 1, RetainUntil: r.until, Forever: r.forever}
					if err := msgs.Put(idKey(mi.ID), encodeMessage(mi)); err != nil {
						return err
					}
					if err := tx.Bucket(bucketDigests).Put(mi.Digest[:], idKey(mi.ID)); err != nil {
						return err
					}
					c.Messages++
					c.OriginalBytes += mi.Size
					resps[lo+k] = appendResp{id: mi.ID, receipt: 1, loc: loc}
				case KindEnvelope:
					mi, err := decodeMessage(r.entry.ID, msgs.Get(idKey(r.entry.ID)))
					if err != nil {
						return fmt.Errorf("add envelope to message %d: %w", r.entry.ID, err)
					}
					mi.Receipts++
					if r.forever {
						mi.Forever = true
					} else if !mi.Forever && r.until.After(mi.RetainUntil) {
						mi.RetainUntil = r.until
					}
					if err := tx.Bucket(bucketEnvelopes).Put(envelopeKey(mi.ID, mi.Receipts), encodeLocation(loc)); err != nil {
						return err
					}
					if err := msgs.Put(idKey(mi.ID), encodeMessage(mi)); err != nil {
						return err
					}
					resps[lo+k] = appendResp{id: mi.ID, receipt: mi.Receipts, loc: loc}
				case KindTombstone:
					mi, err := decodeMessage(r.entry.ID, msgs.Get(idKey(r.entry.ID)))
					if err != nil {
						return fmt.Errorf("delete message %d: %w", r.entry.ID, err)
					}
					if mi.State == StateLive {
						mi.State = StateDeleted
						mi.DeletedAt, mi.DeletedAudit = timeFromNanos(r.entry.Received), r.audit
						c.Messages--
						c.OriginalBytes -= mi.Size
						// A new delivery of the same bytes is a new message.
						if err := tx.Bucket(bucketDigests).Delete(mi.Digest[:]); err != nil {
							return err
						}
						if err := msgs.Put(idKey(mi.ID), encodeMessage(mi)); err != nil {
							return err
						}
					}
					resps[lo+k] = appendResp{id: mi.ID, loc: loc}
				default:
					return fmt.Errorf("append: unexpected entry kind %s", r.entry.Kind)
				}
				c.Receipts++
				committed[lo+k] = Committed{Kind: r.entry.Kind, ID: r.entry.ID, Receipt: resps[lo+k].receipt, Digest: r.entry.Digest,
					Size: r.entry.Size, Received: timeFromNanos(r.entry.Received), Location: loc, RecordSHA256: recSum, Envelope: r.env,
					RetainUntil: r.until, Forever: r.forever}
			}
			off += int64(len(rec))
			lo = hi
		}
		// The records (and their audit entries) must be durable before the
		// catalog that points at them commits: write and sync inside the
		// transaction, so that a failure here rolls the catalog back. The
		// audit entries are written meanwhile, to another file.
		var auditErr error
		var wg sync.WaitGroup
		if s.opts.OnCommit != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				auditErr = s.opts.OnCommit(committed)
			}()
		}
		werr := s.writeSync(a, recs)
		wg.Wait()
		logged = s.opts.OnCommit != nil && auditErr == nil
		if werr != nil {
			return werr
		}
		if auditErr != nil {
			return fmt.Errorf("audit: %w", auditErr)
		}
		seg := a.info
		seg.Size = off
		seg.Records += int64(len(recs))
		if err := tx.Bucket(bucketSegments).Put(segKey(seg.Seq), encodeSegment(&seg)); err != nil {
			return err
		}
		if err := meta.Put(metaCounters, encodeCounters(c)); err != nil {
			return err
		}
		return putU64(meta, metaNextID, next)
	})
	if err != nil {
		var serr *syncError
		if errors.As(err, &serr) {
			// After a failed fsync the kernel may have dropped the dirty
			// pages: the file's content is unknown. Only a reopen, which
			// rescans the tail, may write again.
			s.broken = err
			s.log.Error("segment fsync failed; refusing appends until restart", "segment", a.info.Seq.String(), "err", err)
		} else if terr := s.undo(start); terr != nil {
			s.broken = terr
			s.log.Error("cannot undo failed append", "segment", a.info.Seq.String(), "err", terr)
		}
		if logged && s.opts.OnRollback != nil {
			s.opts.OnRollback(committed, err)
		}
		return nil, fmt.Errorf("commit %d entries: %w", len(batch), storageErr(err))
	}
	a.info.Size = off
	a.info.Records += int64(len(recs))
	return resps, nil
}

// writeSync appends recs to the active segment and fsyncs it.
func (s *Store) writeSync(a *activeSegment, recs [][]byte) error {
	for _, rec := range recs {
		if _, err := a.f.Write(rec); err != nil {
			return fmt.Errorf("write segment %s: %w", a.info.Seq, storageErr(err))
		}
	}
	if err := a.f.Sync(); err != nil {
		return &syncError{seq: a.info.Seq, err: storageErr(err)}
	}
	return nil
}

// undo cuts the active segment back to its committed length after a failed
// commit.
func (s *Store) undo(size int64) error {
	a := s.active
	if err := a.f.Truncate(size); err != nil {
		return fmt.Errorf("truncate segment %s to %d: %w", a.info.Seq, size, err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("sync segment %s: %w", a.info.Seq, err)
	}
	return nil
}

// storageErr marks a full disk so that callers can answer "try later".
func storageErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		if !errors.Is(err, sealmail.ErrStorageFull) {
			return fmt.Errorf("%w: %w", sealmail.ErrStorageFull, err)
		}
	}
	return err
}

func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// syncError is a failed fsync of a segment.
type syncError struct {
	seq SegmentSeq
	err error
}

func (e *syncError) Error() string { return fmt.Sprintf("sync segment %s: %v", e.seq, e.err) }
func (e *syncError) Unwrap() error { return e.err }
