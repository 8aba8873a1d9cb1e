// SPDX-License-Identifier: Apache-2.0

package pst

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // registers charsets for header and body decoding
	gocharset "github.com/emersion/go-message/charset"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/encoding/charmap"
)

// maxNesting bounds how deep attached messages and multiparts are followed.
const maxNesting = 10

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
func parseMessage(raw []byte, depth int) *mailMsg {
	m := &mailMsg{rawSize: len(raw)}
	hdrBytes, body := splitHeader(raw)
	m.rawHeaders = toUTF8(hdrBytes, "")
	h := readHeader(hdrBytes)
	mh := gomail.Header{Header: message.Header{Header: h}}
	m.subject = headerText(mh.Header, "Subject")
	m.from = firstAddr(addrList(mh, "From"))
	m.sender = firstAddr(addrList(mh, "Sender"))
	m.to = addrList(mh, "To")
	m.cc = addrList(mh, "Cc")
	m.bcc = addrList(mh, "Bcc")
	if d, err := mh.Date(); err == nil {
		m.date = d
	} else if d, err := mail.ParseDate(strings.TrimSpace(h.Get("Date"))); err == nil {
		m.date = d
	}
	m.messageID = cleanHeader(h.Get("Message-Id"))
	m.inReplyTo = cleanHeader(h.Get("In-Reply-To"))
	m.references = cleanHeader(h.Get("References"))
	m.walk(h, body, depth)
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

// splitHeader splits raw at the first empty line. A message without one is
// all header if it looks like a header, else all body.
func splitHeader(raw []byte) (hdr, body []byte) {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			break
		}
		line := raw[i : i+j]
		if len(bytes.TrimRight(line, "\r")) == 0 {
			return raw[:i], raw[i+j+1:]
		}
		i += j + 1
	}
	if i := bytes.IndexByte(raw, ':'); i > 0 && i < 80 && !bytes.ContainsAny(raw[:i], " \t\r\n") {
		return raw, nil
	}
	return nil, raw
}

// readHeader parses a header block leniently: malformed lines are skipped.
func readHeader(hdr []byte) textproto.Header {
	var clean bytes.Buffer
	for line := range bytes.Lines(hdr) {
		t := bytes.TrimRight(line, "\r\n")
		if len(t) == 0 {
			continue
		}
		if t[0] != ' ' && t[0] != '\t' {
			i := bytes.IndexByte(t, ':')
			if i <= 0 || bytes.ContainsAny(t[:i], " \t") && len(bytes.TrimSpace(t[:i])) == 0 {
				continue // not a header field
			}
		} else if clean.Len() == 0 {
			continue
		}
		clean.Write(t)
		clean.WriteString("\r\n")
	}
	clean.WriteString("\r\n")
	h, err := textproto.ReadHeader(bufio.NewReader(&clean))
	if err != nil {
		return textproto.Header{}
	}
	return h
}

func headerText(h message.Header, k string) string {
	v, err := h.Text(k)
	if err != nil || v == "" {
		v = h.Get(k)
	}
	return strings.TrimSpace(toUTF8([]byte(v), ""))
}

func addrList(h gomail.Header, k string) []address {
	var out []address
	if l, err := h.AddressList(k); err == nil {
		for _, a := range l {
			out = append(out, address{name: strings.TrimSpace(toUTF8([]byte(a.Name), "")), email: strings.TrimSpace(toUTF8([]byte(a.Address), ""))})
		}
		return out
	}
	// lenient fallback: split on commas, take <...> or the bare word with '@'
	raw := headerText(h.Header, k)
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
	cs = strings.ToLower(strings.TrimSpace(cs))
	if cs != "" && cs != "utf-8" && cs != "utf8" && cs != "us-ascii" {
		if r, err := gocharset.Reader(cs, bytes.NewReader(b)); err == nil {
			if out, err := io.ReadAll(r); err == nil {
				return strings.ToValidUTF8(string(out), "\uFFFD")
			}
		}
	}
	if utf8.Valid(b) {
		return string(b)
	}
	out, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(out)
}

// decodeTransfer undoes the Content-Transfer-Encoding leniently.
func decodeTransfer(cte string, body []byte) []byte {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		// fast path: well-formed base64 (the decoder skips CR and LF)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
		if n, err := base64.StdEncoding.Decode(out, bytes.TrimSpace(body)); err == nil {
			return out[:n]
		}
		clean := make([]byte, 0, len(body))
		for _, c := range body {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
				clean = append(clean, c)
			}
		}
		if len(clean)%4 == 1 {
			clean = clean[:len(clean)-1]
		}
		out, err := base64.RawStdEncoding.DecodeString(string(clean))
		if err != nil {
			return body
		}
		return out
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil && len(out) == 0 {
			return body
		}
		return out
	}
	return body
}

// walk handles one MIME entity with header h and (still encoded) body.
func (m *mailMsg) walk(h textproto.Header, body []byte, depth int) {
	mh := message.Header{Header: h}
	ct, params, err := mh.ContentType()
	if err != nil || ct == "" {
		ct, params = "text/plain", map[string]string{}
		if v := strings.ToLower(h.Get("Content-Type")); v != "" && !strings.HasPrefix(v, "text/plain") {
			if i := strings.IndexAny(v, "; \t"); i > 0 {
				v = v[:i]
			}
			if strings.Contains(v, "/") {
				ct = v
			}
		}
	}
	ct = strings.ToLower(ct)
	disp, dparams, _ := mh.ContentDisposition()
	disp = strings.ToLower(disp)
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	if filename == "" {
		// mime.ParseMediaType refuses RFC 2231 values in charsets other than
		// UTF-8 and ASCII (filename*=iso-8859-1''Gr%FC%DFe.txt)
		filename = extParam(h.Get("Content-Disposition"), "filename")
		if filename == "" {
			filename = extParam(h.Get("Content-Type"), "name")
		}
	}
	filename = safeFilename(decodeWords(filename))

	if strings.HasPrefix(ct, "multipart/") && depth < maxNesting {
		if b := params["boundary"]; b != "" {
			for _, part := range splitMultipart(body, b) {
				ph, pb := splitHeader(part)
				m.walk(readHeader(ph), pb, depth+1)
			}
			return
		}
	}
	data := decodeTransfer(h.Get("Content-Transfer-Encoding"), body)
	isAtt := disp == "attachment" || filename != ""
	switch {
	case ct == "message/rfc822" || ct == "message/global":
		a := attachment{filename: filename, mimeType: ct, inline: false}
		if depth < maxNesting {
			a.msg = parseMessage(data, depth+1)
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
	dec := mime.WordDecoder{CharsetReader: gocharset.Reader}
	if out, err := dec.DecodeHeader(s); err == nil {
		s = out
	}
	return strings.TrimSpace(toUTF8([]byte(s), ""))
}

// splitMultipart returns the body parts between boundary delimiter lines
// (RFC 2046 5.1.1). A missing close delimiter ends the last part at EOF.
func splitMultipart(body []byte, boundary string) [][]byte {
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1
	for i := 0; i < len(body); {
		j := bytes.IndexByte(body[i:], '\n')
		end := len(body)
		if j >= 0 {
			end = i + j + 1
		}
		line := bytes.TrimRight(body[i:end], " \t\r\n")
		if bytes.HasPrefix(line, delim) {
			rest := line[len(delim):]
			if len(rest) == 0 || bytes.Equal(rest, []byte("--")) {
				if start >= 0 {
					p := body[start:i]
					// the CRLF before the delimiter belongs to the delimiter
					p = bytes.TrimSuffix(p, []byte("\n"))
					p = bytes.TrimSuffix(p, []byte("\r"))
					parts = append(parts, p)
				}
				if len(rest) == 2 {
					return parts
				}
				start = end
			}
		}
		i = end
	}
	if start >= 0 && start < len(body) {
		parts = append(parts, body[start:])
	}
	return parts
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

// extParam extracts parameter key from a header value leniently, including
// RFC 2231 extended (key*=charset'lang'%XX) and continued (key*0*=) forms in
// any charset. It returns "" when the parameter is absent.
func extParam(v, key string) string {
	key = strings.ToLower(key)
	var plain string
	parts := map[int]string{}
	encoded := map[int]bool{}
	for _, p := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.Trim(strings.TrimSpace(val), `"`)
		switch {
		case k == key:
			plain = val
		case k == key+"*":
			parts[0], encoded[0] = val, true
		case strings.HasPrefix(k, key+"*"):
			rest := strings.TrimPrefix(k, key+"*")
			enc := strings.HasSuffix(rest, "*")
			if n, err := strconv.Atoi(strings.TrimSuffix(rest, "*")); err == nil && n >= 0 && n < 100 {
				parts[n], encoded[n] = val, enc
			}
		}
	}
	if len(parts) == 0 {
		return plain
	}
	var raw []byte
	cs := ""
	for i := 0; i < 100; i++ {
		val, ok := parts[i]
		if !ok {
			break
		}
		if encoded[i] {
			if i == 0 {
				if f := strings.SplitN(val, "'", 3); len(f) == 3 {
					cs, val = f[0], f[2]
				}
			}
			raw = append(raw, pctDecode(val)...)
		} else {
			raw = append(raw, val...)
		}
	}
	return toUTF8(raw, cs)
}

func pctDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if b, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				out = append(out, byte(b))
				i += 2
				continue
			}
		}
		out = append(out, s[i])
	}
	return out
}
