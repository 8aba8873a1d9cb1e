// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/blugelabs/bluge"
	bindex "github.com/blugelabs/bluge/index"
	segment "github.com/blugelabs/bluge_segment_api"

	"github.com/sealmail/sealmail"
)

// Prepared is documents built for a later [Index.Apply] ([Batch].Prepared):
// their text extracted and their fields analysed, the work of a batch that
// runs in parallel, so that a caller can build the next batch while the
// index writes the last one.
type Prepared struct {
	docs  []Doc
	built []analysed
}

// Len returns the number of documents.
func (p *Prepared) Len() int { return len(p.docs) }

// analysed is a document whose fields Prepare analysed: Bluge's batch does
// not analyse it again.
type analysed struct{ *bluge.Document }

func (analysed) Analyze() {}

// Prepare builds docs for [Batch].Prepared: text is extracted and fields
// analysed on Options.Workers goroutines. It writes nothing.
func (x *Index) Prepare(ctx context.Context, docs []Doc) (*Prepared, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return nil, ErrClosed
	}
	p := &Prepared{docs: docs, built: make([]analysed, len(docs))}
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(x.workers, len(docs)) {
		wg.Go(func() {
			for i := range next {
				d := &docs[i]
				ex := extractWith(ctx, d.Raw, x.ext)
				if ex.DecodeError || ex.Truncated {
					x.log.Debug("index: partial extraction", "id", d.ID, "flags", ex.Flags())
				}
				doc := buildDocument(d, ex)
				if x.omit != nil {
					*doc = slices.DeleteFunc(*doc, func(f bluge.Field) bool { return x.omit[f.Name()] })
				}
				doc.Analyze()
				p.built[i] = analysed{doc}
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
		return nil, fmt.Errorf("index: add %d docs: %w", len(docs), cerr)
	}
	return p, nil
}

// write writes p's documents, the deletions and the state. With parts > 1
// it first writes the documents in up to parts Bluge batches built in
// parallel (Bluge builds one segment per batch, on the calling goroutine:
// the larger part of indexing), then the deletions and the state in one
// more, so that the state is durable only after every document is; a
// crash between may leave some documents without the state. The caller
// holds x.wmu.
func (x *Index) write(p *Prepared, del []sealmail.MessageID, state []byte, parts int) error {
	// A batch must not hold one ID twice: keep the last document of an ID.
	last := make(map[sealmail.MessageID]int, len(p.docs))
	for i := range p.docs {
		last[p.docs[i].ID] = i
	}
	var keep []int
	for i := range p.docs {
		if last[p.docs[i].ID] == i {
			keep = append(keep, i)
		}
	}
	update := func(bb *bindex.Batch, docs []int) {
		for _, i := range docs {
			bb.Update(p.built[i].ID(), segment.Document(p.built[i]))
		}
	}
	if parts = min(parts, len(keep)/minPartDocs); parts > 1 {
		errs := make([]error, parts)
		var wg sync.WaitGroup
		for k := range parts {
			wg.Go(func() {
				bb := bluge.NewBatch()
				update(bb, keep[k*len(keep)/parts:(k+1)*len(keep)/parts])
				errs[k] = x.w.Batch(bb)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		keep = nil
	}
	bb := bluge.NewBatch()
	for _, id := range del {
		if _, ok := last[id]; !ok {
			bb.Delete(bluge.Identifier(id.String()))
		}
	}
	update(bb, keep)
	if state != nil {
		st := bluge.NewDocument(stateID)
		st.AddField(bluge.NewStoredOnlyField(fState, state))
		bb.Update(st.ID(), st)
	}
	return x.w.Batch(bb)
}

// minPartDocs is the fewest documents worth a parallel batch of their own:
// each batch is one more segment to persist and merge.
const minPartDocs = 1000
