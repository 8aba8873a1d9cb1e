// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"fmt"
	"net/mail"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
)

// ImportSource names the mailbox an import reads.
type ImportSource struct {
	Kind   string `json:"kind"`            // mbox, maildir, eml, pst, imap
	Source string `json:"source"`          // path or URL, never with a password
	Owner  string `json:"owner,omitempty"` // the mailbox's address (--owner)
}

// ImportMessage is one message to import.
type ImportMessage struct {
	Raw      []byte    `json:"raw"`
	Folder   string    `json:"folder,omitempty"`
	Received time.Time `json:"received,omitzero"` // the source's own time; zero if it has none
}

// Import outcomes.
const (
	ImportStored    = "stored"    // a new message
	ImportDuplicate = "duplicate" // already archived (journaled, or imported from another mailbox): one more receipt
	ImportSkipped   = "skipped"   // imported from this mailbox and folder before: nothing added
)

// ImportResult says what became of one imported message.
type ImportResult struct {
	ID      sealmail.MessageID `json:"id"`
	Outcome string             `json:"outcome"`
}

// ImportRecord is the audit entry of an import run, at its start (Phase
// "start", no counts) and at its end ("end", or "interrupted").
type ImportRecord struct {
	ImportSource
	Phase     string         `json:"phase"`
	Stored    int            `json:"stored"`
	Duplicate int            `json:"duplicate"`
	Skipped   int            `json:"skipped"`
	Refused   int            `json:"refused"`
	Bytes     int64          `json:"bytes"`
	Reasons   map[string]int `json:"reasons,omitempty"` // refusal reason → count
}

// Import stores one message read from existing mail (an mbox, a Maildir, a
// PST …), byte-exact, with an envelope that says so ([sealmail.Imported]).
// It goes the way of ingest: dedup (a message already archived gets one
// more receipt), retention by the same rules, audit. A message
// imported before from the same kind of source, owner and folder is
// skipped, so a re-run or an interrupted run adds nothing twice.
func (a *Archive) Import(ctx context.Context, src ImportSource, m ImportMessage) (ImportResult, error) {
	if len(m.Raw) == 0 {
		return ImportResult{}, fmt.Errorf("import: empty message")
	}
	mark := a.store.ImportMark(m.Raw, src.Kind+"\x00"+src.Owner+"\x00"+m.Folder)
	if id, ok, err := a.store.Imported(mark); err != nil {
		return ImportResult{}, fmt.Errorf("import: %w", err)
	} else if ok {
		return ImportResult{ID: id, Outcome: ImportSkipped}, nil
	}
	now := a.opts.Now()
	hdr := headerOf(m.Raw)
	received, from := m.Received, "source"
	if received.IsZero() {
		received, from = now, "import-time"
		if t, err := mail.Header(hdr).Date(); err == nil && !t.IsZero() {
			received, from = t, "date-header"
		}
	}
	env := &sealmail.Envelope{
		Source:   sealmail.SourceImport,
		Received: received.UTC(),
		Imported: &sealmail.Imported{Kind: src.Kind, Source: src.Source, Folder: m.Folder, Owner: src.Owner,
			At: now.UTC(), ReceivedFrom: from},
	}
	sm := &store.Message{Original: m.Raw, Envelope: env, Received: env.Received}
	if a.retention != nil {
		_, sm.RetainUntil, sm.Forever = a.retention.Evaluate(policy.Facts{
			Envelopes: []sealmail.Envelope{*env}, Header: hdr, Received: env.Received})
	}
	res, err := a.store.Append(ctx, sm)
	if err != nil {
		return ImportResult{}, fmt.Errorf("import: %w", err)
	}
	if err := a.store.MarkImported(mark, res.ID); err != nil {
		return ImportResult{}, fmt.Errorf("import: message %d stored: %w", res.ID, err)
	}
	out := ImportResult{ID: res.ID, Outcome: ImportStored}
	if res.Duplicate {
		out.Outcome = ImportDuplicate
	}
	return out, nil
}

// RecordImport writes an import run's audit entry: source, owner, who (the
// context's actor) and, at the end, the counts.
func (a *Archive) RecordImport(ctx context.Context, r ImportRecord) error {
	f := importFields{Phase: r.Phase, Kind: r.Kind, Source: r.Source, Owner: r.Owner}
	if r.Phase != "start" {
		f.importCounts = &importCounts{Stored: r.Stored, Duplicate: r.Duplicate, Skipped: r.Skipped, Refused: r.Refused, Bytes: r.Bytes, Reasons: r.Reasons}
	}
	return a.logEvent(ctx, audit.TypeImport, f)
}
