// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/index"
	"github.com/sealmail/sealmail/index/query"
	"github.com/sealmail/sealmail/store"
)

// The index is derived data, fed while the daemon still holds a message's
// plaintext (it receives it over SMTP; it cannot decrypt stored messages).
// Ingest hands each new message to the indexer goroutine and never waits for
// it; the catalog's index watermark says up to which id everything is
// indexed. Messages the indexer did not get to (a crash, a full queue) are
// indexed again by `sealmail reindex`, which decrypts with the operator's
// identity and sends the plaintext back through [Archive.IndexDocs].

const (
	indexQueue    = 16384     // documents waiting; beyond this ingest drops them (reindex later)
	indexMaxBytes = 256 << 20 // raw bytes held for the index; beyond this likewise
	indexBatch    = 2000      // documents per index commit: Bluge's cost is per segment built
	// The indexer yields to ingest: while messages keep arriving it waits,
	// and commits once ingest has been quiet for indexQuiet, when
	// indexFlushBytes are waiting, or when its oldest document has waited
	// indexMaxWait. A commit takes at most indexBatch documents.
	indexFlushBytes = 32 << 20
	// indexCommitBytes bounds the raw bytes of one index commit, so that a
	// commit is short and closing the archive never waits long for one.
	indexCommitBytes = 8 << 20
	indexQuiet       = 500 * time.Millisecond
	indexMaxWait     = 30 * time.Second
	// indexStopBudget bounds how long closing the archive spends indexing
	// what waits; the rest stays for `sealmail reindex`.
	indexStopBudget = 15 * time.Second
)

func indexDir(dir string) string { return filepath.Join(dir, "index") }

// indexer owns the index writes of a daemon.
type indexer struct {
	x    *index.Index
	a    *Archive
	docs chan index.Doc
	done chan struct{}

	mu      sync.Mutex
	stopped bool
	queued  int64 // raw bytes handed over, not yet indexed
	// pending counts, per id, documents handed over or dropped and not
	// yet indexed: a new message's (at offer) and each further receipt's
	// (marked in the writer's transaction that stores it, see
	// markReceipts). The watermark never passes an id in it.
	pending map[sealmail.MessageID]int
	maxID   sealmail.MessageID // highest id handed to the indexer
	// floor caps the watermark below messages stored before this start
	// that were never indexed (a crash); reindex lifts it.
	floor sealmail.MessageID
}

const noFloor = ^sealmail.MessageID(0)

func (a *Archive) startIndexer(x *index.Index) error {
	ix := &indexer{x: x, a: a, docs: make(chan index.Doc, indexQueue), done: make(chan struct{}),
		pending: make(map[sealmail.MessageID]int), floor: noFloor}
	wm, err := a.store.IndexWatermark()
	if err != nil {
		return err
	}
	st, err := a.store.Stats()
	if err != nil {
		return err
	}
	ix.maxID = max(wm, st.LastID)
	if wm < st.LastID {
		ix.floor = wm
		a.log.Warn("index: messages stored but not indexed (after a crash); run `sealmail reindex --identity FILE`",
			"watermark", uint64(wm), "last_id", uint64(st.LastID))
	}
	a.indexer = ix
	go ix.run()
	return nil
}

// offer queues a message for indexing without waiting. A further receipt
// (receipt) was counted in pending when it was stored; its document adds
// its envelope to the indexed ones. So does a new message's if a receipt of
// it was stored before it was offered (the copies raced).
func (ix *indexer) offer(d index.Doc, receipt bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.stopped {
		return
	}
	if receipt || ix.pending[d.ID] > 0 {
		d.Merge = true
	}
	if !receipt {
		ix.pending[d.ID]++ // until indexed: the watermark never passes it
	}
	ix.maxID = max(ix.maxID, d.ID)
	limit := ix.a.opts.IndexQueueBytes
	if limit <= 0 {
		limit = indexMaxBytes
	}
	if ix.queued+int64(len(d.Raw)) <= limit {
		select {
		case ix.docs <- d: // never blocks: ingest does not wait for the index
			ix.queued += int64(len(d.Raw))
			return
		default:
		}
	}
	ix.a.log.Warn("index queue full: message not indexed now; run `sealmail reindex`", "id", d.ID)
}

func (ix *indexer) run() {
	defer close(ix.done)
	var batch []index.Doc
	var oldest, last time.Time // arrival of the batch's first and latest document
	tick := time.NewTicker(indexQuiet)
	defer tick.Stop()
	flush := func() {
		for len(batch) > 0 {
			n := commitSize(batch, indexBatch)
			ix.add(batch[:n])
			batch = batch[n:]
		}
		batch = nil
	}
	for {
		select {
		case d, ok := <-ix.docs:
			if !ok {
				// Closing: index what waits, in small commits, within the
				// budget; what is left keeps the watermark down.
				deadline := time.Now().Add(indexStopBudget)
				for len(batch) > 0 && time.Now().Before(deadline) {
					n := commitSize(batch, 100)
					ix.add(batch[:n])
					batch = batch[n:]
				}
				if len(batch) > 0 {
					ix.a.log.Warn("index: messages not indexed at shutdown; run `sealmail reindex --identity FILE`", "count", len(batch))
				}
				return
			}
			last = time.Now()
			if len(batch) == 0 {
				oldest = last
			}
			batch = append(batch, d)
			ix.mu.Lock()
			pressed, stopping := ix.queued >= indexFlushBytes, ix.stopped
			ix.mu.Unlock()
			// Closing: collect what is queued; the budgeted commits below
			// index as much of it as time allows.
			if !stopping && (pressed || time.Since(oldest) >= indexMaxWait) {
				flush()
			}
		case now := <-tick.C:
			if len(batch) > 0 && (now.Sub(last) >= indexQuiet || now.Sub(oldest) >= indexMaxWait) {
				flush()
			}
		}
	}
}

// commitSize is how many of docs go into one index commit: at most max,
// and at most indexCommitBytes of raw bytes (at least one).
func commitSize(docs []index.Doc, max int) int {
	n, size := 0, 0
	for n < len(docs) && n < max && (n == 0 || size+len(docs[n].Raw) <= indexCommitBytes) {
		size += len(docs[n].Raw)
		n++
	}
	return n
}

func (ix *indexer) add(batch []index.Doc) {
	err := ix.x.Add(context.Background(), batch)
	var ue *index.UnmergedError
	if errors.As(err, &ue) {
		// Receipts of messages indexed by an older version: they stay
		// pending (the watermark below them) until reindex.
		ix.a.log.Warn("index: receipts of messages indexed without their envelopes; run `sealmail reindex --identity FILE`", "count", len(ue.IDs))
		left := make([]index.Doc, 0, len(batch))
		for _, d := range batch {
			if !slices.Contains(ue.IDs, d.ID) || !d.Merge {
				left = append(left, d)
			}
		}
		batch, err = left, nil
	}
	if err != nil {
		ix.a.log.Error("index: add failed; messages stay unindexed until `sealmail reindex`", "count", len(batch), "err", err)
		return
	}
	ix.indexed(batch, 0, true)
}

// indexed removes docs from pending (one count each for documents from the
// queue; all for reindexed ones, which hold every receipt), lifts the floor
// to upTo (reindex covered everything up to it), and raises the catalog's
// watermark.
func (ix *indexer) indexed(docs []index.Doc, upTo sealmail.MessageID, queued bool) {
	ix.mu.Lock()
	for _, d := range docs {
		n := ix.pending[d.ID]
		if n == 0 {
			continue
		}
		if queued && n > 1 {
			ix.pending[d.ID] = n - 1
		} else {
			delete(ix.pending, d.ID)
		}
		ix.queued = max(0, ix.queued-int64(len(d.Raw)))
	}
	if upTo > 0 && ix.floor != noFloor && upTo >= ix.floor {
		ix.floor = noFloor
	}
	ix.mu.Unlock()
	ix.a.raiseWatermark(ix.watermark)
}

// watermark is how far the index covers the archive: below every pending
// document, the floor and the highest id handed over.
func (ix *indexer) watermark() sealmail.MessageID {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	w := min(ix.maxID, ix.floor)
	for id := range ix.pending {
		w = min(w, id-1)
	}
	return w
}

// markReceipts counts the further receipts among cs in pending (add) or
// takes them out again (their commit failed). The store calls it, through
// OnCommit and OnRollback, inside the catalog transaction that stores
// them, which also lowers the catalog's watermark below their messages:
// a watermark raise (itself a catalog transaction) either comes before and
// is undone, or after and sees them pending.
func (a *Archive) markReceipts(cs []store.Committed, add bool) {
	ix := a.indexer
	if ix == nil {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, c := range cs {
		if c.Kind != store.KindEnvelope {
			continue
		}
		switch {
		case add:
			ix.pending[c.ID]++
		case ix.pending[c.ID] > 1:
			ix.pending[c.ID]--
		default:
			delete(ix.pending, c.ID)
		}
	}
}

// raiseWatermark records that every message up to w() is indexed; w runs
// inside the catalog transaction (see [store.Store.RaiseIndexWatermark]).
func (a *Archive) raiseWatermark(w func() sealmail.MessageID) {
	if err := a.store.RaiseIndexWatermark(w); err != nil {
		a.log.Error("index: record watermark", "err", err)
	}
}

func (ix *indexer) stop() {
	ix.mu.Lock()
	ix.stopped = true
	close(ix.docs)
	ix.mu.Unlock()
	<-ix.done
}

// SearchOptions selects a page of search results. The zero value gives
// the newest 50 matches.
type SearchOptions struct {
	Limit, Offset int
	Oldest        bool // oldest first; default newest first by date
}

// SearchResult is a page of hits and the total count.
type SearchResult struct {
	Total int         `json:"total"`
	Hits  []SearchHit `json:"hits"`
}

// SearchHit is one message a search found.
type SearchHit struct {
	ID            sealmail.MessageID `json:"id"`
	Date          time.Time          `json:"date"`
	From          string             `json:"from"`
	Subject       string             `json:"subject"`
	Size          int64              `json:"size"`
	HasAttachment bool               `json:"has_attachment"`
}

// Search runs a query (see index/query) and returns one page of hits,
// newest first unless opts.Oldest. The query text and the ids returned are
// audited.
func (a *Archive) Search(ctx context.Context, q string, opts SearchOptions) (*SearchResult, error) {
	if _, err := query.Parse(q); err != nil {
		return nil, err // the caller's to fix, whatever state the index is in
	}
	x, err := a.idx()
	if err != nil {
		return nil, err
	}
	found, err := x.Search(ctx, q, index.SearchOptions{Limit: opts.Limit, Offset: opts.Offset, Oldest: opts.Oldest})
	if err != nil {
		return nil, err
	}
	res := &SearchResult{Total: found.Total, Hits: make([]SearchHit, len(found.Hits))}
	ids := make([]uint64, len(found.Hits))
	for i, h := range found.Hits {
		res.Hits[i] = SearchHit{ID: h.ID, Date: h.Date, From: h.From, Subject: h.Subject, Size: h.Size, HasAttachment: h.HasAttachment}
		ids[i] = uint64(h.ID)
	}
	if err := a.logEvent(ctx, audit.TypeAPICall, searchCallFields{Op: "search", Query: q, Total: res.Total, IDs: ids,
		Offset: opts.Offset, Limit: opts.Limit}); err != nil {
		return nil, err
	}
	return res, nil
}

// IndexDocs indexes documents that the caller decrypted (reindex) and
// raises the watermark to upTo when all documents up to it are in.
func (a *Archive) IndexDocs(ctx context.Context, in []IndexDoc, upTo sealmail.MessageID) error {
	docs := make([]index.Doc, len(in))
	for i, d := range in {
		docs[i] = index.Doc{ID: d.ID, Raw: d.Raw, Envelopes: d.Envelopes, Received: d.Received}
	}
	x, err := a.idx()
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	if err := x.Add(ctx, docs); err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	switch {
	case a.indexer != nil:
		a.indexer.indexed(docs, upTo, false)
	case upTo > 0 && !a.store.ReadOnly():
		a.raiseWatermark(func() sealmail.MessageID { return upTo })
	}
	return nil
}

// IndexState says how far the index is.
type IndexState struct {
	Watermark uint64 `json:"watermark"` // every message up to this id is indexed
	LastID    uint64 `json:"last_id"`
}

// IDs returns the ids of every message a query matches, in ascending order,
// for export and holds. The query and the count are audited.
func (a *Archive) IDs(ctx context.Context, q string) ([]sealmail.MessageID, error) {
	if _, err := query.Parse(q); err != nil {
		return nil, err
	}
	x, err := a.idx()
	if err != nil {
		return nil, err
	}
	var ids []sealmail.MessageID
	if err := x.IDs(ctx, q, func(id sealmail.MessageID) error { ids = append(ids, id); return nil }); err != nil {
		return nil, err
	}
	slices.Sort(ids)
	if err := a.logEvent(ctx, audit.TypeAPICall, idsCallFields{Op: "ids", Query: q, Total: len(ids)}); err != nil {
		return nil, err
	}
	return ids, nil
}

// ExportRecord is what the audit log keeps of an export.
type ExportRecord struct {
	Query          string   `json:"query"`
	Format         string   `json:"format"`
	Output         string   `json:"output"`
	Count          int      `json:"count"`
	IDs            []uint64 `json:"ids"`
	ManifestSHA256 string   `json:"manifest_sha256"` // of manifest.sha256, which covers the manifests and files
	OutputSHA256   string   `json:"output_sha256,omitempty"`
}

// RecordExport audits an export the CLI wrote (it decrypts; the daemon
// never sees the plaintext it exports).
func (a *Archive) RecordExport(ctx context.Context, r ExportRecord) error {
	return a.logEvent(ctx, audit.TypeExport, exportFields{Query: r.Query, Format: r.Format, Output: r.Output,
		Count: r.Count, IDs: r.IDs, ManifestSHA256: r.ManifestSHA256, OutputSHA256: r.OutputSHA256})
}
