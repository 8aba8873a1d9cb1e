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
// batch, and evaluates the holds on what changed, in a pipeline
// ([Reader.follow]). While locked it waits for an identity.
// A failure (the receiver away, a broken chain) is recorded and retried
// with a growing pause.
func (r *Reader) Run(ctx context.Context) error {
	backoff := time.Second
	for ctx.Err() == nil {
		r.maintain(ctx)
		wait := r.opts.Poll
		if r.identities() == nil {
			wait = time.Minute
		} else {
			caughtUp, err := r.follow(ctx)
			switch {
			case errors.Is(err, errTailMoved):
				continue // reindex --all replaced the index: start again from its cursor
			case errors.Is(err, ErrLocked):
				continue // locked meanwhile: wait for an identity
			case err != nil && ctx.Err() == nil:
				r.setSeenErr(err)
				if !errors.Is(err, archive.ErrNoIdentityMatch) {
					r.problem("follow the receiver: %v", err)
				}
				wait, backoff = backoff, min(2*backoff, 30*time.Second)
			case !caughtUp:
				backoff = time.Second
				continue // followed for followFor, or locked: again at once
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

// errTailMoved: the index or its cursor changed (reindex --all) while a
// page was on its way: the page is dropped and the tail starts again.
var errTailMoved = errors.New("reader: the index changed under the tail")

// tailPage is one feed page on its way through the tail: fetched and
// checked against the chain, then built, then committed.
type tailPage struct {
	feed  *archive.FeedPage
	after uint64       // the cursor seq the page follows
	seq   uint64       // the chain after the page's last line
	head  archive.Hash //
	full  bool         // the page was full: the reader is behind
	// What the page's verified ingest entries name.
	order        []*pending
	deleted      map[sealmail.MessageID]bool
	holdsChanged bool
	checkpoint   *archive.FeedEntry // the page's last signed checkpoint, verified
	// Built: the index the documents were built against, the documents,
	// the ids whose documents go, and the highest id built.
	x      *index.Index
	docs   *index.Prepared
	gone   []sealmail.MessageID
	lastID uint64
	// How long each stage took, for the debug log.
	fetchTime, buildTime time.Duration
	// records is what the page's documents were built from, by id (nil:
	// the document goes): the next page builds on it before this one is
	// committed.
	records map[sealmail.MessageID][]index.Record
}

// step indexes one feed page: fetch, build, commit, one after the other.
// It returns whether the page was full (the reader is behind).
func (r *Reader) step(ctx context.Context, ids []age.Identity) (bool, error) {
	r.tailMu.Lock()
	chain, err := r.chain()
	r.tailMu.Unlock()
	if err != nil {
		return false, err
	}
	p, err := r.fetch(ctx, chain)
	if err == nil {
		err = r.build(ctx, p, nil, ids)
	}
	if err == nil {
		err = r.commit(ctx, p)
	}
	if err != nil {
		return false, err
	}
	return p.full, nil
}

// followFor bounds one [Reader.follow] under continuous ingest, so that
// the tail's other work ([Reader.maintain]) still comes round.
const followFor = time.Minute

// follow indexes feed pages until the reader has caught up (a page with
// no line), is locked, or has followed for followFor; it reports whether
// it caught up. It is a pipeline of three stages, each on its own
// goroutine: one fetches the next page and checks its lines against the
// chain (after a page that was not full, it waits Poll before it asks
// again); one decrypts, parses and builds the documents of the page
// before (in parallel on every core, [index.Index.Prepare]); one commits
// the page before that with the cursor after its last line, so that the
// index's watermark moves only after a durable commit of the documents
// below it. A stage waits for the next to take its page: at most three
// pages are in the tail at once (each at most [archive.FeedMaxLines] lines
// and the feed's byte bound of records), two of them decrypted. Each page
// is decrypted with the identity the reader holds when it is built: once
// locked, nothing more is.
func (r *Reader) follow(ctx context.Context) (caughtUp bool, err error) {
	r.tailMu.Lock()
	chain, err := r.chain()
	r.tailMu.Unlock()
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetched, built := make(chan *tailPage), make(chan *tailPage)
	var fetchErr, buildErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(fetched)
		until := time.Now().Add(followFor)
		for r.identities() != nil && time.Now().Before(until) {
			p, err := r.fetch(ctx, chain)
			if err != nil {
				fetchErr = err
				return
			}
			empty, full := len(p.feed.Lines) == 0, p.full // p is the next stage's once sent
			select {
			case fetched <- p:
			case <-ctx.Done():
				return
			}
			if empty {
				caughtUp = true
				return
			}
			if !full {
				select {
				case <-time.After(r.opts.Poll):
				case <-ctx.Done():
					return
				}
			}
		}
	})
	wg.Go(func() {
		defer close(built)
		var prev *tailPage
		for p := range fetched {
			ids := r.identities()
			if ids == nil {
				buildErr = ErrLocked
				cancel()
				return
			}
			if err := r.build(ctx, p, prev, ids); err != nil {
				buildErr = err
				cancel()
				return
			}
			select {
			case built <- p:
			case <-ctx.Done():
				return
			}
			prev = p
		}
	})
	var commitErr error
	for p := range built {
		if commitErr = r.commit(ctx, p); commitErr != nil {
			break
		}
	}
	cancel()
	wg.Wait()
	for _, err := range []error{commitErr, buildErr, fetchErr} {
		if err != nil {
			return false, err
		}
	}
	return caughtUp, nil
}

// fetch asks for the feed page after chain and checks every line of it,
// moving chain to its end. Nothing of a page is used unless all of it
// continues the chain.
func (r *Reader) fetch(ctx context.Context, chain *archive.Chain) (*tailPage, error) {
	t0 := time.Now()
	feed, err := r.look(ctx, chain.Seq, r.opts.PageLines)
	if err != nil {
		return nil, err
	}
	p := &tailPage{feed: feed, after: chain.Seq, full: len(feed.Lines) >= r.opts.PageLines, deleted: map[sealmail.MessageID]bool{}}
	if len(feed.Lines) > 0 && chain.Seq == 0 {
		if err := chain.Genesis(feed.Genesis); err != nil {
			return nil, err
		}
	}
	touched := map[sealmail.MessageID]*pending{}
	for _, line := range feed.Lines {
		e, err := chain.Next(line)
		if err != nil {
			r.mu.Lock()
			r.chainErr = err.Error()
			r.mu.Unlock()
			return nil, err
		}
		if e.Type == audit.TypeCheckpoint {
			p.checkpoint = &e
		}
		if e.Hold != "" {
			p.holdsChanged = true
		}
		in := e.Ingest
		if in == nil {
			continue
		}
		switch in.Kind {
		case "message", "envelope":
			m := touched[in.ID]
			if m == nil || p.deleted[in.ID] {
				m = &pending{id: in.ID}
				touched[in.ID] = m
				p.order = append(p.order, m)
				delete(p.deleted, in.ID)
			}
			m.seq = e.Seq
			m.refs = append(m.refs, index.Record{SHA256: in.Ref.Record, Entry: in.Ref.Entry})
		case "tombstone":
			p.deleted[in.ID] = true
		}
	}
	p.seq, p.head = chain.Seq, chain.Head
	p.fetchTime = time.Since(t0)
	return p, nil
}

// commit writes a built page's documents with the cursor after its last
// line in one index batch, then evaluates the holds on what changed. A
// page that does not follow the cursor (reindex --all came between) is
// dropped with errTailMoved.
func (r *Reader) commit(ctx context.Context, p *tailPage) error {
	r.tailMu.Lock()
	defer r.tailMu.Unlock()
	if len(p.feed.Lines) == 0 {
		return r.evaluateHolds(ctx)
	}
	if err := r.apply(ctx, p); err != nil {
		return err
	}
	if p.holdsChanged {
		if err := r.refreshHolds(ctx); err != nil {
			return err
		}
	}
	if err := r.evaluateHolds(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	r.seen.Err, r.chainErr = "", ""
	if p.checkpoint != nil {
		r.checkpoint = *p.checkpoint
	}
	r.mu.Unlock()
	return nil
}

// apply is commit's index batch. The caller holds tailMu.
func (r *Reader) apply(ctx context.Context, p *tailPage) error {
	x, done := r.index()
	defer done()
	if x != p.x || r.cur.Seq != p.after {
		return errTailMoved
	}
	next := r.cur
	next.Seq, next.Hash = p.seq, p.head.String()
	next.LastID = max(next.LastID, p.lastID)
	t0 := time.Now()
	// The documents in parallel parts, then the cursor: a crash between
	// leaves documents above the cursor, which the tail writes again.
	b := index.Batch{Prepared: p.docs, Delete: p.gone, State: r.stateBytes(next), Parts: runtime.GOMAXPROCS(0)}
	if err := x.Apply(ctx, b); err != nil {
		return err
	}
	r.log.Debug("tail page committed", "after", p.after, "lines", p.seq-p.after, "docs", p.docs.Len(),
		"fetch", p.fetchTime, "build", p.buildTime, "apply", time.Since(t0))
	p.docs, p.feed = nil, nil // committed: no need to keep the mail in memory
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
// those it had (in the index, or in prev, the page built before it and
// perhaps not committed yet) and those the page adds. It sets the page's
// documents, extracted and analysed for the index, and the ids whose
// documents go (deleted, or rebuilt from nothing). A message it cannot
// build (a record missing or not the one vouched for, one that does not
// decrypt) keeps its document as it was and is recorded as a problem; a
// wrong identity stops the page and locks the reader.
func (r *Reader) build(ctx context.Context, p *tailPage, prev *tailPage, ids []age.Identity) error {
	if len(p.feed.Lines) == 0 {
		return nil
	}
	t0 := time.Now()
	defer func() { p.buildTime = time.Since(t0) }()
	x, done := r.index()
	defer done()
	p.x = x
	// The pages before prev are committed (the writer took prev): a
	// message above the highest id they indexed has no document unless
	// prev built it.
	r.tailMu.Lock()
	indexed := sealmail.MessageID(r.cur.LastID)
	r.tailMu.Unlock()
	msgs := make(map[sealmail.MessageID]archive.FeedMessage, len(p.feed.Messages))
	for _, m := range p.feed.Messages {
		msgs[sealmail.MessageID(m.ID)] = m
	}
	raws := make(map[string][]byte, len(p.feed.Records))
	for _, rec := range p.feed.Records {
		sum := sha256.Sum256(rec.Raw)
		raws[hex.EncodeToString(sum[:])] = rec.Raw // keyed by what it is, not by what it is called
	}
	for id := range p.deleted {
		p.gone = append(p.gone, id)
	}
	var work []*pending
	for _, m := range p.order {
		if p.deleted[m.id] {
			continue
		}
		fm, ok := msgs[m.id]
		switch {
		case !ok:
			r.problem("message %d: the feed named it but did not carry it", m.id)
			continue
		case fm.State == archive.FeedDeleted:
			p.gone = append(p.gone, m.id) // its tombstone follows in a later page
			continue
		case fm.State == archive.FeedUnreadable:
			r.problem("message %d not indexed: the receiver cannot read it: %s", m.id, fm.Error)
			continue
		case fm.State != archive.FeedLive:
			continue // never stored (rolled back, or lost before its commit)
		}
		old, found, err := r.had(ctx, x, prev, indexed, m.id)
		if err != nil {
			return err
		}
		if found {
			m.refs = union(old, m.refs)
		}
		work = append(work, m)
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
		return err
	}
	out := make([]index.Doc, 0, len(work))
	p.records = make(map[sealmail.MessageID][]index.Record, len(work))
	for i, d := range docs {
		switch err := errs[i]; {
		case errors.Is(err, archive.ErrNoIdentityMatch):
			r.lock("the identity does not decrypt the archive's records: unlock it with the right one")
			return err
		case err != nil:
			r.problem("message %d not indexed: %v", work[i].id, err)
		default:
			out = append(out, *d)
			p.records[d.ID] = d.Records
			p.lastID = max(p.lastID, uint64(d.ID))
		}
	}
	for _, id := range p.gone {
		p.records[id] = nil
	}
	var err error
	p.docs, err = x.Prepare(ctx, out)
	return err
}

// had returns the records message id's document was built from before
// this page: in prev, if that page built or removed it, else in the index
// (whose highest id is indexed). found is false if it has no document.
func (r *Reader) had(ctx context.Context, x *index.Index, prev *tailPage, indexed, id sealmail.MessageID) (recs []index.Record, found bool, err error) {
	if prev != nil {
		if recs, ok := prev.records[id]; ok {
			return recs, recs != nil, nil
		}
	}
	if id > indexed {
		return nil, false, nil // never indexed (a rebuild: none is)
	}
	old, found, err := x.Lookup(ctx, id)
	return old.Records, found, err
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
