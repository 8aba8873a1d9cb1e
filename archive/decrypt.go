// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/export"
	"github.com/sealmail/sealmail/store"
)

// The operations in this file run where the operator's identity is (the
// CLI), never in the daemon: they read sealed messages from an [Archive] or
// through the control socket, decrypt them here and hand back only what the
// archive needs (index text, retention facts, an export's audit record).
// Each declares the few methods it needs as an interface, which both an
// *Archive and the control socket's client provide.

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
	p, err := store.OpenPayload(rec.Payload, rec.PlainOffset, rec.PlainLen, ids...)
	if store.IsNoIdentityMatch(err) {
		return nil, Receipt{}, fmt.Errorf("message %d record %d: %w", m.ID, i+1, ErrNoIdentityMatch)
	}
	if err != nil {
		return nil, Receipt{}, fmt.Errorf("message %d record %d: %w", m.ID, i+1, err)
	}
	return p.Original, Receipt{Envelope: p.Header.Envelope, Report: p.Report}, nil
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

// ReindexSource is what [Reindex] needs: the catalog, the messages, and
// the index to hand their text to.
type ReindexSource interface {
	Reader
	Status(ctx context.Context) (*Status, error)
	IndexDocs(ctx context.Context, docs []IndexDoc, upTo sealmail.MessageID) error
}

// ReindexReport says what [Reindex] indexed.
type ReindexReport struct {
	Indexed int                `json:"indexed"`
	UpTo    sealmail.MessageID `json:"up_to"` // every message up to this id is indexed now
}

// Reindex decrypts the messages the index lacks (all of them with all) and
// hands their text to the index, in batches.
func Reindex(ctx context.Context, src ReindexSource, ids []age.Identity, all bool) (*ReindexReport, error) {
	st, err := src.Status(ctx)
	if err != nil {
		return nil, err
	}
	after := sealmail.MessageID(st.IndexWatermark)
	if all {
		after = 0
	}
	rows, err := src.List(ctx, ListOptions{After: after})
	if err != nil {
		return nil, err
	}
	rep := &ReindexReport{}
	var batch []IndexDoc
	size := 0
	flush := func(upTo sealmail.MessageID) error {
		if len(batch) == 0 && upTo == 0 {
			return nil
		}
		if err := src.IndexDocs(ctx, batch, upTo); err != nil {
			return err
		}
		rep.Indexed += len(batch)
		batch, size = batch[:0], 0
		return nil
	}
	for i, r := range rows {
		m, err := getMessage(ctx, src, sealmail.MessageID(r.ID), ids)
		if err != nil {
			return nil, fmt.Errorf("reindex %d: %w", r.ID, err)
		}
		batch = append(batch, IndexDoc{ID: m.ID, Raw: m.Original, Envelopes: m.Envelopes(), Received: m.Received})
		size += len(m.Original)
		if len(batch) >= 200 || size >= 32<<20 {
			var upTo sealmail.MessageID
			if i == len(rows)-1 {
				upTo = sealmail.MessageID(r.ID)
			}
			if err := flush(upTo); err != nil {
				return nil, err
			}
		}
	}
	rep.UpTo = sealmail.MessageID(st.LastID)
	if len(rows) > 0 {
		rep.UpTo = max(rep.UpTo, sealmail.MessageID(rows[len(rows)-1].ID))
	}
	if err := flush(rep.UpTo); err != nil {
		return nil, err
	}
	return rep, nil
}

// PolicySource is what [ReapplyPolicy] needs.
type PolicySource interface {
	Reader
	ApplyPolicy(ctx context.Context, facts []PolicyFacts) ([]PolicyChange, error)
}

// PolicyReport says what [ReapplyPolicy] changed.
type PolicyReport struct {
	Evaluated int            `json:"evaluated"`
	Changed   []PolicyChange `json:"changed"`
}

// ReapplyPolicy decrypts every live message and hands the archive what its
// retention rules look at (headers and envelopes), in batches.
func ReapplyPolicy(ctx context.Context, src PolicySource, ids []age.Identity) (*PolicyReport, error) {
	rows, err := src.List(ctx, ListOptions{})
	if err != nil {
		return nil, err
	}
	rep := &PolicyReport{Evaluated: len(rows), Changed: []PolicyChange{}}
	var facts []PolicyFacts
	flush := func() error {
		if len(facts) == 0 {
			return nil
		}
		ch, err := src.ApplyPolicy(ctx, facts)
		rep.Changed = append(rep.Changed, ch...)
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

// ExportSource is what [Export] needs: the ids a query matches, the
// messages, and the audit log to record the export in.
type ExportSource interface {
	IDs(ctx context.Context, q string) ([]sealmail.MessageID, error)
	Get(ctx context.Context, id sealmail.MessageID) (*Sealed, error)
	RecordExport(ctx context.Context, r ExportRecord) error
}

// ExportOptions says what to export where.
type ExportOptions struct {
	Query  string // search syntax; "*" is every message
	Format string // "eml", "mbox" or "pst"
	// Out is the output: a new directory or a .zip file for eml, a file
	// for mbox and pst. It must not exist.
	Out  string
	Tool string // names the program in the manifest
	// Progress, if set, is called after each message with the count so far
	// and the total.
	Progress func(done, total int)
}

// ExportFormats are the formats [Export] writes.
var exportFormats = []string{"eml", "mbox", "pst"}

// ExportReport says what [Export] wrote.
type ExportReport struct {
	Count          int    `json:"count"`
	Out            string `json:"out"`
	Format         string `json:"format"`
	ManifestSHA256 string `json:"manifest_sha256"` // of manifest.sha256
	OutputSHA256   string `json:"output_sha256,omitempty"`
}

// Export writes every message a query matches, decrypted with ids, with
// its manifests (docs/export.md), then records the export in the audit
// log.
func Export(ctx context.Context, src ExportSource, ids []age.Identity, o ExportOptions) (*ExportReport, error) {
	opts := export.Options{Tool: o.Tool, Query: o.Query}
	var newWriter func() (export.Writer, error)
	switch o.Format {
	case "eml":
		newWriter = func() (export.Writer, error) {
			if strings.HasSuffix(strings.ToLower(o.Out), ".zip") {
				return export.NewEMLZip(o.Out, opts)
			}
			return export.NewEMLDir(o.Out, opts)
		}
	case "mbox":
		newWriter = func() (export.Writer, error) { return export.NewMbox(o.Out, opts) }
	case "pst":
		newWriter = func() (export.Writer, error) { return export.NewPST(o.Out, opts) }
	default:
		return nil, invalid("export format %q: want one of %s", o.Format, strings.Join(exportFormats, ", "))
	}
	matches, err := src.IDs(ctx, o.Query)
	if err != nil {
		return nil, err
	}
	w, err := newWriter()
	if err != nil {
		return nil, err
	}
	for i, id := range matches {
		m, err := getMessage(ctx, src, id, ids)
		if err == nil {
			err = w.Add(ctx, export.Item{ID: id, Received: m.Received, Raw: m.Original, Envelopes: m.Envelopes()})
		}
		if err != nil {
			_ = w.Close() // the export is incomplete whatever Close says
			return nil, fmt.Errorf("export message %d: %w", id, err)
		}
		if o.Progress != nil {
			o.Progress(i+1, len(matches))
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	man := w.Manifest()
	rec := ExportRecord{Query: o.Query, Format: o.Format, Output: o.Out, Count: man.Count,
		ManifestSHA256: man.SumFile.SHA256, OutputSHA256: man.Output.SHA256, IDs: make([]uint64, len(matches))}
	for i, id := range matches {
		rec.IDs[i] = uint64(id)
	}
	if err := src.RecordExport(ctx, rec); err != nil {
		return nil, fmt.Errorf("export written, but not audited: %w", err)
	}
	return &ExportReport{Count: man.Count, Out: o.Out, Format: o.Format, ManifestSHA256: man.SumFile.SHA256, OutputSHA256: man.Output.SHA256}, nil
}

// IndexDoc is one message's text for the index, decrypted by the caller
// ([Archive.IndexDocs]).
type IndexDoc struct {
	ID        sealmail.MessageID  `json:"id"`
	Raw       []byte              `json:"raw"` // the original, byte-exact
	Envelopes []sealmail.Envelope `json:"envelopes,omitempty"`
	Received  time.Time           `json:"received"`
}

// An Archive opened directly serves the same operations.
var (
	_ ReindexSource = (*Archive)(nil)
	_ PolicySource  = (*Archive)(nil)
	_ ExportSource  = (*Archive)(nil)
)
