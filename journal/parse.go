// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"github.com/sealmail/sealmail"
)

// Options configures [Parse]. The zero value is safe: the client is not
// trusted, so no report can set a message's envelope.
type Options struct {
	// Trusted says the client is a configured journaling source. Only then
	// does a report's envelope become the message's envelope; otherwise the
	// message is treated as a plain message (Original = whole data) and the
	// claimed report envelope goes to Envelope.Untrusted as labelled
	// evidence.
	Trusted bool

	// EncodedRecipientDomains lists archive domains whose RCPT TO addresses
	// carry an original recipient in the Postfix recipient_bcc_maps
	// encoding tag+local=domain@archive-domain (research §2.1;
	// docs/journaling.md). For a trusted source such a RCPT TO is recorded
	// as the recipient local@domain; Envelope.RcptTo keeps it as received.
	// Empty (the default) decodes nothing.
	EncodedRecipientDomains []string
}

// Formats reported in [Result.Format].
const (
	FormatExchange2007 = "exchange2007+"    // X-MS-Journal-Report (Exchange 2007 and later, Microsoft 365)
	FormatExchange2003 = "exchange2003"     // Content-Identifier / Content-Identifer: ExJournalReport
	FormatExchangeGCC  = "exchange-gcc"     // X-MS-Gcc-Journal-Report variant
	FormatJournalNDR   = "journal-ndr"      // a report wrapped in an NDR to the alternate journaling mailbox
	FormatPlain        = "plain"            // not a journal report
	FormatMalformed    = "malformed-report" // marked as a report but not understood
)

// Kinds reported in [Result.Kind]; they are the "kind" values of the journal
// corpus expected.json.
const (
	KindReport    = "journal-report"
	KindNDR       = "journal-ndr"
	KindMalformed = "malformed-journal-report"
	KindPlain     = "not-journal"
)

// Result is what [Parse] found in one SMTP transaction's DATA.
type Result struct {
	// Original is the original message: a subslice of data (the body of
	// the report's message/rfc822 part, exactly as defined by the corpus
	// expected.json) or data itself. It is never a copy.
	Original []byte
	// Report is the whole data when data is a journal report (trusted or
	// not, well-formed or not), else nil.
	Report []byte
	// Envelope has Source exchange-report (trusted, well-formed report) or
	// smtp-envelope; its transport fields are copied from the smtp argument.
	Envelope sealmail.Envelope
	// Format is one of the Format constants.
	Format string
	// Kind is one of the Kind constants.
	Kind string
	// OriginalMessageID is the Message-Id line of the report's envelope
	// block: the original's Message-ID as Exchange recorded it. It is empty
	// for plain messages, malformed reports and "Unknown Message-ID".
	OriginalMessageID string
}

// Parse never fails: anything it cannot understand is recorded in
// Result.Envelope.Warnings and the whole data becomes the original.
//
// smtp carries the facts of the SMTP transaction (MailFrom, RcptTo, ClientIP,
// …); its Sender, Recipients, Source, Untrusted and Warnings are ignored.
// Parse does not modify data or smtp, and keeps no reference to smtp's
// slices. It is safe for concurrent use.
func Parse(data []byte, smtp sealmail.Envelope, opts Options) *Result {
	res := &Result{Original: data, Format: FormatPlain, Kind: KindPlain}
	top := parse(data)
	rep, ok := findReport(top)
	if !ok {
		res.Envelope = plainEnvelope(top, smtp, opts)
		return res
	}
	res.Report = data
	res.Kind = rep.kind
	res.Format = rep.format
	if rep.malformed != "" {
		res.Kind = KindMalformed
		res.Format = FormatMalformed
		res.Envelope = transport(smtp)
		res.Envelope.Sender = smtp.MailFrom
		res.Envelope.Recipients = smtpRecipients(smtp.RcptTo, opts)
		res.Envelope.Warnings = append(rep.warnings, "malformed journal report: "+rep.malformed+"; archived whole")
		return res
	}
	claimed := sealmail.Envelope{
		Sender:          rep.block.sender,
		OnBehalfOf:      rep.block.onBehalfOf,
		Recipients:      rep.block.rcpts,
		Source:          sealmail.SourceExchangeReport,
		ReportMessageID: rep.reportMessageID,
	}
	res.OriginalMessageID = rep.block.messageID
	if !opts.Trusted {
		res.Envelope = transport(smtp)
		res.Envelope.Sender = smtp.MailFrom
		res.Envelope.Recipients = smtpRecipients(smtp.RcptTo, opts)
		res.Envelope.Untrusted = &claimed
		res.Envelope.Warnings = append(rep.warnings, "journal report from a client that is not a journaling source: claimed envelope kept as untrusted evidence")
		return res
	}
	env := transport(smtp)
	env.Sender = claimed.Sender
	env.OnBehalfOf = claimed.OnBehalfOf
	env.Recipients = claimed.Recipients
	env.Source = sealmail.SourceExchangeReport
	env.ReportMessageID = claimed.ReportMessageID
	env.Warnings = rep.warnings
	res.Envelope = env
	res.Original = rep.original
	return res
}

// transport copies the SMTP transaction facts and sets Source smtp-envelope.
func transport(smtp sealmail.Envelope) sealmail.Envelope {
	var rcpt []string
	if smtp.RcptTo != nil {
		rcpt = append([]string{}, smtp.RcptTo...)
	}
	return sealmail.Envelope{
		Source:     sealmail.SourceSMTPEnvelope,
		Received:   smtp.Received,
		MailFrom:   smtp.MailFrom,
		RcptTo:     rcpt,
		ClientIP:   smtp.ClientIP,
		HELO:       smtp.HELO,
		TLS:        smtp.TLS,
		AuthUser:   smtp.AuthUser,
		ReceivedBy: smtp.ReceivedBy,
	}
}
