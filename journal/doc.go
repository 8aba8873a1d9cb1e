// SPDX-License-Identifier: Apache-2.0

// Package journal turns the DATA of one SMTP transaction, plus the SMTP
// envelope it arrived with, into the original message (byte-exact) and the
// message's true envelope.
//
// A journaling source (Exchange Server, Microsoft 365, Postfix, …) sends the
// archive either an envelope journal report, which wraps the original and
// states its real sender and every recipient (Bcc and expanded
// distribution-group members included), or a plain copy of the message, whose
// only envelope is the SMTP MAIL FROM / RCPT TO. [Parse] tells them apart and
// returns a [Result]. The formats are described in
// ../shared/research/journal-formats.md (cited below as "research §n") and
// tested against ../shared/corpus/journal (expected.json).
//
// # Detection
//
// On the top-level header block only (research §1.2; Microsoft's
// CheckJournalReportVersion does the same):
//
//   - X-MS-Journal-Report (any value, usually empty), or its in-organisation
//     name X-MS-Exchange-Organization-Journal-Report: an Exchange 2007+ /
//     Microsoft 365 report, Format "exchange2007+".
//   - X-MS-Gcc-Journal-Report: the GCC variant, Format "exchange-gcc", parsed
//     the same way and flagged with a warning.
//   - Content-Identifier or the misspelt Content-Identifer equal to
//     ExJournalReport, case-insensitively: an Exchange 2003 report, Format
//     "exchange2003" (research §1.4, "Exchange 2003 envelope format").
//   - A multipart/report whose message/rfc822 part carries one of the markers
//     above: a journal report wrapped in an NDR to the alternate journaling
//     mailbox, Kind and Format "journal-ndr" (research §1.7). The inner report
//     is parsed.
//
// Anything else is a plain message (Kind "not-journal", Format "plain").
// Loop-prevention stamps such as
// X-MS-Exchange-Organization-Processed-By-Journaling appear on ordinary mail
// and never mark a report. Headers of an embedded original are never read as
// the report's.
//
// # Reports
//
// A report is multipart; its body parts are located by package mimepart as
// byte offsets into DATA (RFC 2046 §5.1.1), never by re-serialising MIME.
//
//   - The envelope block is the first text/plain or text/html part that has a
//     Sender: line, searched as Microsoft's UnJournal agent does (research
//     §1.3, EnvelopeJournalUtility): body parts first, then attachments,
//     descending into nested multiparts but never into message/rfc822. The
//     Content-Transfer-Encoding (quoted-printable, base64) and the charset
//     are undone before lines are split; continuation lines are unfolded.
//   - Block grammar (research §1.4; [MS-XJRNL] 2.1.1, 2.1.4, 2.1.6): the
//     first Sender: is Envelope.Sender, the first On-Behalf-Of: is
//     Envelope.OnBehalfOf (never a recipient), the first Message-Id: (any
//     case) is Result.OriginalMessageID. To:/Cc:/Bcc: lines become
//     RcptTo/RcptCc/RcptBcc and Recipient: lines, and the Exchange 2003
//     Recipients: list, RcptUnknown. One ", Expanded: group" or ",
//     Forwarded: address" annotation per line goes to
//     Recipient.ExpandedFrom/ForwardedFrom; the group or forward source is
//     not itself added. "<>" recipients are dropped. [EX:…] legacy DNs are
//     kept verbatim; in the 2003 form "<SMTP:a@b>" becomes a@b and other
//     types stay "TYPE:address". The literals "Unspecified Address" and
//     "Unknown Message-ID" give empty values (the former with a warning).
//   - The original is the body of the report's top-level message/rfc822 part:
//     from the first byte after the blank line ending that part's headers up
//     to, not including, the line break before the next delimiter. This is
//     the definition of the corpus expected.json. With IRM journal report
//     decryption there are two such parts (research §1.8); the protected one
//     (Content-Class: rpmsg.message or an
//     application/x-microsoft-rpmsg-message part) is chosen, else the first.
//     A TNEF original (winmail.dat, research §1.5) is archived as attached,
//     with a warning that TNEF toward the archive should be turned off.
//   - Envelope.ReportMessageID is the report's own Message-ID header (for an
//     NDR, that of the wrapped report, not of the NDR).
//
// A report without an envelope block, without a message/rfc822 part, not
// multipart, or whose message/rfc822 part is not followed by a delimiter
// (truncated) is malformed: Kind "malformed-journal-report", Format
// "malformed-report", Original = Report = data, the SMTP envelope, and a
// warning saying why. Parse does not invent an envelope from header addresses
// (corpus sample 10).
//
// # Trust
//
// A report is a claim about other people's mail, and anyone can write
// X-MS-Journal-Report (research §1.2, "Trust"). Only when [Options.Trusted]
// says the client is a configured journaling source does a report's envelope
// become the message's (Source exchange-report) and the attached original
// become Original. Otherwise Original is the whole data, the envelope is the
// SMTP one, and the claimed envelope is kept in Envelope.Untrusted (sender,
// on-behalf-of, recipients, report Message-ID; no transport fields) as
// labelled evidence.
//
// # Plain messages
//
// Source smtp-envelope, Sender = MAIL FROM, one RcptUnknown recipient per
// RCPT TO (empty and repeated addresses dropped, compared
// case-insensitively). For a trusted source, a RCPT TO in the Postfix
// recipient_bcc_maps encoding tag+local=domain@archive-domain, where
// archive-domain is listed in [Options.EncodedRecipientDomains], is recorded
// as local@domain (research §2.1; Envelope.RcptTo keeps what arrived). This
// is how a Postfix copy keeps its Bcc recipients (docs/journaling.md). For a
// trusted source, the addresses of the top-level
// X-Original-To and then Delivered-To headers are appended as RcptUnknown
// when not already listed: Postfix local(8), virtual(8) and pipe(8) flags O/D
// record the recipient of that delivery there (research §2.1). For an
// untrusted client they are only the sender's claim and are ignored. With
// Postfix always_bcc these headers name the archive address itself and the
// true recipients are lost; see docs/journaling.md.
//
// # Invariants
//
//   - Parse never fails and never panics; problems are recorded in
//     Envelope.Warnings.
//   - Original is a subslice of data (capacity clipped, so appending to it
//     cannot overwrite data) or data itself. No byte of data is lost: when
//     the report is not used, Original is all of data.
//   - Report is nil or data itself; it is data exactly when a journal marker
//     was found (trusted or not, well-formed or not).
//   - Envelope.Source is exchange-report only for a well-formed report from a
//     trusted source; then Envelope.Untrusted is nil.
//   - The transport fields (Received, MailFrom, RcptTo, ClientIP, HELO, TLS,
//     AuthUser, ReceivedBy) are always copied from the smtp argument; RcptTo
//     is a copy, not shared.
//   - data and smtp are not modified. Warnings never contain message content.
//
// # Concurrency
//
// Parse has no state; it may be called from any number of goroutines.
package journal
