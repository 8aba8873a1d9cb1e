// SPDX-License-Identifier: Apache-2.0

package index

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/blugelabs/bluge"
	bindex "github.com/blugelabs/bluge/index"
	"github.com/blugelabs/bluge/search"
	"github.com/blugelabs/bluge/search/aggregations"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/index/query"
	"github.com/sealmail/sealmail/vfs"
)

// ErrClosed is returned by every method of a closed [Index].
var ErrClosed = errors.New("index: closed")

// ErrLocked is returned by [Open] when another process has the index open.
var ErrLocked = errors.New("index: locked by another process")

// Options configure an [Index]. The zero value is usable.
type Options struct {
	// Logger receives diagnostics (never message content). Nil discards.
	Logger *slog.Logger
	// Workers is the number of goroutines that extract text in Add; 0 means
	// GOMAXPROCS.
	Workers int
	// LockTimeout is how long Open waits for another process that has the
	// index open; 0 does not wait.
	LockTimeout time.Duration
	// Extractor reads the attachments index does not read itself (PDF,
	// Office, archives, …); nil indexes only their names. It is called on
	// the Workers goroutines, which bounds its concurrency.
	Extractor Extractor

	// merging, if not nil, is called as a background merge starts
	// writing its segment (tests).
	merging func()
}

// DefaultLimit is the page size of a search whose Limit is 0; MaxLimit caps
// a page.
const (
	DefaultLimit = 50
	MaxLimit     = 10000
)

// Index is a full-text index of archived messages. Its methods may be called
// concurrently; writes are serialised.
type Index struct {
	log     *slog.Logger
	workers int
	ext     Extractor // nil, or timed wrapping Options.Extractor
	stats   extractStats

	mu     sync.RWMutex // guards w and closed; held for reading by every operation
	wmu    sync.Mutex   // serialises batches
	w      *bluge.Writer
	lock   io.Closer // advisory lock on dir/LOCK
	closed bool

	// omit names fields left out of every document: the field-share
	// measurement (TestFieldShares) builds indexes without one field.
	omit map[string]bool
}

// Doc is one message to index. A document replaces the whole earlier
// document of its ID: it is built from every receipt at once.
type Doc struct {
	ID        sealmail.MessageID
	Raw       []byte              // the original message, byte-exact
	Envelopes []sealmail.Envelope // may be empty; senders and recipients (with kinds) are indexed
	Received  time.Time           // the date when the message has no readable Date header
	Internal  []string            // optional internal domains: only their addresses go into "involved"
	// Seq is the caller's sequence number of this version of the document
	// (the reader: the audit entry of the last receipt it holds), so that
	// documents updated after a point can be found again ([Query].AfterSeq).
	Seq uint64
	// Records are stored with the document for the caller (the reader: the
	// stored records, vouched for by the audit log, it was built from, one
	// per receipt); [Index.Stored] returns them.
	Records []Record
}

// Record names one stored record a document was built from.
type Record struct {
	SHA256 string `json:"record"`
	Entry  int    `json:"entry"`
}

// SearchOptions page and order a search. The zero value returns the newest
// [DefaultLimit] matches.
type SearchOptions struct {
	Limit, Offset int
	Oldest        bool // oldest first; default newest first by date
}

// Hit is one search result.
type Hit struct {
	ID            sealmail.MessageID
	Date          time.Time
	From, Subject string
	Size          int64
	HasAttachment bool
	// Attachments lists the message's attachments and named parts, each
	// with whether its name or text matched a word of the query.
	Attachments []HitAttachment
}

// Result is a page of hits and the total number of matches.
type Result struct {
	Total int
	Hits  []Hit
}

// Open opens the index in dir, creating dir and an empty index if missing.
// An index of an older [FormatVersion] is removed (logged at Info) and
// opened empty: its caller indexes everything again, as after a rebuild.
// Only one process may have an index open: a second Open of the same
// directory fails with [ErrLocked] until the first is closed.
func Open(dir string, opts Options) (*Index, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("index: open %s: %w", dir, err)
	}
	// Bluge itself does not lock: the flock keeps a second process out.
	lock, err := vfs.Lock(nil, filepath.Join(dir, "LOCK"), opts.LockTimeout)
	if errors.Is(err, vfs.ErrLocked) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, fmt.Errorf("index: open %s: %w", dir, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := checkFormat(dir, log); err != nil {
		lock.Close()
		return nil, err
	}
	cfg := bluge.DefaultConfigWithDirectory(func() bindex.Directory { return newDirectory(dir, opts.merging) })
	cfg.DefaultSearchAnalyzer = textAnalyzer
	for _, f := range indexedFields {
		// Bluge's norm function reads this map (and only it) when it
		// writes a segment.
		cfg.PerFieldSimilarity[f] = unscored{}
	}
	w, err := bluge.OpenWriter(cfg)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("index: open %s: %w", dir, err)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	x := &Index{log: log, workers: workers, w: w, lock: lock}
	if opts.Extractor != nil {
		x.ext = &timed{Extractor: opts.Extractor, stats: &x.stats}
	}
	return x, nil
}

// Close closes the index. It is idempotent; later calls return nil.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	x.closed = true
	err := x.w.Close()
	if x.lock != nil {
		x.lock.Close() // releases the flock
	}
	if err != nil {
		return fmt.Errorf("index: close: %w", err)
	}
	return nil
}

// Add indexes docs in one batch. When it returns nil the batch is durable.
// Adding an ID that is already indexed replaces its document. Malformed
// messages never cause an error: they are indexed as far as possible and
// flagged.
func (x *Index) Add(ctx context.Context, docs []Doc) error {
	return x.Apply(ctx, Batch{Docs: docs})
}

// Batch is one atomic change of the index: documents added or replaced,
// documents removed, and optionally the caller's state ([Index.State]),
// all durable together or not at all.
type Batch struct {
	Docs   []Doc
	Delete []sealmail.MessageID
	// State, if not nil, replaces the stored state.
	State []byte
	// Prepared, if not nil, are the documents, built ahead by
	// [Index.Prepare]; Docs is then ignored.
	Prepared *Prepared
	// Parts > 1 writes the documents in up to Parts batches built in
	// parallel before the one with the deletions and the state: the
	// state is durable only after all the documents, but a crash may
	// leave some of them in the index without it. For callers that apply
	// such a batch again from their state (the reader's tail); 0 or 1:
	// one atomic batch.
	Parts int
}

// Apply makes b durable in one Bluge batch (unless b.Parts says
// otherwise): after a crash the index holds all of it or none. Text is extracted on Options.Workers goroutines
// ([Index.Prepare]) unless b.Prepared has it done.
func (x *Index) Apply(ctx context.Context, b Batch) error {
	p := b.Prepared
	if p == nil {
		if len(b.Docs) == 0 && len(b.Delete) == 0 && b.State == nil {
			return nil
		}
		var err error
		if p, err = x.Prepare(ctx, b.Docs); err != nil {
			return err
		}
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return ErrClosed
	}
	x.wmu.Lock()
	defer x.wmu.Unlock()
	if err := x.write(p, b.Delete, b.State, b.Parts); err != nil {
		return fmt.Errorf("index: batch of %d docs, %d deletions: %w", len(p.docs), len(b.Delete), err)
	}
	return nil
}

// Delete removes ids from the index; unknown ids are ignored.
func (x *Index) Delete(ctx context.Context, ids []sealmail.MessageID) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("index: delete %d ids: %w", len(ids), err)
	}
	return x.Apply(ctx, Batch{Delete: ids})
}

// Query is a parsed query, narrowed by what the caller adds that the
// query language cannot say.
type Query struct {
	Node query.Node
	// AfterSeq, if not 0, keeps documents whose [Doc.Seq] is greater.
	AfterSeq uint64
	// ID, if not 0, keeps only that message's document.
	ID sealmail.MessageID
}

// Parse parses q into a [Query]. A syntax error is a *query.SyntaxError.
func Parse(q string) (Query, error) {
	n, err := query.Parse(q)
	return Query{Node: n}, err
}

// bluge translates q, restricted to message documents (not the state).
func (q Query) bluge() bluge.Query {
	b := bluge.NewBooleanQuery().AddMust(bluge.NewTermQuery(kindMessage).SetField(fKind))
	if q.Node != nil {
		b.AddMust(translate(q.Node))
	}
	if q.AfterSeq > 0 {
		b.AddMust(intRange(fSeq, int64(min(q.AfterSeq, math.MaxInt64-1))+1, math.MaxInt64))
	}
	if q.ID != 0 {
		b.AddMust(bluge.NewTermQuery(q.ID.String()).SetField(fID))
	}
	return b
}

// reader opens a reader snapshot; the caller holds x.mu for reading until
// it has closed the reader.
func (x *Index) reader() (*bluge.Reader, error) {
	if x.closed {
		return nil, ErrClosed
	}
	r, err := x.w.Reader()
	if err != nil {
		return nil, fmt.Errorf("index: open reader: %w", err)
	}
	return r, nil
}

// Search returns one page of messages matching q (see package query for the
// language), newest first unless opts.Oldest. A query syntax error is a
// *query.SyntaxError.
func (x *Index) Search(ctx context.Context, q string, opts SearchOptions) (*Result, error) {
	pq, err := Parse(q)
	if err != nil {
		return nil, err
	}
	return x.Find(ctx, pq, opts)
}

// Find returns one page of the messages q matches, newest first unless
// opts.Oldest.
func (x *Index) Find(ctx context.Context, q Query, opts SearchOptions) (*Result, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	bq := q.bluge()
	r, err := x.reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	limit := opts.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	order := []string{"-" + fSort}
	if opts.Oldest {
		order = []string{fSort}
	}
	req := bluge.NewTopNSearch(limit, bq).SetFrom(max(opts.Offset, 0)).SortBy(order).SetScore("none")
	req.AddAggregation("count", aggregations.CountMatches())
	terms := attachmentTerms(q.Node)
	it, err := r.Search(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("index: search: %w", err)
	}
	res := &Result{}
	for {
		m, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("index: search: %w", err)
		}
		if m == nil {
			break
		}
		h, err := hitOf(m, terms)
		if err != nil {
			return nil, err
		}
		res.Hits = append(res.Hits, h)
	}
	res.Total = int(it.Aggregations().Count())
	return res, nil
}

func hitOf(m *search.DocumentMatch, terms []queryTerm) (Hit, error) {
	var h Hit
	var perr error
	err := m.VisitStoredFields(func(field string, value []byte) bool {
		switch field {
		case fID:
			h.ID, perr = sealmail.ParseMessageID(string(value))
		case fDate:
			h.Date, _ = bluge.DecodeDateTime(value)
		case fFromDisplay:
			h.From = string(value)
		case fSubject + "_s":
			h.Subject = string(value)
		case fSize:
			h.Size, _ = intValue(value)
		case fHas:
			h.HasAttachment = true
		case fAttachments:
			h.Attachments, perr = hitAttachments(value, terms)
		}
		return perr == nil
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return h, fmt.Errorf("index: read hit: %w", err)
	}
	return h, nil
}

// Count returns the number of messages matching q.
func (x *Index) Count(ctx context.Context, q string) (int, error) {
	pq, err := Parse(q)
	if err != nil {
		return 0, err
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	r, err := x.reader()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	req := bluge.NewTopNSearch(0, pq.bluge()).SetScore("none")
	req.AddAggregation("count", aggregations.CountMatches())
	it, err := r.Search(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("index: count: %w", err)
	}
	for {
		m, err := it.Next()
		if err != nil {
			return 0, fmt.Errorf("index: count: %w", err)
		}
		if m == nil {
			return int(it.Aggregations().Count()), nil
		}
	}
}

// IDs calls fn with the ID of every message matching q, in no particular
// order, from one consistent snapshot. An error from fn stops the iteration
// and is returned as is. fn may call Add, Delete and the search methods but
// must not call Close.
func (x *Index) IDs(ctx context.Context, q string, fn func(sealmail.MessageID) error) error {
	pq, err := Parse(q)
	if err != nil {
		return err
	}
	return x.Each(ctx, pq, func(s Stored) error { return fn(s.ID) })
}

// Stored is what a document keeps for the caller.
type Stored struct {
	ID      sealmail.MessageID
	Seq     uint64
	Records []Record
}

// Each calls fn with what every document q matches stores, in no
// particular order, from one consistent snapshot. An error from fn stops
// the iteration and is returned as is. fn may call Apply and the search
// methods but must not call Close.
func (x *Index) Each(ctx context.Context, q Query, fn func(Stored) error) error {
	x.mu.RLock()
	defer x.mu.RUnlock()
	r, err := x.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	it, err := r.Search(ctx, bluge.NewAllMatches(q.bluge()))
	if err != nil {
		return fmt.Errorf("index: search: %w", err)
	}
	for {
		m, err := it.Next()
		if err != nil {
			return fmt.Errorf("index: search: %w", err)
		}
		if m == nil {
			return nil
		}
		s, err := storedOf(m)
		if err != nil {
			return err
		}
		if err := fn(s); err != nil {
			return err
		}
	}
}

// Lookup returns what message id's document stores; found is false if
// the index has no document of it.
func (x *Index) Lookup(ctx context.Context, id sealmail.MessageID) (s Stored, found bool, err error) {
	stop := errors.New("found")
	err = x.Each(ctx, Query{ID: id}, func(st Stored) error { s, found = st, true; return stop })
	if errors.Is(err, stop) {
		err = nil
	}
	return s, found, err
}

func storedOf(m *search.DocumentMatch) (Stored, error) {
	var s Stored
	var perr error
	err := m.VisitStoredFields(func(field string, value []byte) bool {
		switch field {
		case fID:
			s.ID, perr = sealmail.ParseMessageID(string(value))
		case fSeq:
			n, err := intValue(value)
			s.Seq, perr = uint64(n), err
		case fRecords:
			perr = json.Unmarshal(value, &s.Records)
		}
		return perr == nil
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return s, fmt.Errorf("index: read stored fields: %w", err)
	}
	return s, nil
}

// State returns the state the caller stored with [Batch].State, nil if
// none.
func (x *Index) State(ctx context.Context) ([]byte, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	r, err := x.reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	it, err := r.Search(ctx, bluge.NewTopNSearch(1, bluge.NewTermQuery(stateID).SetField(fID)))
	if err != nil {
		return nil, fmt.Errorf("index: state: %w", err)
	}
	m, err := it.Next()
	if err != nil || m == nil {
		return nil, err
	}
	var state []byte
	err = m.VisitStoredFields(func(field string, value []byte) bool {
		if field == fState {
			state = bytes.Clone(value)
			return false
		}
		return true
	})
	return state, err
}
