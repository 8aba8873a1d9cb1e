// SPDX-License-Identifier: Apache-2.0

package sealmail

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MessageID identifies one archived message. Ids are assigned by the store in
// strictly increasing order starting at 1; 0 is never a valid id.
type MessageID uint64

// String formats the id as a decimal number, the form every interface uses.
func (id MessageID) String() string { return strconv.FormatUint(uint64(id), 10) }

// ParseMessageID parses a decimal message id as printed by [MessageID.String].
func ParseMessageID(s string) (MessageID, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid message id %q: want a positive decimal number", s)
	}
	return MessageID(n), nil
}

// RcptKind says how a recipient was addressed.
type RcptKind string

// Recipient kinds. RcptUnknown is used where the source cannot tell (a plain
// SMTP envelope, or an Exchange "Recipient:" line whose addressing Exchange
// could not verify).
const (
	RcptTo      RcptKind = "to"
	RcptCc      RcptKind = "cc"
	RcptBcc     RcptKind = "bcc"
	RcptUnknown RcptKind = "unknown"
)

// Valid reports whether k is one of the defined kinds.
func (k RcptKind) Valid() bool {
	switch k {
	case RcptTo, RcptCc, RcptBcc, RcptUnknown:
		return true
	}
	return false
}

// EnvelopeSource says where an envelope's facts came from.
type EnvelopeSource string

// Envelope sources.
const (
	// SourceExchangeReport: the envelope block of an Exchange or Microsoft 365
	// journal report received from a trusted journaling source.
	SourceExchangeReport EnvelopeSource = "exchange-report"
	// SourceSMTPEnvelope: the SMTP MAIL FROM / RCPT TO the message arrived with.
	SourceSMTPEnvelope EnvelopeSource = "smtp-envelope"
	// SourceImport: no transport envelope; the message was imported from
	// existing mail (an mbox, a Maildir, a PST, …) and Imported says from
	// where.
	SourceImport EnvelopeSource = "import"
)

// Imported records where an imported message came from. Envelope.Received
// of an imported copy is the source's received time (the mbox From line's
// date, the Maildir file time, the IMAP internal date, PST delivery time,
// else the Date header); At is when it was imported.
type Imported struct {
	Kind   string    `json:"kind"`             // mbox, maildir, eml, pst, imap
	Source string    `json:"source"`           // file path or imaps URL (never a password)
	Folder string    `json:"folder,omitempty"` // folder path inside the source
	Owner  string    `json:"owner,omitempty"`  // the mailbox it came from (--owner)
	At     time.Time `json:"at"`               // import time
	// ReceivedFrom names what Envelope.Received was taken from:
	// "source" (the source's own date), "date-header" or "import-time".
	ReceivedFrom string `json:"received_from"`
}

// Recipient is one recipient of a message as the envelope records it.
type Recipient struct {
	Address       string   `json:"address"`
	Kind          RcptKind `json:"type"`
	ExpandedFrom  string   `json:"expanded_from,omitempty"`
	ForwardedFrom string   `json:"forwarded_from,omitempty"`
}

// Envelope records who really sent and received one copy of a message, and
// how it reached the archive. One message may have several envelopes (the
// same original journaled by two servers, or sent twice); the store keeps
// each.
type Envelope struct {
	Sender          string         `json:"sender"`
	OnBehalfOf      string         `json:"on_behalf_of,omitempty"`
	Recipients      []Recipient    `json:"recipients"`
	Source          EnvelopeSource `json:"source"`
	ReportMessageID string         `json:"report_message_id,omitempty"`

	// Transport facts of the SMTP transaction that delivered this copy.
	Received   time.Time `json:"received"`
	MailFrom   string    `json:"mail_from"`
	RcptTo     []string  `json:"rcpt_to,omitempty"`
	ClientIP   string    `json:"client_ip,omitempty"`
	HELO       string    `json:"helo,omitempty"`
	TLS        string    `json:"tls,omitempty"` // negotiated version, e.g. "TLS 1.3"; empty for plaintext
	AuthUser   string    `json:"auth_user,omitempty"`
	ReceivedBy string    `json:"received_by,omitempty"` // listener address

	// Imported is set for a copy that was imported, not received (Source
	// is SourceImport).
	Imported *Imported `json:"imported,omitempty"`

	// Untrusted holds an envelope that the message claimed (an
	// X-MS-Journal-Report from a client that is not a configured journaling
	// source). It is kept as labelled evidence and never used for access or
	// policy decisions.
	Untrusted *Envelope `json:"untrusted_claim,omitempty"`
	// Warnings records parsing problems; they never cause a message to be
	// refused.
	Warnings []string `json:"warnings,omitempty"`
}

// Addresses returns every address the envelope names (sender, on-behalf-of,
// recipients, expansion and forwarding sources), lower-cased, without
// duplicates, in first-seen order. Untrusted claims are not included.
func (e *Envelope) Addresses() []string {
	seen := make(map[string]bool)
	var out []string
	add := func(a string) {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" || seen[a] {
			return
		}
		seen[a] = true
		out = append(out, a)
	}
	add(e.Sender)
	add(e.OnBehalfOf)
	if e.Imported != nil {
		add(e.Imported.Owner)
	}
	for _, r := range e.Recipients {
		add(r.Address)
		add(r.ExpandedFrom)
		add(r.ForwardedFrom)
	}
	return out
}
