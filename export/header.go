// SPDX-License-Identifier: Apache-2.0

package export

import (
	"bytes"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// maxFieldBytes caps each text field of a manifest row (From, To,
// Subject) so that a pathological header cannot bloat the manifest; the
// message digest, not these fields, identifies the message.
const maxFieldBytes = 2048

// headerFields returns the unfolded value of the first occurrence of each
// of the named fields (lower-case names) in the header section of raw. It
// accepts CRLF and bare LF line ends, skips lines that are not fields (such
// as a leading mbox "From " line), and stops at the first empty line.
func headerFields(raw []byte, names ...string) map[string]string {
	out := make(map[string]string, len(names))
	want := func(n string) bool {
		for _, w := range names {
			if w == n {
				return true
			}
		}
		return false
	}
	cur := ""    // field being unfolded, "" if none or not wanted
	var b []byte // its value so far
	flush := func() {
		if cur != "" {
			if _, dup := out[cur]; !dup {
				out[cur] = string(b)
			}
		}
		cur, b = "", nil
	}
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // RFC 5322 §2.1: an empty line ends the header section
		}
		if line[0] == ' ' || line[0] == '\t' {
			// RFC 5322 §2.2.3: unfolding removes the line break only.
			if cur != "" && len(b) < maxFieldBytes*4 {
				b = append(b, line...)
			}
			continue
		}
		flush()
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			continue
		}
		// RFC 5322 §4.5 (obsolete syntax): white space may precede the colon.
		name := strings.ToLower(string(bytes.TrimRight(line[:i], " \t")))
		if want(name) {
			cur = name
			b = append([]byte(nil), line[i+1:]...)
		}
	}
	flush()
	return out
}

// decodeText decodes RFC 2047 encoded words in a header value, converting
// known charsets to UTF-8, and returns a clean single line: invalid UTF-8
// becomes U+FFFD, control characters become spaces, runs of white space
// collapse, and the result is capped at maxFieldBytes. Undecodable words
// are kept as written.
func decodeText(v string) string {
	dec := mime.WordDecoder{CharsetReader: func(cs string, r io.Reader) (io.Reader, error) {
		return charset.Reader(cs, r)
	}}
	if d, err := dec.DecodeHeader(v); err == nil {
		v = d
	}
	return clean(v)
}

func clean(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	var sb strings.Builder
	space := false
	for _, r := range v {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			space = true
			continue
		}
		if space && sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		space = false
		if sb.Len()+utf8.RuneLen(r) > maxFieldBytes {
			break
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// parseDate parses an RFC 5322 Date header value.
func parseDate(v string) (t time.Time, ok bool) {
	t, err := mail.ParseDate(strings.TrimSpace(v))
	return t, err == nil
}
