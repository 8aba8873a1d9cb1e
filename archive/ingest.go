// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"fmt"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/store"
)

// Ingest stores one message received over SMTP: data is the DATA exactly as
// received, env the transport facts of the transaction. It returns after the
// message is durable. A message is never refused for its content.
func (a *Archive) Ingest(ctx context.Context, env *sealmail.Envelope, data []byte) (sealmail.MessageID, error) {
	original, report, e := a.envelope(env, data)
	res, err := a.store.Append(ctx, &store.Message{Original: original, Report: report, Envelope: e, Received: env.Received})
	if err != nil {
		return 0, fmt.Errorf("ingest: %w", err)
	}
	a.log.Debug("ingested", "id", res.ID, "size", len(original), "duplicate", res.Duplicate)
	return res.ID, nil
}

// envelope splits data into the original and the journal report, and
// returns the envelope to store.
func (a *Archive) envelope(env *sealmail.Envelope, data []byte) (original, report []byte, e *sealmail.Envelope) {
	e = new(sealmail.Envelope)
	*e = *env
	e.Source = sealmail.SourceSMTPEnvelope
	e.Sender = env.MailFrom
	e.Recipients = nil
	for _, r := range env.RcptTo {
		e.Recipients = append(e.Recipients, sealmail.Recipient{Address: r, Kind: sealmail.RcptUnknown})
	}
	return data, nil, e
}
