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
	actor   string // tombstones: who ordered it
	// msg and ph are kept for an envelope entry: if its message is no longer
	// live when the writer commits it (a tombstone won the race), it becomes
	// a message record of its own, built from them.
	msg *Message
	ph  PayloadHeader
	// listed is, for a tombstone, the catalog entry the deletion was decided
	// on; nil means "whatever it is now".
	listed *MessageInfo
	done   chan appendResp
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
	// Actor and Audit are, for a tombstone, who ordered the deletion and
	// the audit entry that did ([Deletion.Actor], [Deletion.Audit]).
	Actor string
	Audit uint64
}

type appendResp struct {
	id      sealmail.MessageID
	receipt int
	loc     Location
	skipped bool // a tombstone that was no longer due: nothing written
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

	if n := int64(len(m.Original)) + int64(len(m.Report)); n > MaxMessageBytes {
		return AppendResult{}, fmt.Errorf("append: %d bytes of original and report, the store takes at most %d: %w", n, MaxMessageBytes, ErrTooLarge)
	}
	digest := keyedDigest(s.key, m.Original)
	release, err := s.lockDigest(ctx, digest)
	if err != nil {
		return AppendResult{}, err
	}
	defer release()

	var existing sealmail.MessageID
	err = s.view(func(v *catView) error {
		existing = v.digest(digest)
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
		req.msg, req.ph = m, ph
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
	if len(req.frame) > maxFrame {
		return AppendResult{}, fmt.Errorf("append: compressed entry of %d bytes, at most %d: %w", len(req.frame), maxFrame, ErrTooLarge)
	}
	req.entry.PlainLen = int64(len(req.frame))
	s.reqs <- req
	resp := <-req.done
	if resp.err != nil {
		return AppendResult{}, resp.err
	}
	return AppendResult{ID: resp.id, Duplicate: resp.receipt > 1, Receipt: resp.receipt, Digest: digest, Location: resp.loc}, nil
}

// MaxMessageBytes is the most bytes of original plus journal report that
// [Store.Append] takes. With the compression bound and the other entries a
// record may share, it keeps every record's payload below maxPayload and
// every entry's frame length within the entry table's 32 bits, so that what
// is stored can always be read back.
const MaxMessageBytes = 1 << 30

// maxFrame bounds one entry's compressed plaintext: zstd's worst case for
// MaxMessageBytes of incompressible input is well below it.
const maxFrame = MaxMessageBytes + MaxMessageBytes/64

// maxReceipts is the most receipts one message can have (the catalog keeps
// the count in 16 bits). A further copy becomes a message of its own.
const maxReceipts = 1<<16 - 1

// Deletion asks for one message to be deleted.
type Deletion struct {
	ID     sealmail.MessageID
	Reason string // "retention", "erasure"
	Audit  uint64 // the audit entry that ordered it
	Actor  string // who ordered it, for the tombstone's audit entry (not stored in the record)
	// Listed is the catalog entry the deletion was decided on (as
	// [Store.List] or [Store.Message] returned it). The writer checks it
	// again in the transaction that would commit the tombstone: if the
	// message got a further receipt or its retention changed since, the
	// decision is stale and the tombstone is skipped (the message stays).
	// Nil means the entry as Delete reads it.
	Listed *MessageInfo
}

// Delete marks messages deleted: a tombstone entry per message (encrypted
// like any other, giving the reason and the audit entry) is written and
// synced, then the catalog marks them deleted and forgets their digests.
// Their records' bytes stay in the segments until compaction reclaims them.
// It returns the ids whose tombstone was skipped because the message changed
// after the deletion was decided (see [Deletion.Listed]) or is no longer
// live; nothing was written for them.
func (s *Store) Delete(ctx context.Context, dels []Deletion, at time.Time) ([]sealmail.MessageID, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.appends.Add(1)
	s.mu.Unlock()
	defer s.appends.Done()
	reqs := make([]*appendReq, 0, len(dels))
	var skipped []sealmail.MessageID
	for _, d := range dels {
		m, err := s.Message(d.ID)
		if err != nil {
			return nil, err
		}
		if m.State != StateLive {
			skipped = append(skipped, d.ID)
			continue
		}
		listed := d.Listed
		if listed == nil {
			listed = m
		}
		frame, err := s.codec.compress(&PayloadHeader{Version: 1, Kind: KindTombstone.String(), Received: at.UTC(), Reason: d.Reason, Audit: d.Audit})
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, &appendReq{
			entry: Entry{Kind: KindTombstone, ID: d.ID, Received: at.UnixNano(), Digest: m.Digest, PlainLen: int64(len(frame))},
			frame: frame, audit: d.Audit, actor: d.Actor, listed: listed, done: make(chan appendResp, 1),
		})
	}
	for _, r := range reqs {
		s.reqs <- r
	}
	var first error
	for _, r := range reqs {
		resp := <-r.done
		if resp.err != nil && first == nil {
			first = resp.err
		}
		if resp.err == nil && resp.skipped {
			skipped = append(skipped, r.entry.ID)
		}
	}
	return skipped, first
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
// writes them, syncs once and acknowledges them. It flushes the pending
// catalog changes when they are due (see [flushEntries]), and once more when
// the store closes.
func (s *Store) run() {
	defer close(s.done)
	var batch []*appendReq
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	armed := false
	var gather batchGatherer
	for {
		var req *appendReq
		select {
		case r, ok := <-s.reqs:
			if !ok {
				idle.Stop()
				s.flush("close")
				if s.encBusy {
					<-s.nextEnc // its goroutine ends; the file key is never used
				}
				return
			}
			req = r
		case <-idle.C:
			armed = false
			s.flush("idle")
			continue
		}
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
		batch = gather.wait(s, batch, bytes)
		resps, err := s.commit(batch)
		for i, r := range batch {
			if err != nil {
				r.done <- appendResp{err: err}
			} else {
				r.done <- resps[i]
			}
		}
		// Pending changes are written at the latest FlushInterval after
		// they came, also when no further commit comes to do it.
		if !armed && s.hasPending() {
			idle.Reset(s.opts.FlushInterval)
			armed = true
		}
	}
}

// batchGatherer decides whether the writer waits, before a group commit,
// for more appends to join it (Options.CommitDelay). Every commit costs two
// fsyncs and a key wrap whatever its size: under load, waiting a little
// for the requests that are about to come makes fewer, larger commits and
// less CPU per message (the first requests of a batch wait at most
// CommitDelay longer; those that join would have waited for the next
// commit). At low rates it does not wait.
type batchGatherer struct {
	rate  float64   // requests per second, smoothed over commits
	last  time.Time // when the previous batch was taken
	timer *time.Timer
}

// wait returns batch with the requests that arrived within CommitDelay,
// when the recent rate says at least one is due in that time.
func (g *batchGatherer) wait(s *Store, batch []*appendReq, bytes int64) []*appendReq {
	now := time.Now()
	if !g.last.IsZero() {
		if dt := now.Sub(g.last).Seconds(); dt > 0 {
			g.rate = 0.8*g.rate + 0.2*float64(len(batch))/dt
		}
	}
	g.last = now
	d := s.opts.CommitDelay
	if d <= 0 || g.rate*d.Seconds() < 1 {
		return batch
	}
	if g.timer == nil {
		g.timer = time.NewTimer(d)
	} else {
		g.timer.Reset(d)
	}
	defer g.timer.Stop()
	for bytes < s.opts.MaxBatchBytes {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				return batch
			}
			batch = append(batch, r)
			bytes += int64(len(r.frame))
		case <-g.timer.C:
			return batch
		}
	}
	return batch
}

// prepareEncryptor has the next record's encryptor made in a goroutine of
// its own (see [encryptor]), unless one is being made or ready. Only the
// writer calls it.
func (s *Store) prepareEncryptor() {
	if s.encBusy {
		return
	}
	s.encBusy = true
	go func() { s.nextEnc <- s.codec.begin() }()
}

// takeEncryptor returns the prepared encryptor if it is ready, else a new
// one. Only the writer calls it.
func (s *Store) takeEncryptor() *encryptor {
	select {
	case e := <-s.nextEnc:
		s.encBusy = false
		return e
	default:
		return s.codec.begin()
	}
}

// hasPending reports whether catalog changes are pending.
func (s *Store) hasPending() bool {
	s.pendMu.RLock()
	defer s.pendMu.RUnlock()
	return !s.pend.empty()
}

// flush writes the pending catalog changes to catalog.db. A failure is
// logged: the changes stay pending (they are durable in the segments), and
// the next flush, or the next Open's replay, writes them.
func (s *Store) flush(why string) {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	if s.pend.empty() || s.brokenErr() != nil {
		return
	}
	if err := s.updateLocked(nil); err != nil {
		s.log.Error("flush the catalog (its changes are in the segments; the next start replays them)", "why", why, "err", err)
	}
}

// flushDue reports whether the pending changes should be written before
// the next commit.
func (s *Store) flushDue() bool {
	return s.pend.entries >= flushEntries || (!s.pend.empty() && time.Since(s.pend.since) >= s.opts.FlushInterval)
}

// recordTarget is the plaintext size at which a batch's entries start a new
// record. Records stay small enough that reading one message means reading
// little else, while the key wrap is shared by many small messages.
const recordTarget = 1 << 20

// commit writes one batch and acknowledges it once its records and their
// audit entries are fsync'd: the segment is the commit point. The batch's
// catalog changes join the pending ones (see pending.go). On a failed write
// it undoes the write so that the segment ends at its committed length
// again; if even that fails, or the segment's fsync failed, the store
// refuses further commits until it is reopened (which repairs the tail).
//
// Every request is decided against the catalog as the writer sees it
// (catalog.db, the pending changes, and the batch's earlier requests,
// while it holds catMu, so that no other catalog change comes in between):
// an envelope whose message is no longer live becomes a message record of
// its own, and a tombstone whose message changed since the deletion was
// decided is skipped. So no copy is acknowledged as a receipt of a message
// that a tombstone has already deleted, whatever the order in which
// Append's digest lookup and Delete ran.
func (s *Store) commit(batch []*appendReq) ([]appendResp, error) {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	if err := s.brokenErr(); err != nil {
		return nil, fmt.Errorf("store unusable after an earlier failure, restart needed: %w", err)
	}
	if s.flushDue() {
		if err := s.updateLocked(nil); err != nil {
			return nil, fmt.Errorf("commit %d entries: flush the catalog: %w", len(batch), storageErr(err))
		}
	}
	if err := s.prepareSegment(); err != nil {
		return nil, fmt.Errorf("commit %d entries: %w", len(batch), err)
	}
	t := &commitTx{s: s, batch: batch, a: s.active, resps: make([]appendResp, len(batch)), d: newPending()}
	began := time.Now()
	start := t.a.info.Size
	t.off = start
	err := t.prepare()
	if err == nil && len(t.recs) > 0 {
		s.prepareEncryptor() // for the next commit, while this one syncs
		err = t.writeDurably()
	}
	if err != nil {
		s.commitFailed(t, start, err)
		return nil, fmt.Errorf("commit %d entries: %w", len(batch), storageErr(err))
	}
	if len(t.recs) == 0 {
		return t.resps, nil // only skipped tombstones: nothing written
	}
	t.a.info.Size = t.off
	t.a.info.Records += int64(len(t.recs))
	seg := t.a.info
	t.d.seg = &seg
	s.pendMu.Lock()
	s.pend.merge(t.d, time.Now())
	s.pendMu.Unlock()
	if s.opts.OnCommitDone != nil {
		s.opts.OnCommitDone(len(batch), time.Since(began))
	}
	return t.resps, nil
}

// prepareSegment makes sure there is an active segment with room: it seals
// a full one and starts the next (again, after a full disk stopped it).
func (s *Store) prepareSegment() error {
	if s.active != nil && s.active.info.Size >= s.opts.SealSize {
		if err := s.seal(); err != nil {
			s.setBroken(err)
			return err
		}
	}
	if s.active != nil {
		return nil
	}
	// The next segment could not be started yet (a full disk): try again.
	// Only a failed fsync makes that fatal.
	if s.nextSeq == 0 {
		return errors.New("store: no active segment")
	}
	if err := s.createSegment(s.nextSeq); err != nil {
		var serr *syncError
		if errors.As(err, &serr) {
			s.setBroken(err)
		}
		return storageErr(err)
	}
	return nil
}

// commitTx is one group commit. Its phases run in order — prepare (decide,
// buildRecords), writeDurably — and their catalog changes collect in d,
// which joins the store's pending changes once the records are durable.
type commitTx struct {
	s     *Store
	batch []*appendReq
	a     *activeSegment
	resps []appendResp

	d       *pending // this commit's catalog changes
	v       *catView // the catalog with d on top, while prepare runs
	written []int    // indexes into batch of the requests that become entries

	off       int64    // where the next record goes
	recs      [][]byte // the records to write
	committed []Committed
	wrote     bool // writeDurably began writing the records
	logged    bool // OnCommit succeeded: a failure after it must be reported
}

// prepare decides the batch and builds its records against the catalog as
// the writer sees it.
func (t *commitTx) prepare() error {
	tx, err := t.s.db.Begin(false)
	if err != nil {
		return fmt.Errorf("read catalog: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // a read transaction: nothing to roll back
	t.v = &catView{tx: tx, layers: []*pending{t.d, t.s.pend}, id: t.s.id}
	defer func() { t.v = nil }()
	if err := t.decide(); err != nil {
		return err
	}
	return t.buildRecords()
}

// decide settles each request in order against the catalog: an envelope
// becomes a further receipt or, when its message is gone, a message of its
// own; a tombstone deletes or, when stale, is skipped. Each decided entry's
// catalog change goes into t.d (its location follows in buildRecords).
func (t *commitTx) decide() error {
	for i, r := range t.batch {
		t.resps[i] = appendResp{}
		switch r.entry.Kind {
		case KindEnvelope:
			m, err := t.v.message(r.entry.ID)
			if err != nil {
				return fmt.Errorf("add envelope to message %d: %w", r.entry.ID, err)
			}
			if m.State == StateLive && m.Receipts < maxReceipts {
				receipt, err := t.d.apply(t.v, &r.entry, Location{}, r.until, r.forever, 0)
				if err != nil {
					return err
				}
				t.resps[i] = appendResp{id: m.ID, receipt: receipt}
				break
			}
			// The message was deleted after Append looked its digest up (a
			// tombstone won the race), or it has as many receipts as the
			// catalog counts: this copy is stored whole, as a message of
			// its own.
			if err := t.s.asMessage(r); err != nil {
				return err
			}
			fallthrough
		case KindMessage:
			r.entry.ID = sealmail.MessageID(t.v.nextID())
			if _, err := t.d.apply(t.v, &r.entry, Location{}, r.until, r.forever, 0); err != nil {
				return err
			}
			t.resps[i] = appendResp{id: r.entry.ID, receipt: 1}
		case KindTombstone:
			m, err := t.v.message(r.entry.ID)
			if err != nil {
				return fmt.Errorf("delete message %d: %w", r.entry.ID, err)
			}
			if m.State != StateLive || stale(r.listed, m) {
				t.resps[i] = appendResp{id: m.ID, skipped: true}
				continue
			}
			if _, err := t.d.apply(t.v, &r.entry, Location{}, time.Time{}, false, r.audit); err != nil {
				return err
			}
			t.resps[i] = appendResp{id: m.ID}
		default:
			return fmt.Errorf("append: unexpected entry kind %s", r.entry.Kind)
		}
		t.written = append(t.written, i)
	}
	return nil
}

// buildRecords encrypts the decided entries into records (one age file
// each, up to recordTarget bytes of plaintext), places them after the
// segment's committed length and records each entry's location.
func (t *commitTx) buildRecords() error {
	for lo := 0; lo < len(t.written); {
		hi, plain := lo, int64(0)
		for hi < len(t.written) && (hi == lo || plain < recordTarget) && hi-lo < maxEntries {
			plain += int64(len(t.batch[t.written[hi]].frame))
			hi++
		}
		h := &RecordHeader{Entries: make([]Entry, 0, hi-lo)}
		frames := make([][]byte, 0, hi-lo)
		var poff int64
		for _, i := range t.written[lo:hi] {
			r := t.batch[i]
			r.entry.PlainOffset = poff
			poff += r.entry.PlainLen
			h.Entries = append(h.Entries, r.entry)
			frames = append(frames, r.frame)
		}
		payload, err := t.s.takeEncryptor().finish(frames)
		if err != nil {
			return err
		}
		if int64(len(payload)) > maxPayload {
			// Append's limits keep this from happening; a record that
			// readers would refuse must never be written.
			return fmt.Errorf("record payload of %d bytes, at most %d: %w", len(payload), int64(maxPayload), ErrTooLarge)
		}
		rec := encodeRecord(h, payload)
		t.recs = append(t.recs, rec)
		recSum := sha256.Sum256(rec)
		for k, i := range t.written[lo:hi] {
			r := t.batch[i]
			loc := Location{Segment: t.a.info.Seq, Offset: t.off, Length: int64(len(rec)), Entry: k}
			t.resps[i].loc = loc
			t.d.place(&r.entry, t.resps[i].receipt, loc)
			t.committed = append(t.committed, Committed{Kind: r.entry.Kind, ID: r.entry.ID, Receipt: t.resps[i].receipt, Digest: r.entry.Digest,
				Size: r.entry.Size, Received: timeFromNanos(r.entry.Received), Location: loc, RecordSHA256: recSum, Envelope: r.env,
				RetainUntil: r.until, Forever: r.forever, Actor: r.actor, Audit: r.audit})
		}
		t.off += int64(len(rec))
		lo = hi
	}
	return nil
}

// writeDurably writes and fsyncs the records and, in parallel, has
// OnCommit make their audit entries durable. The commit is acknowledged
// only after both.
func (t *commitTx) writeDurably() error {
	var auditErr error
	var wg sync.WaitGroup
	if t.s.opts.OnCommit != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			auditErr = t.s.opts.OnCommit(t.committed)
		}()
	}
	t.wrote = true
	werr := t.s.writeSync(t.a, t.recs)
	wg.Wait()
	t.logged = t.s.opts.OnCommit != nil && auditErr == nil
	if werr != nil {
		return werr
	}
	if auditErr != nil {
		return fmt.Errorf("audit: %w", auditErr)
	}
	return nil
}

// commitFailed cleans up after a commit that did not happen: it undoes the
// written tail unless the file's content is unknown, and reports audited
// entries as rolled back. When the tail cannot be undone it flushes the
// pending changes (all acknowledged) and records in the catalog that the
// bytes after them were never made durable, so that Open cuts them off
// rather than replaying them.
func (s *Store) commitFailed(t *commitTx, start int64, err error) {
	var serr *syncError
	switch {
	case !t.wrote:
	case errors.As(err, &serr):
		// After a failed fsync the kernel may have dropped the dirty pages:
		// the file's content is unknown. Only a reopen, which rescans the
		// tail, may write again.
		s.setBroken(err)
		s.log.Error("segment fsync failed; refusing appends until restart", "segment", t.a.info.Seq.String(), "err", err)
		s.markUnsynced(t.a.info.Seq, start)
	default:
		if terr := s.undo(start); terr != nil {
			s.setBroken(terr)
			s.log.Error("cannot undo failed append", "segment", t.a.info.Seq.String(), "err", terr)
			s.markUnsynced(t.a.info.Seq, start)
		}
	}
	if t.logged && s.opts.OnRollback != nil {
		s.opts.OnRollback(t.committed, err)
	}
}

// asMessage turns an envelope request into a message request: the whole
// original (and report) compressed again, under a message header.
func (s *Store) asMessage(r *appendReq) error {
	if r.msg == nil {
		return fmt.Errorf("store: envelope entry for message %d cannot be stored whole", r.entry.ID)
	}
	ph := r.ph
	ph.Kind = KindMessage.String()
	frame, err := s.codec.compress(&ph, r.msg.Original, r.msg.Report)
	if err != nil {
		return err
	}
	if len(frame) > maxFrame {
		return fmt.Errorf("store: compressed entry of %d bytes, at most %d: %w", len(frame), maxFrame, ErrTooLarge)
	}
	r.entry.Kind, r.entry.ID, r.entry.Size = KindMessage, 0, int64(len(r.msg.Original))
	r.frame, r.entry.PlainLen = frame, int64(len(frame))
	return nil
}

// stale reports whether a message changed after a deletion was decided on
// listed: a further receipt (whose recipients a legal hold may cover) or a
// changed retention. The deletion then waits for the next decision.
func stale(listed, now *MessageInfo) bool {
	return listed != nil && (now.Receipts != listed.Receipts || now.Forever != listed.Forever ||
		!now.RetainUntil.Equal(listed.RetainUntil))
}

// writeSync appends recs to the active segment and fsyncs it.
func (s *Store) writeSync(a *activeSegment, recs [][]byte) error {
	for _, rec := range recs {
		if _, err := a.f.Write(rec); err != nil {
			return fmt.Errorf("write segment %s: %w", a.info.Seq, storageErr(err))
		}
	}
	began := time.Now()
	if err := a.f.Sync(); err != nil {
		return &syncError{seq: a.info.Seq, err: storageErr(err)}
	}
	if s.opts.OnSegmentSync != nil {
		s.opts.OnSegmentSync(time.Since(began))
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

// catalogCommitError is a failed commit of a catalog transaction whose work
// was done: bbolt may have written its new meta page before it learnt that
// fdatasync failed, so the catalog on disk may or may not hold the
// transaction. Nothing it may name can be undone; the store refuses every
// change until it is reopened.
type catalogCommitError struct{ err error }

func (e *catalogCommitError) Error() string { return fmt.Sprintf("commit catalog: %v", e.err) }
func (e *catalogCommitError) Unwrap() error { return e.err }

// update runs fn in a catalog write transaction, after the pending
// changes, which it writes too. It holds catMu, so that the writer decides
// nothing while fn reads and changes the catalog.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	return s.updateLocked(fn)
}

// updateLocked is update for a caller that holds catMu (the writer, Open).
func (s *Store) updateLocked(fn func(tx *bolt.Tx) error) error {
	if err := s.brokenErr(); err != nil {
		return fmt.Errorf("store unusable after an earlier failure, restart needed: %w", err)
	}
	return s.commitCatalog(fn)
}

// commitCatalog writes the pending changes and runs fn (if not nil) in
// one catalog transaction; once it committed, nothing is pending. If the
// work was done but the commit failed, the store is broken until reopened
// (see [catalogCommitError]); the changes stay pending, so that readers
// still see what was acknowledged. catMu must be held.
func (s *Store) commitCatalog(fn func(tx *bolt.Tx) error) error {
	ran := false
	var txid int
	err := s.db.Update(func(tx *bolt.Tx) error {
		txid = tx.ID()
		if err := s.pend.writeTo(tx); err != nil {
			return err
		}
		if fn != nil {
			if err := fn(tx); err != nil {
				return err
			}
		}
		ran = true
		return nil
	})
	if err == nil && ran && s.testCommitHook != nil {
		err = s.testCommitHook()
	}
	if err != nil && ran {
		if isFull(err) && !s.metaReached(txid) {
			// A full disk while bbolt wrote the transaction's pages,
			// before its meta page: the catalog on disk is the old one
			// (bbolt reads its meta through the mmap, so a written meta
			// page would show), and freeing space is all it takes.
			return storageErr(err)
		}
		err = &catalogCommitError{err: err}
		s.setBroken(err)
		s.log.Error("catalog commit failed; refusing changes until restart", "err", err)
	}
	if err == nil {
		s.pendMu.Lock()
		s.pend = newPending()
		s.pendMu.Unlock()
	}
	return err
}

// metaUnsynced marks bytes of the active segment that a failed commit left
// (segment seq, uint32 BE, and offset, uint64 BE): they were never made
// durable and Open must not replay them (docs/format.md).
var metaUnsynced = []byte("unsynced")

// markUnsynced flushes the pending changes (acknowledged ones: everything
// before off) and records that the bytes of segment seq from off on were
// written by a commit that failed and may not be durable. The store is
// broken; this is its last catalog change.
func (s *Store) markUnsynced(seq SegmentSeq, off int64) {
	err := s.commitCatalog(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaUnsynced, binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(nil, uint32(seq)), uint64(off)))
	})
	if err != nil {
		s.log.Error("record the unsynced tail in the catalog (the audit log's rollback entry still keeps it from being replayed)",
			"segment", seq.String(), "offset", off, "err", err)
	}
}

// metaReached reports whether the catalog's current meta page is that of
// transaction txid or later.
func (s *Store) metaReached(txid int) bool {
	reached := true
	// A read transaction that cannot start leaves reached true: the
	// caller then treats the failed commit as fatal, the safe side.
	_ = s.db.View(func(tx *bolt.Tx) error {
		reached = tx.ID() >= txid
		return nil
	})
	return reached
}

func isFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func (s *Store) setBroken(err error) {
	s.mu.Lock()
	if s.broken == nil {
		s.broken = err
	}
	s.mu.Unlock()
}

// Broken returns the failure that left the store unusable until a restart,
// or nil while it can still write.
func (s *Store) Broken() error { return s.brokenErr() }

func (s *Store) brokenErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broken
}
