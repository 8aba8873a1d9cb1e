// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"fmt"
	"strings"

	"github.com/sealmail/sealmail/mimepart"
)

// report is what findReport learnt about a journal report.
type report struct {
	kind, format    string
	reportMessageID string // the report's own Message-ID header
	block           block  // the envelope block
	original        []byte // the original's bytes: a subslice of data
	warnings        []string
	// malformed, when set, says why the report cannot be used; the other
	// fields except kind and format are then not meaningful.
	malformed string
}

// reportFormat tells whether a header block marks a journal report (research
// doc §1.2, Microsoft's CheckJournalReportVersion: X-MS-Journal-Report →
// 2007, then Content-Identifier / Content-Identifer = ExJournalReport,
// compared case-insensitively → 2003). Headers such as
// X-MS-Exchange-Organization-Processed-By-Journaling are loop-prevention
// stamps on originals and do not mark a report.
func reportFormat(h mimepart.Header) string {
	if _, ok := h.Lookup("X-MS-Journal-Report"); ok {
		return FormatExchange2007
	}
	// The in-organisation name, before the header firewall renames it
	// (research §1.2, "Organization and forest X-headers").
	if _, ok := h.Lookup("X-MS-Exchange-Organization-Journal-Report"); ok {
		return FormatExchange2007
	}
	if _, ok := h.Lookup("X-MS-Gcc-Journal-Report"); ok {
		return FormatExchangeGCC
	}
	for _, name := range []string{"Content-Identifier", "Content-Identifer"} {
		for _, v := range h.Values(name) {
			if strings.EqualFold(strings.TrimSpace(v), "ExJournalReport") {
				return FormatExchange2003
			}
		}
	}
	return ""
}

// findReport decides whether the top-level entity is a journal report, or an
// NDR that wraps one (research §1.7), and parses it. ok is false for a
// message that is neither.
func findReport(top *mimepart.Part) (report, bool) {
	if f := reportFormat(top.Header); f != "" {
		return parseReport(top, KindReport, f), true
	}
	// A journal NDR to the alternate journaling mailbox: multipart/report
	// whose message/rfc822 part is a journal report. The top level carries
	// no marker.
	if mediaType(top) != "multipart/report" {
		return report{}, false
	}
	for _, pe := range top.Parts() {
		if mediaType(pe) != "message/rfc822" {
			continue
		}
		inner := pe.Message()
		if inner == nil {
			continue
		}
		f := reportFormat(inner.Header)
		if f == "" {
			continue
		}
		r := parseReport(inner, KindNDR, FormatJournalNDR)
		if r.malformed == "" {
			r.warnings = append(r.warnings, fmt.Sprintf("journal report (%s) unwrapped from a non-delivery report", f))
		}
		return r, true
	}
	return report{}, false
}

// parseReport parses a journal report entity: the envelope block from the
// first text part that yields a Sender: line, the original from the
// message/rfc822 part.
func parseReport(rep *mimepart.Part, kind, format string) report {
	r := report{kind: kind, format: format}
	r.reportMessageID = rep.Header.Get("Message-ID")
	r.reportMessageID = strings.Join(strings.Fields(r.reportMessageID), "")
	if format == FormatExchangeGCC {
		r.warnings = append(r.warnings, "GCC journal report variant (X-MS-Gcc-Journal-Report)")
	}
	mt := mediaType(rep)
	if !strings.HasPrefix(mt, "multipart/") {
		r.malformed = "report is " + mt + ", not multipart"
		return r
	}
	if rep.Params["boundary"] == "" {
		r.malformed = "multipart report without boundary"
		return r
	}
	ents := rep.Parts()
	if len(ents) == 0 {
		r.malformed = "report has no body parts"
		return r
	}
	if !rep.Closed() {
		r.warnings = append(r.warnings, "report multipart has no close delimiter")
	}

	// The envelope block. Microsoft's UnJournal agent (research §1.3,
	// EnvelopeJournalUtility) walks the body part and its siblings first,
	// then the attachments, and takes the first text/plain or text/html
	// part that yields a Sender. Embedded messages are never searched: a
	// nested original's Sender:/Recipient: lines are not the envelope.
	var found bool
	for _, attachments := range []bool{false, true} {
		for _, e := range ents {
			if b, ok := findBlock(e, attachments); ok {
				r.block, found = b, true
				break
			}
		}
		if found {
			break
		}
	}
	if !found {
		r.malformed = "no envelope block (no text part with a Sender: line)"
		return r
	}
	r.warnings = append(r.warnings, r.block.warnings...)

	// The original. With IRM journal report decryption there are two
	// message/rfc822 parts (research §1.8): the protected original and a
	// decrypted copy. Identify the protected one by content, not position;
	// else take the first.
	chosen := -1
	var messages int
	var chosenProtected bool
	for i, e := range ents {
		if mediaType(e) != "message/rfc822" {
			continue
		}
		messages++
		if chosenProtected {
			continue
		}
		if p := isProtected(e); chosen < 0 || p {
			chosen, chosenProtected = i, p
		}
	}
	if chosen < 0 {
		r.malformed = "no message/rfc822 part"
		return r
	}
	e := ents[chosen]
	if !e.Terminated {
		r.malformed = "message/rfc822 part is not terminated by a boundary (truncated report)"
		return r
	}
	if !e.Separated {
		r.malformed = "message/rfc822 part has no header/body separator"
		return r
	}
	r.original = e.Body()
	if messages > 1 {
		r.warnings = append(r.warnings, fmt.Sprintf("report carries %d message parts (e.g. an IRM-decrypted copy); part %d archived as the original", messages, chosen+1))
	}
	if cte, ok := e.Header.Lookup("Content-Transfer-Encoding"); ok {
		switch strings.ToLower(strings.TrimSpace(cte)) {
		case "7bit", "8bit", "binary", "":
		default:
			// RFC 2046 §5.2.1: message/rfc822 may only be 7bit, 8bit or
			// binary. Keep the bytes as they are, and say so.
			r.warnings = append(r.warnings, "message/rfc822 part has Content-Transfer-Encoding "+cte+"; archived as encoded")
		}
	}
	if isTNEF(e) {
		r.warnings = append(r.warnings, "original carries TNEF (winmail.dat); disable TNEF toward the archive (Set-RemoteDomain -TNEFEnabled $false)")
	}
	return r
}

// findBlock looks for the envelope block in part e and, for multiparts, its
// descendants. attachments selects which pass this is: parts with
// Content-Disposition: attachment are only considered in the second pass.
func findBlock(e *mimepart.Part, attachments bool) (block, bool) {
	mt := mediaType(e)
	if strings.HasPrefix(mt, "multipart/") {
		for _, p := range e.Parts() {
			if b, ok := findBlock(p, attachments); ok {
				return b, true
			}
		}
		return block{}, false
	}
	if mt != "text/plain" && mt != "text/html" {
		return block{}, false
	}
	disp := e.Header.Get("Content-Disposition")
	isAttachment := strings.HasPrefix(strings.ToLower(disp), "attachment")
	if isAttachment != attachments {
		return block{}, false
	}
	text, note := decodeText(e)
	if mt == "text/html" {
		text = htmlToText(text)
	}
	b := parseBlock(text)
	if !b.haveSender {
		return block{}, false
	}
	if note != "" {
		b.warnings = append(b.warnings, "envelope part: "+note)
	}
	return b, true
}

// isProtected reports whether the embedded message in part is an
// IRM-protected one: Content-Class: rpmsg.message or an
// application/x-microsoft-rpmsg-message part (research §1.8).
func isProtected(part *mimepart.Part) bool {
	msg := part.Message()
	if msg == nil {
		return false
	}
	for _, v := range msg.Header.Values("Content-Class") {
		if strings.EqualFold(strings.TrimSpace(v), "rpmsg.message") {
			return true
		}
	}
	return hasPartType(msg, "application/x-microsoft-rpmsg-message")
}

// isTNEF reports whether the message embedded in part has an
// application/ms-tnef (winmail.dat) part (research §1.5).
func isTNEF(part *mimepart.Part) bool {
	msg := part.Message()
	return msg != nil && hasPartType(msg, "application/ms-tnef", "application/vnd.ms-tnef")
}

// hasPartType reports whether e or one of its multipart descendants has one
// of the media types. Embedded messages are not entered.
func hasPartType(e *mimepart.Part, types ...string) bool {
	mt := mediaType(e)
	for _, t := range types {
		if mt == t {
			return true
		}
	}
	for _, p := range e.Parts() {
		if hasPartType(p, types...) {
			return true
		}
	}
	return false
}
