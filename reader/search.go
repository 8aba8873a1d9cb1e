// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/index"
)

// MaxSearchLimit caps a page of search results: each search is audited
// with the ids it returned, and an audit entry is at most 64 KiB.
const MaxSearchLimit = 1000

// SearchOptions selects a page of search results. The zero value gives
// the newest 50 matches.
type SearchOptions struct {
	Limit, Offset int
	Oldest        bool // oldest first; default newest first by date
}

// SearchResult is a page of hits, the total count, and how far the index
// covers the archive.
type SearchResult struct {
	Total    int         `json:"total"`
	Hits     []SearchHit `json:"hits"`
	Coverage Coverage    `json:"coverage"`
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

// searchFields is what a search's audit entry (type search) records.
type searchFields struct {
	IDs    []uint64 `json:"ids"`
	Limit  int      `json:"limit"`
	Offset int      `json:"offset"`
	Query  string   `json:"query"`
	Scope  string   `json:"scope,omitempty"` // the query as narrowed by the caller's role
	Total  int      `json:"total"`
}

// Search runs a query within the caller's reach and returns one page of
// hits, newest first unless o.Oldest. The query, the narrowed query and
// the ids returned are audited before the results are.
func (r *Reader) Search(ctx context.Context, c Caller, q string, o SearchOptions) (*SearchResult, error) {
	if err := c.may(access.PermSearch, r.opts.Now()); err != nil {
		return nil, err
	}
	pq, err := index.Parse(q)
	if err != nil {
		return nil, err // the caller's to fix, whatever state the reader is in
	}
	if err := r.requireUnlocked(); err != nil {
		return nil, err
	}
	if o.Limit <= 0 {
		o.Limit = index.DefaultLimit
	}
	o.Limit = min(o.Limit, MaxSearchLimit)
	sq, ok, err := c.scoped(access.PermSearch, pq)
	if err != nil {
		return nil, err
	}
	res := &SearchResult{Hits: []SearchHit{}}
	if ok {
		x, done := r.index()
		found, err := x.Find(ctx, sq, index.SearchOptions{Limit: o.Limit, Offset: o.Offset, Oldest: o.Oldest})
		done()
		if err != nil {
			return nil, err
		}
		res.Total = found.Total
		for _, h := range found.Hits {
			res.Hits = append(res.Hits, SearchHit{ID: h.ID, Date: h.Date, From: h.From, Subject: h.Subject, Size: h.Size, HasAttachment: h.HasAttachment})
		}
	}
	f := searchFields{Query: q, Total: res.Total, Limit: o.Limit, Offset: o.Offset, IDs: make([]uint64, len(res.Hits))}
	if sq.Node != nil && sq.Node != pq.Node {
		f.Scope = sq.Node.String()
	}
	for i, h := range res.Hits {
		f.IDs[i] = uint64(h.ID)
	}
	if _, err := r.rcv.RecordEvent(api.OnBehalfOf(ctx, c.Name), audit.TypeSearch, f); err != nil {
		return nil, err
	}
	res.Coverage = r.Coverage()
	return res, nil
}

// Message is a message as the reader reads it for a caller: the original
// byte-exact and the receipts the index vouched for.
type Message struct {
	ID       sealmail.MessageID `json:"id"`
	Received time.Time          `json:"received"`
	Original []byte             `json:"-"`
	Receipts []archive.Receipt  `json:"-"`
}

// Envelopes are a message's receipts as the envelope endpoint answers.
type Envelopes struct {
	ID        sealmail.MessageID  `json:"id"`
	Received  time.Time           `json:"received"`
	Envelopes []sealmail.Envelope `json:"envelopes"`
}

// Read reads message id for the caller: it must be indexed and within the
// caller's reach (else [ErrNotFound], whichever it is). The receiver
// audits the read as the caller's. Only records the index holds (those
// the audit log vouched for) are used; one that differs from them is
// refused.
func (r *Reader) Read(ctx context.Context, c Caller, id sealmail.MessageID) (*Message, error) {
	if err := c.may(access.PermSearch, r.opts.Now()); err != nil {
		return nil, err
	}
	ids := r.identities()
	if ids == nil {
		return nil, ErrLocked
	}
	q, ok, err := c.scoped(access.PermSearch, index.Query{ID: id})
	if err != nil || !ok {
		return nil, orNotFound(err)
	}
	q.ID = id
	x, done := r.index()
	var stored *index.Stored
	err = x.Each(ctx, q, func(s index.Stored) error { stored = &s; return nil })
	done()
	if err != nil {
		return nil, err
	}
	if stored == nil {
		return nil, ErrNotFound
	}
	return r.get(api.OnBehalfOf(ctx, c.Name), *stored, ids)
}

func orNotFound(err error) error {
	if err != nil {
		return err
	}
	return ErrNotFound
}

// get reads a message through the receiver and decrypts the records the
// index vouched for (s.Records).
func (r *Reader) get(ctx context.Context, s index.Stored, ids []age.Identity) (*Message, error) {
	m, err := r.rcv.Get(ctx, s.ID)
	if err != nil {
		return nil, err
	}
	out := &Message{ID: s.ID, Received: m.Received}
	for i, want := range s.Records {
		if i >= len(m.Records) {
			return nil, fmt.Errorf("message %d: the receiver has %d records, the index %d", s.ID, len(m.Records), len(s.Records))
		}
		sum := sha256.Sum256(m.Records[i].Record)
		if hex.EncodeToString(sum[:]) != want.SHA256 || m.Records[i].Entry != want.Entry {
			return nil, fmt.Errorf("message %d: record %d is not the one the audit log vouched for (run `sealmail verify`)", s.ID, i+1)
		}
		original, rc, err := m.DecryptRecord(i, ids)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			out.Original = original
		}
		out.Receipts = append(out.Receipts, rc)
	}
	return out, nil
}

// CheckQuery reports a query that does not parse (a *query.SyntaxError,
// whose position the message names), so that a command line can say so
// before it asks the reader anything.
func CheckQuery(q string) error {
	_, err := index.Parse(q)
	return err
}
