// SPDX-License-Identifier: Apache-2.0

package pst

import (
	"fmt"
	"mime"
	"strings"
	"time"

	_ "github.com/emersion/go-message/charset" // charsets for the display names gomail decodes
	gomail "github.com/emersion/go-message/mail"

	"github.com/sealmail/sealmail/mimepart"
)

// Bounds on the MIME structure followed: attached messages and multiparts
// nested deeper than maxNesting are kept as attachments, undecoded; parts
// past maxParts (far beyond real mail) are left out.
const (
	maxNesting = 10
	maxParts   = 100000
)

// address is a display name and an e-mail address.
type address struct {
	name  string
	email string
}

// mailMsg is what the writer takes from one RFC 5322 message. Every string
// is valid UTF-8.
type mailMsg struct {
	rawHeaders string
	subject    string
	from       *address
	sender     *address
	to, cc     []address
	bcc        []address
	date       time.Time
	messageID  string
	inReplyTo  string
	references string
	text       string
	html       []byte // UTF-8
	atts       []attachment
	rawSize    int
}

type attachment struct {
	filename  string
	mimeType  string
	contentID string
	inline    bool
	data      []byte
	msg       *mailMsg // set for message/rfc822 parts
}

// parseMessage extracts what a PST message needs from raw. It never fails:
// whatever cannot be decoded is kept as it is (and the raw header block is
// always kept).
func parseMessage(raw []byte) *mailMsg {
	return fromPart(mimepart.Parse(raw, mimepart.Options{MaxDepth: maxNesting, MaxParts: maxParts}))
}

// fromPart builds the message of p, a message part.
func fromPart(p *mimepart.Part) *mailMsg {
	raw := p.Raw()
	m := &mailMsg{rawSize: len(raw)}
	h := p.Header
	m.rawHeaders = toUTF8(p.HeaderBytes(), "")
	m.subject = headerText(h, "Subject")
	m.from = firstAddr(addrList(h, "From"))
	m.sender = firstAddr(addrList(h, "Sender"))
	m.to = addrList(h, "To")
	m.cc = addrList(h, "Cc")
	m.bcc = addrList(h, "Bcc")
	m.date, _ = mimepart.ParseDate(h.Get("Date"))
	m.messageID = cleanHeader(h.Get("Message-Id"))
	m.inReplyTo = cleanHeader(h.Get("In-Reply-To"))
	m.references = cleanHeader(h.Get("References"))
	m.walk(p)
	return m
}

func cleanHeader(s string) string {
	return strings.Join(strings.Fields(toUTF8([]byte(s), "")), " ")
}

func firstAddr(l []address) *address {
	if len(l) == 0 {
		return nil
	}
	return &l[0]
}

func headerText(h mimepart.Header, k string) string {
	return decodeWords(h.Get(k))
}

// addrList parses an address list with go-message (RFC 5322 §3.4, encoded
// display names), falling back to splitting on commas.
func addrList(h mimepart.Header, k string) []address {
	v := h.Get(k)
	if v == "" {
		return nil
	}
	var out []address
	if l, err := gomail.ParseAddressList(v); err == nil {
		for _, a := range l {
			out = append(out, address{name: strings.TrimSpace(toUTF8([]byte(a.Name), "")), email: strings.TrimSpace(toUTF8([]byte(a.Address), ""))})
		}
		return out
	}
	// lenient fallback: split on commas, take <...> or the bare word with '@'
	raw := headerText(h, k)
	for part := range strings.SplitSeq(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a := address{}
		if i, j := strings.LastIndex(part, "<"), strings.LastIndex(part, ">"); i >= 0 && j > i {
			a.email = strings.TrimSpace(part[i+1 : j])
			a.name = strings.Trim(strings.TrimSpace(part[:i]), `"`)
		} else {
			a.email = part
		}
		out = append(out, a)
	}
	return out
}

// toUTF8 converts b from the named charset (or, when unknown, from UTF-8
// falling back to Windows-1252) into valid UTF-8.
func toUTF8(b []byte, cs string) string {
	s, _ := mimepart.DecodeCharset(cs, b)
	return s
}

// walk handles one MIME part.
func (m *mailMsg) walk(p *mimepart.Part) {
	ct, params := p.ContentType, p.Params
	if ct == "" {
		ct = "text/plain"
	}
	h := p.Header
	disp, dparams, _ := mimepart.ParseParams(h.Get("Content-Disposition"))
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	filename = safeFilename(decodeWords(filename))

	if strings.HasPrefix(ct, "multipart/") && p.Depth < maxNesting && p.IsMultipart() {
		for _, c := range p.Parts() {
			m.walk(c)
		}
		return
	}
	data, _ := mimepart.DecodeTransfer(h.Get("Content-Transfer-Encoding"), p.Body())
	isAtt := disp == "attachment" || filename != ""
	switch {
	case ct == "message/rfc822" || ct == "message/global":
		a := attachment{filename: filename, mimeType: ct, inline: false}
		var nested *mimepart.Part
		if p.Depth < maxNesting {
			nested = p.Nested(data)
		}
		if nested != nil {
			a.msg = fromPart(nested)
			if a.filename == "" {
				a.filename = a.msg.subject
			}
		} else {
			a.data = data
		}
		m.atts = append(m.atts, a)
		return
	case ct == "text/plain" && !isAtt:
		s := toUTF8(data, params["charset"])
		if m.text != "" {
			m.text += "\n"
		}
		m.text += s
		return
	case ct == "text/html" && !isAtt && m.html == nil:
		m.html = []byte(toUTF8(data, params["charset"]))
		return
	}
	if filename == "" {
		filename = fmt.Sprintf("attachment%d%s", len(m.atts)+1, extFor(ct))
	}
	m.atts = append(m.atts, attachment{
		filename:  filename,
		mimeType:  ct,
		contentID: strings.Trim(strings.TrimSpace(h.Get("Content-Id")), "<>"),
		inline:    disp == "inline",
		data:      data,
	})
}

func extFor(ct string) string {
	if ct == "application/octet-stream" {
		return ".bin"
	}
	if exts, err := mime.ExtensionsByType(ct); err == nil && len(exts) > 0 {
		return exts[0]
	}
	return ".bin"
}

func decodeWords(s string) string {
	d, _ := mimepart.DecodeWords(s)
	return strings.TrimSpace(d)
}

// safeFilename reduces an attachment file name to its last path element and
// drops control characters, so that no reader writes outside its target
// directory.
func safeFilename(s string) string {
	if i := strings.LastIndexAny(s, "/\\"); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7F {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "." || s == ".." {
		return ""
	}
	return s
}
