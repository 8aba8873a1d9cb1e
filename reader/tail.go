// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/index"
)

// Run follows the receiver until ctx ends: it asks for the feed after the
// cursor, checks every line's link and every checkpoint's signature,
// rebuilds the document of every message a verified ingest entry names
// from all its vouched records, commits documents and cursor in one index
// batch, and evaluates the holds on what changed. While locked it waits
// for an identity. A failure (the receiver away, a broken chain) is
// recorded and retried with a growing pause.
func (r *Reader) Run(ctx context.Context) error {
	backoff := time.Second
	for ctx.Err() == nil {
		r.maintain(ctx)
		wait := r.opts.Poll
		if ids := r.identities(); ids == nil {
			wait = time.Minute
		} else {
			full, err := r.step(ctx, ids)
			switch {
			case err != nil && ctx.Err() == nil:
				r.setSeenErr(err)
				if !errors.Is(err, archive.ErrNoIdentityMatch) {
					r.problem("follow the receiver: %v", err)
				}
				wait, backoff = backoff, min(2*backoff, 30*time.Second)
			case full:
				backoff = time.Second
				continue // behind: the next page at once
			default:
				backoff = time.Second
			}
		}
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-time.After(wait):
		}
	}
	return nil
}

// look asks for the feed page of at most limit lines after seq and notes
// what it says of the receiver (its head, its messages), for the coverage.
func (r *Reader) look(ctx context.Context, after uint64, limit int) (*archive.FeedPage, error) {
	page, err := r.rcv.Feed(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.seen = seen{Horizon: page.Horizon, Head: page.Head, LastID: page.LastID, Live: page.Live, At: r.opts.Now().UTC(),
		CaughtUp: after+uint64(len(page.Lines)) >= page.Horizon}
	r.mu.Unlock()
	r.sampleIngest(page.LastID)
	return page, nil
}

func (r *Reader) setSeenErr(err error) {
	r.mu.Lock()
	r.seen.Err = err.Error()
	r.mu.Unlock()
}

// pending is a message a page names: the vouched records to build it from,
// and the seq of the latest entry that vouched for one.
type pending struct {
	id   sealmail.MessageID
	seq  uint64
	refs []index.Record // receipt order: the message entry first
}

// step indexes one feed page. It returns whether the page was full (the
// reader is behind).
func (r *Reader) step(ctx context.Context, ids []age.Identity) (bool, error) {
	r.tailMu.Lock()
	defer r.tailMu.Unlock()
	page, err := r.look(ctx, r.cur.Seq, r.opts.PageLines)
	if err != nil {
		return false, err
	}
	if len(page.Lines) == 0 {
		return false, r.evaluateHolds(ctx)
	}
	chain, err := r.chain()
	if err != nil {
		return false, err
	}
	if r.cur.Seq == 0 {
		if err := chain.Genesis(page.Genesis); err != nil {
			return false, err
		}
	}
	// Every line first: nothing of a page is used unless all of it
	// continues the chain.
	var order []*pending
	touched := map[sealmail.MessageID]*pending{}
	deleted := map[sealmail.MessageID]bool{}
	holdsChanged := false
	var checkpoint *archive.FeedEntry
	for _, line := range page.Lines {
		e, err := chain.Next(line)
		if err != nil {
			r.mu.Lock()
			r.chainErr = err.Error()
			r.mu.Unlock()
			return false, err
		}
		if e.Type == audit.TypeCheckpoint {
			checkpoint = &e
		}
		if e.Hold != "" {
			holdsChanged = true
		}
		in := e.Ingest
		if in == nil {
			continue
		}
		switch in.Kind {
		case "message", "envelope":
			p := touched[in.ID]
			if p == nil || deleted[in.ID] {
				p = &pending{id: in.ID}
				touched[in.ID] = p
				order = append(order, p)
				delete(deleted, in.ID)
			}
			p.seq = e.Seq
			p.refs = append(p.refs, index.Record{SHA256: in.Ref.Record, Entry: in.Ref.Entry})
		case "tombstone":
			deleted[in.ID] = true
		}
	}
	if err := r.commit(ctx, page, order, deleted, chain, ids); err != nil {
		return false, err
	}
	if holdsChanged {
		if err := r.refreshHolds(ctx); err != nil {
			return false, err
		}
	}
	if err := r.evaluateHolds(ctx); err != nil {
		return false, err
	}
	r.mu.Lock()
	r.seen.Err, r.chainErr = "", ""
	if checkpoint != nil {
		r.checkpoint = *checkpoint
	}
	r.mu.Unlock()
	return len(page.Lines) >= r.opts.PageLines, nil
}

// commit builds the page's documents and writes them with the cursor
// after the page's last line, in one index batch.
func (r *Reader) commit(ctx context.Context, page *archive.FeedPage, order []*pending, deleted map[sealmail.MessageID]bool,
	chain *archive.Chain, ids []age.Identity) error {
	x, done := r.index()
	defer done()
	docs, gone, err := r.build(ctx, x, page, order, deleted, ids)
	if err != nil {
		return err
	}
	next := r.cur
	next.Seq, next.Hash = chain.Seq, chain.Head.String()
	for _, d := range docs {
		next.LastID = max(next.LastID, uint64(d.ID))
	}
	if err := x.Apply(ctx, index.Batch{Docs: docs, Delete: gone, State: r.stateBytes(next)}); err != nil {
		return err
	}
	r.cur = next
	r.publish()
	if n, err := countDocs(ctx, x); err == nil {
		r.mu.Lock()
		r.docs = n
		r.mu.Unlock()
	}
	return nil
}

// chain returns the verified chain as far as the cursor.
func (r *Reader) chain() (*archive.Chain, error) {
	key, err := archive.ParseAuditKey(r.key)
	if err != nil {
		return nil, err
	}
	c := &archive.Chain{Archive: r.key.Archive, Key: key, Seq: r.cur.Seq}
	if r.cur.Seq > 0 {
		if c.Head, err = archive.ParseHash(r.cur.Hash); err != nil {
			return nil, fmt.Errorf("index state: %w", err)
		}
	}
	return c, nil
}

// build makes the documents of the messages a page named, in parallel on
// every core: each from all its records that an ingest entry vouched for,
// those it had and those the page adds. It returns them and the ids whose
// documents go (deleted, or rebuilt from nothing). A message it cannot
// build (a record missing or not the one vouched for, one that does not
// decrypt) keeps its document as it was and is recorded as a problem; a
// wrong identity stops the page and locks the reader.
func (r *Reader) build(ctx context.Context, x *index.Index, page *archive.FeedPage, order []*pending,
	deleted map[sealmail.MessageID]bool, ids []age.Identity) ([]index.Doc, []sealmail.MessageID, error) {
	msgs := make(map[sealmail.MessageID]archive.FeedMessage, len(page.Messages))
	for _, m := range page.Messages {
		msgs[sealmail.MessageID(m.ID)] = m
	}
	raws := make(map[string][]byte, len(page.Records))
	for _, rec := range page.Records {
		sum := sha256.Sum256(rec.Raw)
		raws[hex.EncodeToString(sum[:])] = rec.Raw // keyed by what it is, not by what it is called
	}
	var gone []sealmail.MessageID
	for id := range deleted {
		gone = append(gone, id)
	}
	var work []*pending
	for _, p := range order {
		if deleted[p.id] {
			continue
		}
		m, ok := msgs[p.id]
		switch {
		case !ok:
			r.problem("message %d: the feed named it but did not carry it", p.id)
			continue
		case m.State == archive.FeedDeleted:
			gone = append(gone, p.id) // its tombstone follows in a later page
			continue
		case m.State == archive.FeedUnreadable:
			r.problem("message %d not indexed: the receiver cannot read it: %s", p.id, m.Error)
			continue
		case m.State != archive.FeedLive:
			continue // never stored (rolled back, or lost before its commit)
		}
		old, found, err := x.Lookup(ctx, p.id)
		if err != nil {
			return nil, nil, err
		}
		if found {
			p.refs = union(old.Records, p.refs)
		}
		work = append(work, p)
	}
	opened := &recordCache{raws: raws, ids: ids, open: map[string]*openOnce{}}
	docs := make([]*index.Doc, len(work))
	errs := make([]error, len(work))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(1, len(work))) {
		wg.Go(func() {
			for i := range next {
				docs[i], errs[i] = r.doc(work[i], msgs[work[i].id], opened)
			}
		})
	}
feed:
	for i := range work {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	out := make([]index.Doc, 0, len(work))
	for i, d := range docs {
		switch err := errs[i]; {
		case errors.Is(err, archive.ErrNoIdentityMatch):
			r.lock("the identity does not decrypt the archive's records: unlock it with the right one")
			return nil, nil, err
		case err != nil:
			r.problem("message %d not indexed: %v", work[i].id, err)
		default:
			out = append(out, *d)
		}
	}
	return out, gone, nil
}

// union returns the records of a followed by those of b it lacks.
func union(a, b []index.Record) []index.Record {
	out := append([]index.Record{}, a...)
	for _, r := range b {
		if !containsRecord(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func containsRecord(rs []index.Record, r index.Record) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// doc builds one message's document from its vouched records.
func (r *Reader) doc(p *pending, m archive.FeedMessage, opened *recordCache) (*index.Doc, error) {
	d := &index.Doc{ID: p.id, Received: m.Received, Seq: p.seq, Records: p.refs}
	for i, ref := range p.refs {
		kind := "envelope"
		if i == 0 {
			kind = "message"
		}
		o, err := opened.get(ref.SHA256, ref.Entry, p.id, kind)
		if err != nil {
			return nil, err
		}
		original, rc, err := o.Entry(ref.Entry)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			d.Raw = original
		}
		if rc.Envelope != nil {
			d.Envelopes = append(d.Envelopes, *rc.Envelope)
		}
	}
	return d, nil
}

// recordCache decrypts each record of a page once (its file key unwrapped
// once for all its entries), however many of its messages need it.
type recordCache struct {
	raws map[string][]byte
	ids  []age.Identity
	mu   sync.Mutex
	open map[string]*openOnce
}

type openOnce struct {
	once sync.Once
	view *archive.RecordView
	rec  *archive.OpenRecord
	err  error
}

// get returns the record whose SHA-256 is sha, checked and decrypted,
// after checking that its entry names message id of the given kind, as
// the ingest entry that vouched for it said.
func (c *recordCache) get(sha string, entry int, id sealmail.MessageID, kind string) (*archive.OpenRecord, error) {
	c.mu.Lock()
	o := c.open[sha]
	if o == nil {
		o = &openOnce{}
		c.open[sha] = o
	}
	c.mu.Unlock()
	o.once.Do(func() {
		raw := c.raws[sha]
		if raw == nil {
			o.err = fmt.Errorf("the record %s the audit log vouches for is not among its stored records (replaced or lost: run `sealmail verify`)", sha)
			return
		}
		if o.view, o.err = archive.ParseRecord(raw); o.err != nil {
			return
		}
		o.rec, o.err = o.view.Decrypt(c.ids)
	})
	if o.err != nil {
		return nil, o.err
	}
	if !o.view.Names(entry, id, kind) {
		return nil, fmt.Errorf("record %s entry %d is not message %d's %s entry, as its ingest entry says", sha, entry, id, kind)
	}
	return o.rec, nil
}
