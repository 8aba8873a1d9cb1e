// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"regexp"
	"strings"

	"github.com/emersion/go-message/charset"
)

// This file is a small MIME scanner that works on byte offsets into the DATA
// the message arrived with. It never copies or re-serialises the message: the
// original is handed back as a subslice (research doc §5.1 "Keep raw bytes;
// parse alongside"). It accepts CRLF and bare LF line endings.

// field is one header field: the name as written and the unfolded value with
// surrounding white space removed.
type field struct {
	name, value string
}

// header is an ordered list of header fields.
type header []field

// get returns the value of the first field named name (case-insensitive) and
// whether there is one. An empty value (X-MS-Journal-Report:) is present.
func (h header) get(name string) (string, bool) {
	for _, f := range h {
		if strings.EqualFold(f.name, name) {
			return f.value, true
		}
	}
	return "", false
}

// values returns the values of every field named name, in order.
func (h header) values(name string) []string {
	var out []string
	for _, f := range h {
		if strings.EqualFold(f.name, name) {
			out = append(out, f.value)
		}
	}
	return out
}

// entity is one MIME entity located in data: its header and the byte range of
// its body.
type entity struct {
	start, end int // the whole entity, header included
	bodyStart  int // first byte of the body; == end when there is no body
	header     header
	// noBlankLine says the header block was not ended by an empty line, so
	// the entity is header only (truncated or garbage input).
	noBlankLine bool
}

func (e entity) body(data []byte) []byte { return data[e.bodyStart:e.end] }

// maxHeaderFields bounds the work spent on one header block; the rest is
// still part of the entity's bytes, it is only not interpreted.
const maxHeaderFields = 2000

// parseEntity reads the header block that starts at data[start] and ends at
// the first empty line (RFC 5322 §2.1). Lines that are neither fields nor
// continuations are skipped: Parse must accept anything.
func parseEntity(data []byte, start, end int) entity {
	e := entity{start: start, end: end, bodyStart: end, noBlankLine: true}
	var cur *field
	var curVal []byte
	flush := func() {
		if cur != nil {
			cur.value = strings.TrimSpace(string(curVal))
			e.header = append(e.header, *cur)
			cur, curVal = nil, nil
		}
	}
	for i := start; i < end; {
		j := bytes.IndexByte(data[i:end], '\n')
		next := end
		lineEnd := end
		if j >= 0 {
			lineEnd = i + j
			next = lineEnd + 1
		}
		line := data[i:lineEnd]
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			if j >= 0 || lineEnd < end {
				flush()
				e.bodyStart = next
				e.noBlankLine = false
				return e
			}
			break
		}
		switch {
		case line[0] == ' ' || line[0] == '\t':
			// RFC 5322 §2.2.3: unfolding removes the line break only.
			if cur != nil && len(curVal) < 1<<20 {
				curVal = append(curVal, line...)
			}
		default:
			flush()
			c := bytes.IndexByte(line, ':')
			if c <= 0 || len(e.header) >= maxHeaderFields {
				break // not a field: skip it
			}
			name := strings.TrimSpace(string(line[:c]))
			if name == "" || strings.ContainsAny(name, " \t") {
				break
			}
			cur = &field{name: name}
			curVal = append([]byte(nil), line[c+1:]...)
		}
		i = next
	}
	flush()
	return e
}

var boundaryParam = regexp.MustCompile(`(?i)\bboundary\s*=\s*(?:"([^"]*)"|([^;\s"]+))`)

// mediaType returns the lower-cased media type of an entity and its
// parameters. A missing Content-Type is text/plain (RFC 2045 §5.2). It falls
// back to a lenient reading when mime.ParseMediaType rejects the value, so a
// sloppy parameter does not hide a boundary.
func mediaType(h header) (string, map[string]string) {
	v, ok := h.get("Content-Type")
	if !ok || strings.TrimSpace(v) == "" {
		return "text/plain", map[string]string{}
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt == "" {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(v, ";", 2)[0]))
		if params == nil {
			params = map[string]string{}
		}
	}
	if _, ok := params["boundary"]; !ok {
		if m := boundaryParam.FindStringSubmatch(v); m != nil {
			params["boundary"] = m[1] + m[2]
		}
	}
	return mt, params
}

// span is the byte range of one body part (RFC 2046 §5.1.1): from the first
// byte after its delimiter line up to, not including, the line break that
// precedes the next delimiter.
type span struct {
	start, end int
	// terminated says another delimiter (next part or close) follows, so
	// the part is known to be complete.
	terminated bool
}

// maxParts bounds the number of body parts looked at in one multipart.
const maxParts = 1000

// splitMultipart finds the body parts of the multipart body data[start:end]
// with the given boundary. closed reports whether the close delimiter was
// seen. A delimiter line is "--" boundary ["--"] *LWSP at the start of a line
// (RFC 2046 §5.1.1); a line where the boundary is followed by anything else is
// part content.
func splitMultipart(data []byte, start, end int, boundary string) (parts []span, closed bool) {
	if boundary == "" {
		return nil, false
	}
	delim := []byte("--" + boundary)
	partStart := -1 // -1 while in the preamble
	for pos := start; pos < end; {
		k := bytes.Index(data[pos:end], delim)
		if k < 0 {
			break
		}
		idx := pos + k
		pos = idx + len(delim)
		if idx > start && data[idx-1] != '\n' {
			continue
		}
		q := idx + len(delim)
		isClose := q+1 < end && data[q] == '-' && data[q+1] == '-'
		if isClose {
			q += 2
		}
		for q < end && (data[q] == ' ' || data[q] == '\t') {
			q++
		}
		lineEnd := -1
		switch {
		case q == end:
			lineEnd = end
		case data[q] == '\n':
			lineEnd = q + 1
		case data[q] == '\r' && q+1 < end && data[q+1] == '\n':
			lineEnd = q + 2
		case data[q] == '\r' && q+1 == end:
			lineEnd = end
		}
		if lineEnd < 0 {
			continue // the boundary is a prefix of a content line
		}
		if partStart >= 0 {
			// The line break before the delimiter belongs to it.
			e := idx
			if e > partStart && data[e-1] == '\n' {
				e--
				if e > partStart && data[e-1] == '\r' {
					e--
				}
			}
			parts = append(parts, span{start: partStart, end: e, terminated: true})
			if len(parts) >= maxParts {
				return parts, false
			}
		}
		if isClose {
			return parts, true
		}
		partStart = lineEnd
		pos = lineEnd
	}
	if partStart >= 0 {
		parts = append(parts, span{start: partStart, end: end})
	}
	return parts, false
}

// decodeText undoes the Content-Transfer-Encoding and the charset of a text
// part and returns it as a string. It is best effort: on an error it returns
// what it has and a note for the warnings.
func decodeText(h header, body []byte) (string, string) {
	var note string
	cte, _ := h.get("Content-Transfer-Encoding")
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		dec, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			// Error texts may quote input bytes; warnings carry none.
			note = "invalid quoted-printable, decoded up to the error"
		}
		body = dec
	case "base64":
		dec, err := decodeBase64(body)
		if err != nil {
			note = "invalid base64, decoded up to the error"
		}
		body = dec
	}
	_, params := mediaType(h)
	cs := strings.ToLower(strings.TrimSpace(params["charset"]))
	switch cs {
	case "", "us-ascii", "ascii", "utf-8", "utf8":
	default:
		r, err := charset.Reader(cs, bytes.NewReader(body))
		if err != nil {
			if note == "" {
				note = "unknown charset, read as UTF-8"
			}
			break
		}
		dec, err := io.ReadAll(r)
		if err != nil {
			if note == "" {
				note = "invalid " + cs + " text, read as UTF-8"
			}
			break
		}
		body = dec
	}
	return string(body), note
}

// decodeBase64 decodes base64 leniently: white space anywhere, padding
// optional. On an error it returns the bytes decoded before it.
func decodeBase64(b []byte) ([]byte, error) {
	clean := make([]byte, 0, len(b))
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			clean = append(clean, c)
		}
	}
	clean = bytes.TrimRight(clean, "=")
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, err := base64.RawStdEncoding.Decode(out, clean)
	return out[:n], err
}
