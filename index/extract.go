// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sealmail/sealmail/extract"
	"github.com/sealmail/sealmail/mimepart"
)

// Extraction bounds. A message that hits one is indexed as far as it got and
// flagged "truncated".
const (
	// MaxTextBytes caps the text extracted from one message (body, attachment
	// text and nested headers together).
	MaxTextBytes = 4 << 20
	// MaxDepth caps the nesting of multiparts and message/rfc822 parts.
	MaxDepth = 24
	// MaxParts caps the number of MIME parts visited in one message.
	MaxParts = 2000
)

// Flags recorded on a document ("flag:" in queries).
const (
	FlagDecodeError = "decode-error" // a part or header could not be fully decoded
	FlagTruncated   = "truncated"    // an extraction bound was hit
	// FlagUnextracted marks a message with an attachment whose text could
	// not be extracted, or not all of it. Each reason is a flag too:
	// "unextracted-" and the [extract.Reason] ("unextracted-timeout").
	FlagUnextracted = "unextracted"
)

// Extractor returns the text of an attachment that index does not read
// itself: PDF, Office and OpenDocument files, RTF, archives, TNEF. The
// reader service gives index an [extract.Sandbox]; tests may use an
// [extract.Local]. Extract must not fail: it reports what it could not do
// in Result.Reason. It is called concurrently from Add's workers.
type Extractor interface {
	Extract(ctx context.Context, in extract.Input) extract.Result
}

// Attachment is one attachment or named part of a message.
type Attachment struct {
	Name   string         // file name; empty for an unnamed part
	Type   string         // declared content type
	Reason extract.Reason // why its text is not (all) indexed; "" if it is, or it has none
	// textStart and textEnd locate its text in Extracted.AttachText
	// (nested attachments lie inside their parent's range).
	textStart, textEnd int
}

// Extracted is the searchable text and facts of one message.
type Extracted struct {
	Subject   string
	From      []string // decoded From header values
	Sender    []string
	To        []string
	Cc        []string
	Bcc       []string
	MessageID string    // without angle brackets
	Date      time.Time // header Date; zero if missing or unreadable

	Body          string       // text of inline text parts and nested messages
	AttachNames   []string     // file names of attachments and named parts
	AttachText    string       // text of text-like attachments and of extracted documents
	Attachments   []Attachment // attachments and named parts, in message order
	HasAttachment bool

	DecodeError bool
	Truncated   bool
}

// Flags returns the document flags for e.
func (e *Extracted) Flags() []string {
	var f []string
	if e.DecodeError {
		f = append(f, FlagDecodeError)
	}
	if e.Truncated {
		f = append(f, FlagTruncated)
	}
	seen := map[extract.Reason]bool{}
	for _, a := range e.Attachments {
		if a.Reason != "" && !seen[a.Reason] {
			if len(seen) == 0 {
				f = append(f, FlagUnextracted)
			}
			seen[a.Reason] = true
			f = append(f, FlagUnextracted+"-"+string(a.Reason))
		}
	}
	return f
}

// Extract parses a raw RFC 5322 message leniently and returns its text. It
// never fails: whatever cannot be read is skipped and flagged. Work is linear
// in len(raw) and bounded by [MaxTextBytes], [MaxDepth] and [MaxParts].
func Extract(raw []byte) *Extracted {
	return extractWith(context.Background(), raw, nil)
}

// extractWith is Extract that hands the attachments index does not read
// itself to ext (nil: none).
func extractWith(ctx context.Context, raw []byte, ext Extractor) (x *Extracted) {
	w := &walker{x: &Extracted{}, ctx: ctx, ext: ext}
	defer func() {
		// Belt and braces: a bug in the walker must not stop indexing. The
		// document is kept with what was extracted and flagged.
		if r := recover(); r != nil {
			x = w.x
			x.DecodeError = true
		}
	}()
	return w.extract(raw)
}

// extract is Extract without the panic guard (for fuzzing).
func (w *walker) extract(raw []byte) *Extracted {
	top := mimepart.Parse(raw, mimepart.Options{MaxDepth: MaxDepth, MaxParts: MaxParts})
	h := top.Header
	x := w.x
	x.Subject = w.words(h.Get("subject"))
	x.From = w.all(h.Values("from"))
	x.Sender = w.all(h.Values("sender"))
	x.To = w.all(h.Values("to"))
	x.Cc = w.all(h.Values("cc"))
	x.Bcc = w.all(h.Values("bcc"))
	x.MessageID = cleanMessageID(h.Get("message-id"))
	x.Date, _ = mimepart.ParseDate(h.Get("date"))
	w.entity(top, false, "text/plain")
	x.Body = w.body.String()
	x.AttachText = w.att.String()
	if top.Truncated() {
		x.Truncated = true
	}
	return x
}

type walker struct {
	x    *Extracted
	ctx  context.Context
	ext  Extractor
	used int
	body strings.Builder
	att  strings.Builder
}

// ok flags the document when a decoder reports a problem.
func (w *walker) ok(ok bool) {
	if !ok {
		w.x.DecodeError = true
	}
}

func (w *walker) words(s string) string {
	if s == "" {
		return ""
	}
	d, ok := mimepart.DecodeWords(s)
	w.ok(ok)
	return d
}

func (w *walker) all(vals []string) []string {
	var out []string
	for _, v := range vals {
		if d := strings.TrimSpace(w.words(v)); d != "" {
			out = append(out, d)
		}
	}
	return out
}

// add appends s to sb within the text budget.
func (w *walker) add(sb *strings.Builder, s string) {
	if s == "" {
		return
	}
	if w.used+len(s) > MaxTextBytes {
		n := MaxTextBytes - w.used
		for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		if n < 0 {
			n = 0
		}
		s = s[:n]
		w.x.Truncated = true
	}
	if s == "" {
		return
	}
	if sb.Len() > 0 {
		sb.WriteByte('\n')
	}
	sb.WriteString(s)
	w.used += len(s) + 1
}

var textExts = []string{".txt", ".csv", ".tsv", ".ics", ".vcs", ".vcf", ".eml", ".log", ".md", ".json", ".xml", ".htm", ".html"}

func textLikeName(name string) bool {
	n := strings.ToLower(name)
	for _, e := range textExts {
		if strings.HasSuffix(n, e) {
			return true
		}
	}
	return false
}

// entity indexes one MIME part. def is the default content type (RFC 2046
// §5.1.5: message/rfc822 inside multipart/digest).
func (w *walker) entity(p *mimepart.Part, inAttach bool, def string) {
	if w.used >= MaxTextBytes {
		w.x.Truncated = true
		return
	}
	h := p.Header
	ct, params := p.ContentType, p.Params
	w.ok(p.ParamsOK)
	if ct == "" {
		ct = def
	}
	disp, dparams, ok := mimepart.ParseParams(h.Get("content-disposition"))
	w.ok(ok)
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	name = strings.TrimSpace(w.words(name))

	if strings.HasPrefix(ct, "multipart/") {
		if !p.IsMultipart() {
			// No boundary: read the body as text, as most readers do.
			w.text(&w.body, inAttach, "text/plain", "", p.Body())
			return
		}
		child := "text/plain"
		if ct == "multipart/digest" {
			child = "message/rfc822"
		}
		parts := p.Parts()
		switch ct {
		case "multipart/signed":
			// RFC 1847 §2.1: the second part is the signature, not an
			// attachment and not text (notmuch skips it too).
			parts = parts[:min(len(parts), 1)]
		case "multipart/encrypted":
			// RFC 1847 §2.2: a control part and ciphertext; nothing to index.
			return
		}
		for _, c := range parts {
			w.entity(c, inAttach, child)
			if w.x.Truncated {
				return
			}
		}
		return
	}

	isAttach := disp == "attachment" ||
		(name != "" && disp != "inline" && ct != "text/plain" && ct != "text/html")
	if name != "" {
		w.x.AttachNames = append(w.x.AttachNames, name)
	}
	if isAttach {
		w.x.HasAttachment = true
	}
	ai := -1 // this part's entry in Attachments
	attachment := func() int {
		if ai < 0 {
			w.x.Attachments = append(w.x.Attachments, Attachment{Name: name, Type: ct, textStart: w.att.Len()})
			ai = len(w.x.Attachments) - 1
		}
		return ai
	}
	defer func() {
		if ai >= 0 {
			w.x.Attachments[ai].textEnd = w.att.Len()
		}
	}()
	if name != "" || isAttach {
		attachment()
	}
	// RFC 2045 §6.4: an unknown encoding makes the body opaque; index the
	// raw bytes anyway (they are often plain text) and flag it.
	data, ok := mimepart.DecodeTransfer(h.Get("content-transfer-encoding"), p.Body())
	w.ok(ok)
	target := &w.body
	if isAttach || inAttach {
		target = &w.att
	}
	inAttach = inAttach || isAttach
	lname := strings.ToLower(name)
	switch {
	case ct == "message/rfc822" || ct == "message/global" ||
		(isAttach && strings.HasSuffix(lname, ".eml") && !strings.HasPrefix(ct, "text/")):
		msg := p.Nested(data)
		if msg == nil {
			w.x.Truncated = true
			return
		}
		for _, k := range []string{"from", "to", "cc", "subject"} {
			for _, v := range msg.Header.Values(k) {
				w.add(target, w.words(v))
			}
		}
		w.entity(msg, inAttach, "text/plain")
	case strings.HasPrefix(ct, "text/") || ct == "message/delivery-status" ||
		ct == "message/disposition-notification" || ct == "message/feedback-report" ||
		ct == "application/ics" || (isAttach && textLikeName(name)):
		html := ct == "text/html" || strings.HasSuffix(lname, ".htm") || strings.HasSuffix(lname, ".html")
		kind := "text/plain"
		if html {
			kind = "text/html"
		}
		w.text(target, inAttach, kind, params["charset"], data)
	default:
		// A document index does not read itself (PDF, Office, archives…):
		// the Extractor's, if it reads the format. Its text is attachment
		// text even when the part is inline.
		if w.ext == nil || extract.Detect(data, ct, name) == "" {
			return
		}
		i := attachment()
		r := w.ext.Extract(w.ctx, extract.Input{Data: data, ContentType: ct, Name: name})
		w.x.Attachments[i].Reason = r.Reason
		if r.Truncated {
			w.x.Truncated = true
		}
		w.add(&w.att, r.Text)
	}
}

// text decodes and adds a text body; target is overridden to the attachment
// text when inside an attachment.
func (w *walker) text(target *strings.Builder, inAttach bool, kind, charset string, data []byte) {
	if inAttach {
		target = &w.att
	}
	if len(data) > MaxTextBytes {
		data = data[:MaxTextBytes]
		w.x.Truncated = true
	}
	s, ok := mimepart.DecodeCharset(charset, data)
	w.ok(ok)
	if kind == "text/html" {
		s = extract.HTMLText(s)
	}
	w.add(target, s)
}

func cleanMessageID(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			return strings.TrimSpace(s[i+1 : i+j])
		}
		return strings.TrimSpace(s[i+1:])
	}
	return s
}

// String summarises e for debugging without message content.
func (e *Extracted) String() string {
	return fmt.Sprintf("extracted{body %d B, attach %d names %d B, flags %v}",
		len(e.Body), len(e.AttachNames), len(e.AttachText), e.Flags())
}
