// SPDX-License-Identifier: Apache-2.0

package web

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/mimepart"
	"github.com/sealmail/sealmail/reader"
)

// Bounds of a message page. The reader hands over the whole original (it
// is needed byte-exact for the download); what the page parses of it is
// bounded: the parts walked, and the text and HTML shown.
const (
	// maxShown caps the bytes of the text body shown, and of the HTML body
	// rendered, each (decoded, before the charset). A longer body is cut
	// there and the page says so; the .eml has it all.
	maxShown = 1 << 20
	// maxParts caps the MIME parts walked (mimepart counts every part,
	// nested messages included); maxDepth their nesting.
	maxParts = 500
	maxDepth = 16
)

// bodyCSP is the policy of the HTML body's own response, shown in the
// message page's sandboxed frame: no script, no request anywhere (images
// only as data: URLs, styles only inline, no fonts, no forms, no
// <base>), framable by the reader's own pages only, and sandboxed even
// when opened on its own: an opaque origin without scripts, forms or
// plugins; a link clicked opens in a new tab, outside the sandbox.
const bodyCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; " +
	"base-uri 'none'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"

// messageCSP is the message page's policy: the page's, and its frame
// may show the reader's own responses (the body, under bodyCSP).
const messageCSP = pageCSP + "; frame-src 'self'"

// downloadCSP is the policy of downloads (an attachment, the .eml), should
// a browser show one instead of saving it.
const downloadCSP = "default-src 'none'; frame-ancestors 'none'; sandbox"

// messageView is the message page's data.
type messageView struct {
	ID   sealmail.MessageID
	Size int64
	// Received is when the receiver first stored it.
	Received time.Time
	// The header fields shown, decoded.
	From, To, Cc, Date, Subject, MessageID string
	Receipts                               []receiptView
	// Text is the text body (the inline text/plain parts); HTML whether
	// there is an HTML body (shown in the frame). Cut: a body was longer
	// than maxShown; Partial: the message has more parts than were walked.
	Text              string
	HTML              bool
	TextCut, HTMLCut  bool
	Partial           bool
	Attachments       []attachmentView
	BodyURL, RawURL   string
	AttachmentsPrefix string
}

// receiptView is one receipt of the message: how one copy reached the
// archive.
type receiptView struct {
	N int
	// None: no envelope was stored with it.
	None bool
	sealmail.Envelope
	// Claimed is an envelope the message claimed that was not trusted.
	Claimed bool
}

// attachmentView is one attachment as listed: its number in the URL.
type attachmentView struct {
	N          int
	Name, Type string
	Size       int64
}

// mailParts are the parts of a message the page shows: the inline text
// parts, the first inline HTML part, and the attachments (every other
// leaf part, nested messages as a whole).
type mailParts struct {
	text        []*mimepart.Part
	html        *mimepart.Part
	attachments []attachment
	partial     bool
}

// attachment is an attachment part, its (decoded) name and type.
type attachment struct {
	p          *mimepart.Part
	name, kind string
}

// partsOf walks the message in raw, within maxParts and maxDepth.
func partsOf(raw []byte) (*mimepart.Part, *mailParts) {
	root := mimepart.Parse(raw, mimepart.Options{MaxParts: maxParts, MaxDepth: maxDepth})
	m := &mailParts{}
	m.walk(root, "text/plain")
	m.partial = root.Truncated()
	return root, m
}

func (m *mailParts) walk(p *mimepart.Part, def string) {
	ct := p.ContentType
	if ct == "" {
		ct = def
	}
	disp, dparams, _ := mimepart.ParseParams(p.Header.Get("content-disposition"))
	name := dparams["filename"]
	if name == "" {
		name = p.Params["name"]
	}
	name, _ = mimepart.DecodeWords(strings.TrimSpace(name))
	if strings.HasPrefix(ct, "multipart/") && p.IsMultipart() {
		child := "text/plain"
		if ct == "multipart/digest" {
			child = "message/rfc822"
		}
		for _, c := range p.Parts() {
			m.walk(c, child)
		}
		return
	}
	// As the index decides what an attachment is (has:attachment).
	inline := disp != "attachment" && (name == "" || disp == "inline" || ct == "text/plain" || ct == "text/html")
	switch {
	case inline && (ct == "text/plain" || strings.HasPrefix(ct, "multipart/")):
		m.text = append(m.text, p) // a multipart without a boundary reads as text
	case inline && ct == "text/html" && m.html == nil:
		m.html = p
	default:
		m.attachments = append(m.attachments, attachment{p: p, name: name, kind: ct})
	}
}

// decoded is part p's body without its transfer encoding, in UTF-8, cut
// at maxShown bytes (cut reports that). The encoded body is cut first, so
// that a huge part is never decoded whole.
func decoded(p *mimepart.Part) (s string, cut bool) {
	body := p.Body()
	if len(body) > 2*maxShown { // base64 and quoted-printable at most double
		body, cut = body[:2*maxShown], true
	}
	data, _ := mimepart.DecodeTransfer(p.Header.Get("content-transfer-encoding"), body)
	if len(data) > maxShown {
		data, cut = data[:maxShown], true
	}
	s, _ = mimepart.DecodeCharset(p.Params["charset"], data)
	return s, cut
}

// readMessage reads the message of the request's path for its caller,
// through the reader (which checks their reach and audits the read). It
// answers the request itself when it cannot.
func (u *ui) readMessage(w http.ResponseWriter, r *http.Request) (*reader.Message, bool) {
	if !u.haveReader(w, r) {
		return nil, false
	}
	id, err := sealmail.ParseMessageID(r.PathValue("id"))
	if err != nil {
		u.render(w, r, http.StatusNotFound, "nomessage", false)
		return nil, false
	}
	m, err := u.opts.Reader.Read(r.Context(), reader.HTTPCaller(r), id)
	switch {
	case err == nil:
		return m, true
	case reader.IsNotFound(err):
		// Outside the caller's reach reads the same: the answer does not
		// tell whether the message exists.
		u.render(w, r, http.StatusNotFound, "nomessage", false)
	case reader.IsLocked(err):
		u.render(w, r, http.StatusServiceUnavailable, "nomessage", true)
	case reader.IsPermission(err):
		u.render(w, r, http.StatusForbidden, "error", problem{Status: http.StatusForbidden, Key: "error.forbidden", Detail: err.Error()})
	default:
		u.fail(w, r, err)
	}
	return nil, false
}

// haveReader answers the request with an error page when the interface
// has no reader (a test of other pages).
func (u *ui) haveReader(w http.ResponseWriter, r *http.Request) bool {
	if u.opts.Reader == nil {
		u.log.Error("page needs the reader, and web.Options has none", "path", r.URL.Path)
		u.render(w, r, http.StatusServiceUnavailable, "error", problem{Status: http.StatusServiceUnavailable, Key: "error.internal"})
		return false
	}
	return true
}

// message is a message's page: headers, envelopes, text body, the HTML
// body in a sandboxed frame, attachments, downloads.
func (u *ui) message(w http.ResponseWriter, r *http.Request) {
	m, ok := u.readMessage(w, r)
	if !ok {
		return
	}
	u.render(w, r, http.StatusOK, "message", messageViewOf(m))
}

// messageViewOf is what the message page shows of m, within the bounds.
func messageViewOf(m *reader.Message) *messageView {
	root, parts := partsOf(m.Original)
	h := root.Header
	field := func(name string) string {
		s, _ := mimepart.DecodeWords(strings.Join(h.Values(name), ", "))
		return s
	}
	base := pathMessages + "/" + m.ID.String()
	mv := &messageView{ID: m.ID, Size: int64(len(m.Original)), Received: m.Received,
		From: field("from"), To: field("to"), Cc: field("cc"), Date: field("date"), Subject: field("subject"), MessageID: field("message-id"),
		HTML: parts.html != nil, Partial: parts.partial, BodyURL: base + "/body", RawURL: base + "/raw", AttachmentsPrefix: base + "/attachments/"}
	for i, rc := range m.Receipts {
		rv := receiptView{N: i + 1, None: rc.Envelope == nil}
		if rc.Envelope != nil {
			rv.Envelope = *rc.Envelope
		}
		mv.Receipts = append(mv.Receipts, rv)
		if rc.Envelope != nil && rc.Envelope.Untrusted != nil {
			mv.Receipts = append(mv.Receipts, receiptView{N: i + 1, Envelope: *rc.Envelope.Untrusted, Claimed: true})
		}
	}
	var text strings.Builder
	for _, p := range parts.text {
		if text.Len() >= maxShown {
			mv.TextCut = true
			break
		}
		s, cut := decoded(p)
		if text.Len() > 0 {
			text.WriteString("\n\n")
		}
		text.WriteString(s)
		mv.TextCut = mv.TextCut || cut
	}
	mv.Text = text.String()
	if parts.html != nil {
		_, mv.HTMLCut = decoded(parts.html)
	}
	for i, a := range parts.attachments {
		data, _ := mimepart.DecodeTransfer(a.p.Header.Get("content-transfer-encoding"), a.p.Body())
		mv.Attachments = append(mv.Attachments, attachmentView{N: i + 1, Name: a.name, Type: a.kind, Size: int64(len(data))})
	}
	return mv

}

// messageBody is the HTML body, sanitised, as its own document under
// bodyCSP, for the message page's frame.
func (u *ui) messageBody(w http.ResponseWriter, r *http.Request) {
	m, ok := u.readMessage(w, r)
	if !ok {
		return
	}
	_, parts := partsOf(m.Original)
	if parts.html == nil {
		u.render(w, r, http.StatusNotFound, "nomessage", false)
		return
	}
	s, _ := decoded(parts.html)
	out := sanitizeHTML(s)
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", bodyCSP)
	hd.Set("X-Frame-Options", "SAMEORIGIN")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out) // the client went away
}

// messageRaw is the original, byte-exact, as a download.
func (u *ui) messageRaw(w http.ResponseWriter, r *http.Request) {
	m, ok := u.readMessage(w, r)
	if !ok {
		return
	}
	download(w, m.ID.String()+".eml", "message/rfc822", m.Original)
}

// attachment is attachment N (1-based, as the page lists them) of a
// message, decoded, as a download.
func (u *ui) attachment(w http.ResponseWriter, r *http.Request) {
	m, ok := u.readMessage(w, r)
	if !ok {
		return
	}
	_, parts := partsOf(m.Original)
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 || n > len(parts.attachments) {
		u.render(w, r, http.StatusNotFound, "nomessage", false)
		return
	}
	a := parts.attachments[n-1]
	data, _ := mimepart.DecodeTransfer(a.p.Header.Get("content-transfer-encoding"), a.p.Body())
	name := fileName(a.name)
	if name == "" {
		name = fmt.Sprintf("%s-attachment-%d", m.ID, n)
		if a.kind == "message/rfc822" {
			name += ".eml"
		}
	}
	download(w, name, a.kind, data)
}

// safeTypes are the types a download is sent as; anything else is
// application/octet-stream. None of them runs script when opened.
var safeTypes = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true,
	"application/pdf": true, "text/plain": true, "text/csv": true, "message/rfc822": true,
	"application/zip": true,
}

// download sends data as a file to save, never to show: attachment
// disposition, no sniffing, no store, a sandboxing policy.
func download(w http.ResponseWriter, name, kind string, data []byte) {
	if !safeTypes[kind] {
		kind = "application/octet-stream"
	}
	hd := w.Header()
	hd.Set("Content-Type", kind)
	disp := mime.FormatMediaType("attachment", map[string]string{"filename": name})
	if disp == "" {
		disp = "attachment"
	}
	hd.Set("Content-Disposition", disp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", downloadCSP)
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data) // the client went away
}

// fileName is an attachment's name as a file name to save: its last path
// element, without control characters, at most 200 bytes; "" if nothing
// is left.
func fileName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) || c == '"' {
			return -1
		}
		return c
	}, name)
	name = strings.Trim(name, " .")
	for len(name) > 200 {
		_, n := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-n]
	}
	return name
}
