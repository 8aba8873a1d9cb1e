// SPDX-License-Identifier: Apache-2.0

package index

import (
	"bytes"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/html"
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
)

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

	Body          string   // text of inline text parts and nested messages
	AttachNames   []string // file names of attachments and named parts
	AttachText    string   // text of text-like attachments
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
	return f
}

// Extract parses a raw RFC 5322 message leniently and returns its text. It
// never fails: whatever cannot be read is skipped and flagged. Work is linear
// in len(raw) and bounded by [MaxTextBytes], [MaxDepth] and [MaxParts].
func Extract(raw []byte) (x *Extracted) {
	w := &walker{x: &Extracted{}}
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
	hdr, body := splitMessage(raw)
	h := parseHeader(hdr)
	x := w.x
	x.Subject = w.words(h.get("subject"))
	x.From = w.all(h["from"])
	x.Sender = w.all(h["sender"])
	x.To = w.all(h["to"])
	x.Cc = w.all(h["cc"])
	x.Bcc = w.all(h["bcc"])
	x.MessageID = cleanMessageID(h.get("message-id"))
	x.Date = parseDate(h.get("date"))
	w.entity(h, body, 0, false, "text/plain")
	x.Body = w.body.String()
	x.AttachText = w.att.String()
	if w.cs.unknown {
		x.DecodeError = true
	}
	return x
}

type walker struct {
	x     *Extracted
	cs    charsets
	parts int
	used  int
	body  strings.Builder
	att   strings.Builder
}

func (w *walker) words(s string) string {
	if s == "" {
		return ""
	}
	return decodeWords(s, &w.cs)
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

// entity indexes one MIME entity. def is the default content type (RFC 2046
// §5.1.5: message/rfc822 inside multipart/digest).
func (w *walker) entity(h header, body []byte, depth int, inAttach bool, def string) {
	if depth > MaxDepth || w.parts >= MaxParts || w.used >= MaxTextBytes {
		w.x.Truncated = true
		return
	}
	w.parts++
	ct, params := mediaType(h.get("content-type"), &w.cs)
	if ct == "" || !strings.Contains(ct, "/") {
		ct = def
	}
	disp, dparams := mediaType(h.get("content-disposition"), &w.cs)
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	name = strings.TrimSpace(w.words(name))

	if strings.HasPrefix(ct, "multipart/") {
		boundary := params["boundary"]
		if boundary == "" {
			// No boundary: read the body as text, as most readers do.
			w.text(&w.body, inAttach, "text/plain", "", body)
			return
		}
		child := "text/plain"
		if ct == "multipart/digest" {
			child = "message/rfc822"
		}
		parts := splitMultipart(body, boundary)
		switch ct {
		case "multipart/signed":
			// RFC 1847 §2.1: the second part is the signature, not an
			// attachment and not text (notmuch skips it too).
			parts = parts[:min(len(parts), 1)]
		case "multipart/encrypted":
			// RFC 1847 §2.2: a control part and ciphertext; nothing to index.
			return
		}
		for _, p := range parts {
			ph, pb := splitMessage(p)
			w.entity(parseHeader(ph), pb, depth+1, inAttach, child)
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
	data := w.decodeCTE(h.get("content-transfer-encoding"), body)
	target := &w.body
	if isAttach || inAttach {
		target = &w.att
	}
	inAttach = inAttach || isAttach
	lname := strings.ToLower(name)
	switch {
	case ct == "message/rfc822" || ct == "message/global" ||
		(isAttach && strings.HasSuffix(lname, ".eml") && !strings.HasPrefix(ct, "text/")):
		nh, nb := splitMessage(data)
		nhp := parseHeader(nh)
		for _, k := range []string{"from", "to", "cc", "subject"} {
			for _, v := range nhp[k] {
				w.add(target, w.words(v))
			}
		}
		w.entity(nhp, nb, depth+1, inAttach, "text/plain")
	case strings.HasPrefix(ct, "text/") || ct == "message/delivery-status" ||
		ct == "message/disposition-notification" || ct == "message/feedback-report" ||
		ct == "application/ics" || (isAttach && textLikeName(name)):
		html := ct == "text/html" || strings.HasSuffix(lname, ".htm") || strings.HasSuffix(lname, ".html")
		kind := "text/plain"
		if html {
			kind = "text/html"
		}
		w.text(target, inAttach, kind, params["charset"], data)
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
	s := w.cs.decode(charset, data)
	if kind == "text/html" {
		s = htmlText(s)
	}
	w.add(target, s)
}

func (w *walker) decodeCTE(cte string, body []byte) []byte {
	cte = strings.ToLower(strings.TrimSpace(cte))
	if i := strings.IndexAny(cte, "; \t"); i >= 0 {
		cte = cte[:i]
	}
	switch cte {
	case "", "7bit", "8bit", "binary", "7-bit", "8-bit", "8bits", "plain", "none", "text":
		return body
	case "base64":
		bad := false
		out := decodeBase64Lenient(body, &bad)
		if bad {
			w.x.DecodeError = true
		}
		return out
	case "quoted-printable":
		return decodeQP(body)
	case "x-uuencode", "uuencode", "x-uue":
		return decodeUU(body)
	}
	// RFC 2045 §6.4: an unknown encoding makes the body opaque; index the
	// raw bytes anyway (they are often plain text) and flag it.
	w.x.DecodeError = true
	return body
}

// decodeUU decodes the first uuencoded file in body ("begin ... end").
func decodeUU(body []byte) []byte {
	var out []byte
	in := false
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		line = bytes.TrimRight(line, "\r")
		if !in {
			in = bytes.HasPrefix(line, []byte("begin "))
			continue
		}
		if bytes.Equal(line, []byte("end")) || len(line) == 0 {
			break
		}
		n := int((line[0] - ' ') & 63)
		line = line[1:]
		var dec []byte
		for i := 0; i < len(line) && len(dec) < n; i += 4 {
			var c [4]byte
			for k := 0; k < 4; k++ {
				if i+k < len(line) {
					c[k] = (line[i+k] - ' ') & 63
				}
			}
			dec = append(dec, c[0]<<2|c[1]>>4, c[1]<<4|c[2]>>2, c[2]<<6|c[3])
		}
		if len(dec) > n {
			dec = dec[:n]
		}
		out = append(out, dec...)
	}
	return out
}

// splitMultipart returns the body parts of a multipart body (RFC 2046
// §5.1.1). A delimiter is "--boundary" at the start of a line followed only
// by optional "--" and whitespace. A missing close delimiter ends the last
// part at the end of the body.
func splitMultipart(b []byte, boundary string) [][]byte {
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1
	i := 0
	for i < len(b) && len(parts) < MaxParts {
		j := bytes.Index(b[i:], delim)
		if j < 0 {
			break
		}
		at := i + j
		after := at + len(delim)
		if at > 0 && b[at-1] != '\n' {
			i = after
			continue
		}
		k := after
		closing := bytes.HasPrefix(b[k:], []byte("--"))
		if closing {
			k += 2
		}
		lineEnd := len(b)
		if e := bytes.IndexByte(b[k:], '\n'); e >= 0 {
			lineEnd = k + e + 1
		}
		if len(bytes.TrimSpace(b[k:lineEnd])) != 0 {
			i = after
			continue
		}
		if start >= 0 {
			end := at
			if end > start && b[end-1] == '\n' {
				end--
				if end > start && b[end-1] == '\r' {
					end--
				}
			}
			parts = append(parts, b[start:end])
		}
		if closing {
			return parts
		}
		start = lineEnd
		i = lineEnd
	}
	if start >= 0 && start <= len(b) && len(parts) < MaxParts {
		parts = append(parts, b[start:])
	}
	return parts
}

// inlineTags are HTML elements that do not separate words.
var inlineTags = map[string]bool{
	"a": true, "b": true, "i": true, "u": true, "em": true, "strong": true, "span": true, "font": true,
	"small": true, "big": true, "sub": true, "sup": true, "abbr": true, "code": true, "tt": true,
	"s": true, "strike": true, "mark": true, "q": true, "cite": true, "o:p": true, "wbr": true,
}

// htmlText returns the readable text of an HTML document: text nodes with
// entities decoded, block elements turned into line breaks, without markup,
// scripts or styles. Inline elements do not split words ("wo<b>rd</b>").
func htmlText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	b.Grow(len(s) / 2)
	skip := ""
	sep := func() {
		if n := b.Len(); n > 0 && !strings.HasSuffix(b.String()[n-1:], "\n") {
			b.WriteByte('\n')
		}
	}
	for {
		switch z.Next() {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skip == "" {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "template", "title", "head":
				if skip == "" {
					skip = string(name)
				}
			default:
				if !inlineTags[string(name)] {
					sep()
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if skip != "" && string(name) == skip {
				skip = ""
			} else if skip == "" && !inlineTags[string(name)] {
				sep()
			}
		}
	}
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

// parseDate parses an RFC 5322 date leniently; zero if unreadable.
func parseDate(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if t, err := mail.ParseDate(s); err == nil {
		return t
	}
	// Trailing comments and junk, "(PST)", doubled zones.
	if i := strings.IndexByte(s, '('); i > 0 {
		if t, err := mail.ParseDate(strings.TrimSpace(s[:i])); err == nil {
			return t
		}
	}
	for _, layout := range []string{
		"Mon, 2 Jan 2006 15:04:05 -0700 MST",
		"Mon, 2 Jan 2006 15:04:05 MST",
		"Mon, 2 Jan 2006 15:04 -0700",
		"2 Jan 2006 15:04:05 -0700",
		"Mon Jan 2 15:04:05 2006",
		"Mon Jan 2 15:04:05 MST 2006",
		"Mon, 2 Jan 06 15:04:05 -0700",
		"2006-01-02 15:04:05 -0700",
		time.RFC3339,
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// String summarises e for debugging without message content.
func (e *Extracted) String() string {
	return fmt.Sprintf("extracted{body %d B, attach %d names %d B, flags %v}",
		len(e.Body), len(e.AttachNames), len(e.AttachText), e.Flags())
}
