// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/index"
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
	queued  int64                       // raw bytes handed over, not yet indexed
	pending map[sealmail.MessageID]bool // handed over or dropped, not yet indexed
	maxID   sealmail.MessageID          // highest id handed to the indexer
	// floor caps the watermark below messages stored before this start
	// that were never indexed (a crash); reindex lifts it.
	floor sealmail.MessageID
}

const noFloor = ^sealmail.MessageID(0)

func (a *Archive) startIndexer(x *index.Index) error {
	ix := &indexer{x: x, a: a, docs: make(chan index.Doc, indexQueue), done: make(chan struct{}),
		pending: make(map[sealmail.MessageID]bool), floor: noFloor}
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

// offer queues a new message for indexing without waiting.
func (ix *indexer) offer(d index.Doc) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.stopped {
		return
	}
	ix.pending[d.ID] = true // until indexed: the watermark never passes it
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
	if err := ix.x.Add(context.Background(), batch); err != nil {
		ix.a.log.Error("index: add failed; messages stay unindexed until `sealmail reindex`", "count", len(batch), "err", err)
		return
	}
	ix.indexed(batch, 0)
}

// indexed removes docs from pending, lifts the floor to upTo (reindex
// covered everything up to it), and raises the catalog's watermark.
func (ix *indexer) indexed(docs []index.Doc, upTo sealmail.MessageID) {
	ix.mu.Lock()
	for _, d := range docs {
		if ix.pending[d.ID] {
			delete(ix.pending, d.ID)
			ix.queued = max(0, ix.queued-int64(len(d.Raw)))
		}
	}
	if upTo > 0 && ix.floor != noFloor && upTo >= ix.floor {
		ix.floor = noFloor
	}
	w := min(ix.maxID, ix.floor)
	for id := range ix.pending {
		w = min(w, id-1)
	}
	ix.mu.Unlock()
	ix.a.raiseWatermark(w)
}

// raiseWatermark records that every message up to w is indexed.
func (a *Archive) raiseWatermark(w sealmail.MessageID) {
	cur, err := a.store.IndexWatermark()
	if err != nil || w <= cur {
		return
	}
	if err := a.store.SetIndexWatermark(w); err != nil {
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

// SearchOptions selects a page of search results.
type SearchOptions = index.SearchOptions

// SearchResult is a page of hits and the total count.
type SearchResult = index.Result

// Search runs a query (see index/query) and returns one page of hits,
// newest first unless opts.Oldest. The query text and the ids returned are
// audited.
func (a *Archive) Search(ctx context.Context, q string, opts SearchOptions) (*SearchResult, error) {
	x, err := a.idx()
	if err != nil {
		return nil, err
	}
	res, err := x.Search(ctx, q, opts)
	if err != nil {
		return nil, err
	}
	ids := make([]uint64, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = uint64(h.ID)
	}
	if err := a.Log(ctx, audit.TypeAPICall, map[string]any{"op": "search", "query": q, "total": res.Total, "ids": ids,
		"offset": opts.Offset, "limit": opts.Limit}); err != nil {
		return nil, err
	}
	return res, nil
}

// IndexDocs indexes documents that the caller decrypted (reindex) and
// raises the watermark to upTo when all documents up to it are in.
func (a *Archive) IndexDocs(ctx context.Context, docs []index.Doc, upTo sealmail.MessageID) error {
	x, err := a.idx()
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	if err := x.Add(ctx, docs); err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	switch {
	case a.indexer != nil:
		a.indexer.indexed(docs, upTo)
	case upTo > 0 && !a.store.ReadOnly():
		a.raiseWatermark(upTo)
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
	x, err := a.idx()
	if err != nil {
		return nil, err
	}
	var ids []sealmail.MessageID
	if err := x.IDs(ctx, q, func(id sealmail.MessageID) error { ids = append(ids, id); return nil }); err != nil {
		return nil, err
	}
	slices.Sort(ids)
	if err := a.Log(ctx, audit.TypeAPICall, map[string]any{"op": "ids", "query": q, "total": len(ids)}); err != nil {
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
	return a.Log(ctx, audit.TypeExport, map[string]any{"query": r.Query, "format": r.Format, "output": r.Output,
		"count": r.Count, "ids": r.IDs, "manifest_sha256": r.ManifestSHA256, "output_sha256": r.OutputSHA256})
}
