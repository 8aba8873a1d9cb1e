// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"fmt"
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

// batch is the Bluge batch of p's documents, deletions and state. A batch
// must not hold one ID twice: it keeps the last document of an ID.
func (p *Prepared) batch(del []sealmail.MessageID, state []byte) *bindex.Batch {
	last := make(map[sealmail.MessageID]int, len(p.docs))
	for i := range p.docs {
		last[p.docs[i].ID] = i
	}
	bb := bluge.NewBatch()
	for _, id := range del {
		if _, ok := last[id]; !ok {
			bb.Delete(bluge.Identifier(id.String()))
		}
	}
	for i, doc := range p.built {
		if last[p.docs[i].ID] == i {
			bb.Update(doc.ID(), segment.Document(doc))
		}
	}
	if state != nil {
		st := bluge.NewDocument(stateID)
		st.AddField(bluge.NewStoredOnlyField(fState, state))
		bb.Update(st.ID(), st)
	}
	return bb
}
