// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/journal"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
)

// Ingest stores one message received over SMTP: data is the DATA exactly as
// received, env the transport facts of the transaction. It returns after the
// message is durable, and keeps nothing of data (the caller reuses it). A
// message is never refused for its content.
func (a *Archive) Ingest(ctx context.Context, env *sealmail.Envelope, data []byte) (sealmail.MessageID, error) {
	original, report, e := a.envelope(env, data)
	m := &store.Message{Original: original, Report: report, Envelope: e, Received: env.Received}
	if a.retention != nil {
		_, m.RetainUntil, m.Forever = a.retention.Evaluate(policy.Facts{
			Envelopes: []sealmail.Envelope{*e}, Header: headerOf(original), Received: env.Received})
	}
	res, err := a.store.Append(ctx, m)
	if err != nil {
		return 0, fmt.Errorf("ingest: %w", err)
	}
	a.log.Debug("ingested", "id", res.ID, "size", len(original), "duplicate", res.Duplicate)
	a.noteJournalSource(env)
	return res.ID, nil
}

// envelope splits data into the original and the journal report it arrived
// in, and returns the envelope to store. A report's envelope counts only from
// a configured journaling source (see [Options.JournalSources]).
func (a *Archive) envelope(env *sealmail.Envelope, data []byte) (original, report []byte, e *sealmail.Envelope) {
	res := journal.Parse(data, *env, journal.Options{
		Trusted:                 a.trusted(env),
		EncodedRecipientDomains: a.opts.EncodedRecipientDomains,
	})
	report = res.Report
	if len(report) == len(res.Original) {
		// An untrusted or malformed report is archived whole as the
		// original: keep its bytes once.
		report = nil
	}
	return res.Original, report, &res.Envelope
}

// headerOf parses the original's header for retention rules; a header that
// does not parse gives none (malformed mail is archived all the same).
func headerOf(original []byte) map[string][]string {
	m, err := mail.ReadMessage(bytes.NewReader(original))
	if err != nil {
		return nil
	}
	return m.Header
}
