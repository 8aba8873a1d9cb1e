// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/store"
)

// The operations in this file run where an identity is (the CLI, the
// reader service), never in the daemon: they read sealed messages from an
// [Archive] or through the control socket, decrypt them here and hand back
// only what the archive needs (retention facts). Each declares the few
// methods it needs as an interface, which both an *Archive and the control
// socket's client provide.

// Reader reads the catalog and sealed messages.
type Reader interface {
	List(ctx context.Context, o ListOptions) ([]MessageSummary, error)
	Get(ctx context.Context, id sealmail.MessageID) (*Sealed, error)
}

// Message is a stored message decrypted: the original byte-exact, and for
// each receipt (delivery) its envelope and the journal report it came in.
type Message struct {
	ID       sealmail.MessageID
	Received time.Time
	Original []byte
	Receipts []Receipt
}

// Receipt is one delivery of a message.
type Receipt struct {
	Envelope *sealmail.Envelope // nil when none was stored
	Report   []byte             // the journal report as received; nil if none
}

// Envelopes returns the envelopes of every receipt that has one.
func (m *Message) Envelopes() []sealmail.Envelope {
	var out []sealmail.Envelope
	for _, r := range m.Receipts {
		if r.Envelope != nil {
			out = append(out, *r.Envelope)
		}
	}
	return out
}

// DecryptRecord decrypts record i of m with the identities and checks the
// original's SHA-256. It returns an error wrapping [ErrNoIdentityMatch] when
// none of the identities is one of the archive's.
func (m *Sealed) DecryptRecord(i int, ids []age.Identity) (original []byte, r Receipt, err error) {
	rec := m.Records[i]
	v, err := ParseRecord(rec.Record)
	if err != nil {
		return nil, Receipt{}, fmt.Errorf("message %d record %d: %w", m.ID, i+1, err)
	}
	if !v.Names(rec.Entry, sealmail.MessageID(m.ID), rec.Kind) {
		return nil, Receipt{}, fmt.Errorf("message %d record %d: entry %d is not its %s entry: %w", m.ID, i+1, rec.Entry, rec.Kind, store.ErrCorrupt)
	}
	o, err := v.Decrypt(ids)
	if err != nil {
		return nil, Receipt{}, fmt.Errorf("message %d record %d: %w", m.ID, i+1, err)
	}
	return o.Entry(rec.Entry)
}

// Decrypt decrypts every record of m (see [Sealed.DecryptRecord]).
func (m *Sealed) Decrypt(ids []age.Identity) (*Message, error) {
	out := &Message{ID: sealmail.MessageID(m.ID), Received: m.Received}
	for i := range m.Records {
		original, r, err := m.DecryptRecord(i, ids)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			out.Original = original
		}
		out.Receipts = append(out.Receipts, r)
	}
	return out, nil
}

// getMessage reads and decrypts one message.
func getMessage(ctx context.Context, r interface {
	Get(ctx context.Context, id sealmail.MessageID) (*Sealed, error)
}, id sealmail.MessageID, ids []age.Identity) (*Message, error) {
	m, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return m.Decrypt(ids)
}

// ContentReport is what [VerifyContent] found.
type ContentReport struct {
	Messages int      `json:"messages"` // decrypted and checked
	Problems []string `json:"problems"`
	// Note says what was not checked, if anything (the keyed digests when
	// the digest key cannot be read).
	Note string `json:"note,omitempty"`
}

// VerifyContent decrypts every record of every message of the archive in
// dir, read through r, and checks each original's SHA-256 and keyed digest
// (with the archive's digest key, read from dir). It stops only when the
// identities are not the archive's.
func VerifyContent(ctx context.Context, r Reader, dir string, ids []age.Identity) (*ContentReport, error) {
	rep := &ContentReport{Problems: []string{}}
	key, err := store.ReadDigestKey(dir)
	if err != nil {
		rep.Note = fmt.Sprintf("%v: keyed digests not checked", err)
	}
	rows, err := r.List(ctx, ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		m, err := r.Get(ctx, sealmail.MessageID(row.ID))
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("message %d: %v", row.ID, err))
			continue
		}
		var original []byte
		for i := range m.Records {
			o, _, err := m.DecryptRecord(i, ids)
			if errors.Is(err, ErrNoIdentityMatch) {
				return rep, err
			}
			if err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("message %d receipt %d: %v", row.ID, i+1, err))
				continue
			}
			if i == 0 {
				original = o
			}
		}
		if key != nil && original != nil {
			if d := store.KeyedDigest(key, original); !bytes.Equal(d[:], m.Records[0].Digest) {
				rep.Problems = append(rep.Problems, fmt.Sprintf("message %d: the decrypted original's keyed digest differs from the stored one", row.ID))
			}
		}
		rep.Messages++
	}
	return rep, nil
}

// PolicySource is what [ReapplyPolicy] needs.
type PolicySource interface {
	Reader
	ApplyPolicy(ctx context.Context, p PolicyApply) (*PolicyResult, error)
}

// PolicyReport says what [ReapplyPolicy] changed (or would, in a dry
// run), and the shortening changes it withheld.
type PolicyReport struct {
	DryRun    bool           `json:"dry_run,omitempty"`
	Evaluated int            `json:"evaluated"`
	Changed   []PolicyChange `json:"changed"`
	Withheld  []PolicyChange `json:"withheld"`
}

// ReapplyPolicy decrypts every live message and hands the archive what its
// retention rules look at (headers and envelopes), in batches; opts says
// whether to change anything and which shortening changes to allow
// (its Facts are ignored).
func ReapplyPolicy(ctx context.Context, src PolicySource, ids []age.Identity, opts PolicyApply) (*PolicyReport, error) {
	rows, err := src.List(ctx, ListOptions{})
	if err != nil {
		return nil, err
	}
	rep := &PolicyReport{DryRun: opts.DryRun, Evaluated: len(rows), Changed: []PolicyChange{}, Withheld: []PolicyChange{}}
	var facts []PolicyFacts
	flush := func() error {
		if len(facts) == 0 {
			return nil
		}
		p := opts
		p.Facts = facts
		res, err := src.ApplyPolicy(ctx, p)
		if res != nil {
			rep.Changed = append(rep.Changed, res.Changed...)
			rep.Withheld = append(rep.Withheld, res.Withheld...)
		}
		facts = facts[:0]
		return err
	}
	for _, r := range rows {
		m, err := getMessage(ctx, src, sealmail.MessageID(r.ID), ids)
		if err != nil {
			return nil, fmt.Errorf("policy apply %d: %w", r.ID, err)
		}
		f := PolicyFacts{ID: m.ID, Envelopes: m.Envelopes()}
		if hm, err := mail.ReadMessage(bytes.NewReader(m.Original)); err == nil {
			f.Header = hm.Header
		}
		facts = append(facts, f)
		if len(facts) >= 500 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return rep, nil
}

// An Archive opened directly serves the same operations.
var _ PolicySource = (*Archive)(nil)
