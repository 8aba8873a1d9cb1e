// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
}

// Doc is one message to index.
type Doc struct {
	ID        sealmail.MessageID
	Raw       []byte              // the original message, byte-exact
	Envelopes []sealmail.Envelope // may be empty; senders and recipients (with kinds) are indexed
	Received  time.Time           // the date when the message has no readable Date header
	Internal  []string            // optional internal domains: only their addresses go into "involved"
	// Merge adds Envelopes to those already indexed for ID (a further
	// receipt of a stored message: Raw is the same original) instead of
	// replacing the document's envelopes.
	Merge bool
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
	cfg := bluge.DefaultConfigWithDirectory(func() bindex.Directory { return newDirectory(dir) })
	cfg.DefaultSearchAnalyzer = textAnalyzer
	w, err := bluge.OpenWriter(cfg)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("index: open %s: %w", dir, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
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

// Add indexes docs in one batch. When it returns nil the batch is durable;
// an [*UnmergedError] says that all but the receipts it names are.
// Adding an ID that is already indexed replaces its document. Malformed
// messages never cause an error: they are indexed as far as possible and
// flagged.
func (x *Index) Add(ctx context.Context, docs []Doc) (err error) {
	if len(docs) == 0 {
		return nil
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return ErrClosed
	}
	// A merge reads the indexed envelopes and writes the union: no other
	// batch may come in between.
	merging := slices.ContainsFunc(docs, func(d Doc) bool { return d.Merge })
	if merging {
		x.wmu.Lock()
		defer x.wmu.Unlock()
	}
	docs, unmerged, err := x.mergeReceipts(ctx, docs)
	if err != nil {
		return fmt.Errorf("index: add: %w", err)
	}
	if len(unmerged) > 0 {
		defer func() {
			if err == nil {
				err = &UnmergedError{IDs: unmerged}
			}
		}()
	}
	if len(docs) == 0 {
		return nil
	}
	built := make([]*bluge.Document, len(docs))
	var wg sync.WaitGroup
	next := make(chan int)
	workers := min(x.workers, len(docs))
	for range workers {
		wg.Go(func() {
			for i := range next {
				d := &docs[i]
				ex := extractWith(ctx, d.Raw, x.ext)
				if ex.DecodeError || ex.Truncated {
					x.log.Debug("index: partial extraction", "id", d.ID, "flags", ex.Flags())
				}
				built[i] = buildDocument(d, ex)
			}
		})
	}
	var cerr error
feed:
	for i := range docs {
		select {
		case next <- i:
		case <-ctx.Done():
			cerr = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if cerr == nil {
		cerr = ctx.Err() // an extraction cut short by ctx: not a document to keep
	}
	if cerr != nil {
		return fmt.Errorf("index: add %d docs: %w", len(docs), cerr)
	}
	// A batch must not hold one ID twice: keep the last document of an ID.
	last := make(map[sealmail.MessageID]int, len(docs))
	for i := range docs {
		last[docs[i].ID] = i
	}
	b := bluge.NewBatch()
	for i, doc := range built {
		if last[docs[i].ID] == i {
			b.Update(doc.ID(), doc)
		}
	}
	if !merging {
		x.wmu.Lock()
		defer x.wmu.Unlock()
	}
	if err := x.w.Batch(b); err != nil {
		return fmt.Errorf("index: add %d docs (ids %d..%d): %w", len(docs), docs[0].ID, docs[len(docs)-1].ID, err)
	}
	return nil
}

// Delete removes ids from the index; unknown ids are ignored.
func (x *Index) Delete(ctx context.Context, ids []sealmail.MessageID) error {
	if len(ids) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("index: delete %d ids: %w", len(ids), err)
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return ErrClosed
	}
	b := bluge.NewBatch()
	for _, id := range ids {
		b.Delete(bluge.Identifier(id.String()))
	}
	x.wmu.Lock()
	defer x.wmu.Unlock()
	if err := x.w.Batch(b); err != nil {
		return fmt.Errorf("index: delete %d ids: %w", len(ids), err)
	}
	return nil
}

// reader parses q and opens a reader snapshot; the caller holds x.mu for
// reading until it has closed the reader.
func (x *Index) reader(q string) (bluge.Query, *bluge.Reader, error) {
	node, err := query.Parse(q)
	if err != nil {
		return nil, nil, err
	}
	bq := translate(node)
	if x.closed {
		return nil, nil, ErrClosed
	}
	r, err := x.w.Reader()
	if err != nil {
		return nil, nil, fmt.Errorf("index: open reader: %w", err)
	}
	return bq, r, nil
}

// Search returns one page of messages matching q (see package query for the
// language), newest first unless opts.Oldest. A query syntax error is a
// *query.SyntaxError.
func (x *Index) Search(ctx context.Context, q string, opts SearchOptions) (*Result, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	bq, r, err := x.reader(q)
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
	terms := attachmentTerms(q)
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
			n, _ := bluge.DecodeNumericFloat64(value)
			h.Size = int64(n)
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
	n := 0
	err := x.each(ctx, q, func(*search.DocumentMatch) error { n++; return nil })
	return n, err
}

// IDs calls fn with the ID of every message matching q, in no particular
// order, from one consistent snapshot. An error from fn stops the iteration
// and is returned as is. fn may call Add, Delete and the search methods but
// must not call Close.
func (x *Index) IDs(ctx context.Context, q string, fn func(sealmail.MessageID) error) error {
	return x.each(ctx, q, func(m *search.DocumentMatch) error {
		var id sealmail.MessageID
		var perr error
		err := m.VisitStoredFields(func(field string, value []byte) bool {
			if field == fID {
				id, perr = sealmail.ParseMessageID(string(value))
				return false
			}
			return true
		})
		if err == nil {
			err = perr
		}
		if err != nil {
			return fmt.Errorf("index: read id: %w", err)
		}
		return fn(id)
	})
}

func (x *Index) each(ctx context.Context, q string, fn func(*search.DocumentMatch) error) error {
	x.mu.RLock()
	defer x.mu.RUnlock()
	bq, r, err := x.reader(q)
	if err != nil {
		return err
	}
	defer r.Close()
	it, err := r.Search(ctx, bluge.NewAllMatches(bq))
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
		if err := fn(m); err != nil {
			return err
		}
	}
}
