// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/blugelabs/bluge"

	"github.com/sealmail/sealmail"
)

// fEnvelopes is a stored-only field: the envelope facts a document was
// indexed with (JSON of [storedEnvelopes]), so that a further receipt of the
// same message ([Doc.Merge]) is added to them rather than replacing them.
const fEnvelopes = "envelopes"

// storedEnvelopes is what fEnvelopes keeps: the envelope fields the mapping
// indexes (never transport facts or untrusted claims) and the first
// receipt's time, the date of a message without a Date header.
type storedEnvelopes struct {
	Received  time.Time           `json:"received"`
	Envelopes []sealmail.Envelope `json:"envelopes"`
}

// indexedEnvelope keeps of e what buildDocument indexes.
func indexedEnvelope(e sealmail.Envelope) sealmail.Envelope {
	return sealmail.Envelope{Sender: e.Sender, OnBehalfOf: e.OnBehalfOf, Recipients: e.Recipients, MailFrom: e.MailFrom, RcptTo: e.RcptTo}
}

func envelopesField(d *Doc) *bluge.TermField {
	se := storedEnvelopes{Received: d.Received, Envelopes: make([]sealmail.Envelope, len(d.Envelopes))}
	for i, e := range d.Envelopes {
		se.Envelopes[i] = indexedEnvelope(e)
	}
	b, _ := json.Marshal(se) // plain strings and times: cannot fail
	return bluge.NewStoredOnlyField(fEnvelopes, b)
}

// mergeReceipts folds the docs of one batch into one doc per id, in order:
// a doc with Merge adds its envelopes to those indexed so far (in the index,
// or earlier in the batch); one without replaces them.
//
// A Merge doc for a document indexed without stored envelopes (by an older
// version) is left out and its id returned in unmerged: only a reindex,
// which knows every receipt, can bring it up to date.
func (x *Index) mergeReceipts(ctx context.Context, docs []Doc) (out []Doc, unmerged []sealmail.MessageID, err error) {
	if !slices.ContainsFunc(docs, func(d Doc) bool { return d.Merge }) {
		return docs, nil, nil
	}
	var r *bluge.Reader
	defer func() {
		if r != nil {
			r.Close()
		}
	}()
	out = make([]Doc, 0, len(docs))
	at := make(map[sealmail.MessageID]int)
	for _, d := range docs {
		i, seen := at[d.ID]
		if !d.Merge {
			if seen {
				out[i] = d
			} else {
				at[d.ID] = len(out)
				out = append(out, d)
			}
			continue
		}
		var prev Doc
		if seen {
			prev = out[i]
		} else {
			if r == nil {
				var err error
				if r, err = x.w.Reader(); err != nil {
					return nil, nil, fmt.Errorf("index: open reader: %w", err)
				}
			}
			se, found, err := storedOf(ctx, r, d.ID)
			if err != nil {
				return nil, nil, err
			}
			if found && se == nil {
				// Indexed by a version that did not keep the envelopes:
				// merging would drop the earlier receipts' recipients.
				unmerged = append(unmerged, d.ID)
				continue
			}
			if se != nil {
				prev = Doc{Envelopes: se.Envelopes, Received: se.Received}
			}
		}
		m := d
		m.Envelopes = unionEnvelopes(prev.Envelopes, d.Envelopes)
		if !prev.Received.IsZero() {
			m.Received = prev.Received
		}
		if seen {
			out[i] = m
		} else {
			at[d.ID] = len(out)
			out = append(out, m)
		}
	}
	return out, unmerged, nil
}

// storedOf returns the envelopes stored with id's document: found is false
// if id is not indexed; se is nil if its document has none stored.
func storedOf(ctx context.Context, r *bluge.Reader, id sealmail.MessageID) (se *storedEnvelopes, found bool, err error) {
	it, err := r.Search(ctx, bluge.NewTopNSearch(1, bluge.NewTermQuery(id.String()).SetField(fID)))
	if err != nil {
		return nil, false, fmt.Errorf("index: look up %d: %w", id, err)
	}
	m, err := it.Next()
	if err != nil || m == nil {
		return nil, false, err
	}
	var perr error
	err = m.VisitStoredFields(func(field string, value []byte) bool {
		if field == fEnvelopes {
			se = &storedEnvelopes{}
			perr = json.Unmarshal(value, se)
			return false
		}
		return true
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, true, fmt.Errorf("index: envelopes of %d: %w", id, err)
	}
	return se, true, nil
}

// UnmergedError reports receipts that [Index.Add] could not merge into
// documents indexed by an older version (without stored envelopes). The
// rest of the batch was added; these ids need a reindex.
type UnmergedError struct {
	IDs []sealmail.MessageID
}

func (e *UnmergedError) Error() string {
	return fmt.Sprintf("index: %d receipts not merged into documents indexed without their envelopes (reindex them): %v", len(e.IDs), e.IDs)
}

// unionEnvelopes returns a followed by the envelopes of b it lacks.
func unionEnvelopes(a, b []sealmail.Envelope) []sealmail.Envelope {
	key := func(e sealmail.Envelope) string {
		k, _ := json.Marshal(indexedEnvelope(e))
		return string(k)
	}
	have := make(map[string]bool, len(a))
	out := make([]sealmail.Envelope, 0, len(a)+len(b))
	for _, e := range a {
		have[key(e)] = true
		out = append(out, e)
	}
	for _, e := range b {
		if k := key(e); !have[k] {
			have[k] = true
			out = append(out, e)
		}
	}
	return out
}
