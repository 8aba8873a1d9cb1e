// SPDX-License-Identifier: Apache-2.0

package index

import (
	"bytes"
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// header is a parsed, unfolded MIME header: lower-case names to raw values in
// order of appearance. Values keep their original bytes (possibly 8-bit).
type header map[string][]string

func (h header) get(name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// splitMessage splits raw bytes into header and body at the first empty
// line. A leading mbox "From " line is skipped. If the first line does not
// look like a header field, the whole input is body.
func splitMessage(b []byte) (hdr, body []byte) {
	if bytes.HasPrefix(b, []byte("From ")) {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		} else {
			return nil, nil
		}
	}
	// Empty header: the message starts with a blank line.
	if len(b) > 0 && b[0] == '\n' {
		return nil, b[1:]
	}
	if len(b) > 1 && b[0] == '\r' && b[1] == '\n' {
		return nil, b[2:]
	}
	if !looksLikeField(b) {
		return nil, b
	}
	i := 0
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return b, nil
		}
		next := i + j + 1
		if next < len(b) && b[next] == '\n' {
			return b[:next], b[next+1:]
		}
		if next+1 < len(b) && b[next] == '\r' && b[next+1] == '\n' {
			return b[:next], b[next+2:]
		}
		i = next
	}
}

// looksLikeField reports whether b starts with "Name:" where Name is
// printable ASCII without spaces.
func looksLikeField(b []byte) bool {
	for i := 0; i < len(b) && i < 200; i++ {
		c := b[i]
		if c == ':' {
			return i > 0
		}
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return false
}

// parseHeader unfolds and splits header lines. Lines that are neither a
// field nor a continuation are ignored.
func parseHeader(b []byte) header {
	h := header{}
	var name string
	var val []byte
	flush := func() {
		if name != "" {
			h[name] = append(h[name], strings.TrimSpace(string(val)))
		}
		name, val = "", val[:0]
	}
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if name != "" {
				val = append(val, ' ')
				val = append(val, bytes.TrimSpace(line)...)
			}
			continue
		}
		flush()
		c := bytes.IndexByte(line, ':')
		if c <= 0 {
			continue
		}
		n := bytes.TrimSpace(line[:c])
		if len(n) == 0 || bytes.ContainsAny(n, " \t") {
			continue
		}
		name = strings.ToLower(string(n))
		val = append(val[:0], line[c+1:]...)
	}
	flush()
	return h
}

// mediaType parses a Content-Type or Content-Disposition value leniently:
// the lower-case value before ';' and its parameters (RFC 2045 §5.1, RFC
// 2231 continuations and charsets, RFC 2047 words inside quoted values as
// sent by many clients). It never fails; garbage yields what could be read.
func mediaType(s string, cs *charsets) (string, map[string]string) {
	typ, rest, _ := strings.Cut(s, ";")
	typ = strings.ToLower(strings.TrimSpace(typ))
	params := map[string]string{}
	type part struct {
		val     string
		encoded bool
	}
	cont := map[string]map[int]part{} // RFC 2231 continuations
	for len(rest) > 0 {
		rest = strings.TrimLeft(rest, " \t;")
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			break
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			// Quoted string; backslash escapes one character. A missing
			// closing quote takes the rest of the value.
			var b strings.Builder
			i := 1
			for ; i < len(rest); i++ {
				c := rest[i]
				if c == '\\' && i+1 < len(rest) {
					i++
					b.WriteByte(rest[i])
					continue
				}
				if c == '"' {
					break
				}
				b.WriteByte(c)
			}
			val = b.String()
			if i < len(rest) {
				rest = rest[i+1:]
			} else {
				rest = ""
			}
			if j := strings.IndexByte(rest, ';'); j >= 0 {
				rest = rest[j:]
			} else {
				rest = ""
			}
		} else {
			j := strings.IndexByte(rest, ';')
			if j < 0 {
				j = len(rest)
			}
			val = strings.TrimSpace(rest[:j])
			rest = rest[j:]
		}
		if key == "" {
			continue
		}
		// RFC 2231 §3-4: name*N*, name*N, name*.
		if star := strings.IndexByte(key, '*'); star >= 0 {
			base := key[:star]
			suffix := key[star+1:]
			encoded := strings.HasSuffix(suffix, "*") || suffix == ""
			suffix = strings.TrimSuffix(suffix, "*")
			n := 0
			if suffix != "" {
				for _, c := range suffix {
					if c < '0' || c > '9' || n > 1000 {
						n = -1
						break
					}
					n = n*10 + int(c-'0')
				}
				if n < 0 {
					continue
				}
			}
			if cont[base] == nil {
				cont[base] = map[int]part{}
			}
			cont[base][n] = part{val, encoded}
			continue
		}
		if _, dup := params[key]; !dup {
			params[key] = val
		}
	}
	for base, parts := range cont {
		var raw []byte
		charset := ""
		for i := 0; i < len(parts) && i <= 1000; i++ {
			p, ok := parts[i]
			if !ok {
				break
			}
			v := p.val
			if p.encoded {
				if i == 0 {
					// charset'language'value
					if a := strings.IndexByte(v, '\''); a >= 0 {
						if b := strings.IndexByte(v[a+1:], '\''); b >= 0 {
							charset = v[:a]
							v = v[a+1+b+1:]
						}
					}
				}
				raw = append(raw, percentDecode(v)...)
			} else {
				raw = append(raw, v...)
			}
		}
		if len(raw) == 0 {
			continue
		}
		params[base] = cs.decode(charset, raw)
	}
	return typ, params
}

func percentDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if a, ok := unhex(s[i+1]); ok {
				if b, ok := unhex(s[i+2]); ok {
					out = append(out, a<<4|b)
					i += 2
					continue
				}
			}
		}
		out = append(out, s[i])
	}
	return out
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeWords decodes RFC 2047 encoded words in a header value. Adjacent
// encoded words in the same charset are joined before charset conversion, so
// a multibyte character split across two words survives (clients do this).
// Raw 8-bit text outside encoded words is taken as UTF-8 if valid, else
// windows-1252. Malformed words are kept as they are.
func decodeWords(s string, cs *charsets) string {
	if !strings.Contains(s, "=?") {
		return cs.decode("", []byte(s))
	}
	var out strings.Builder
	var pend []byte // decoded bytes of consecutive words in pendCS
	pendCS := ""
	flush := func() {
		if len(pend) > 0 {
			out.WriteString(cs.decode(pendCS, pend))
		}
		pend, pendCS = pend[:0], ""
	}
	lastWasWord := false
	for len(s) > 0 {
		i := strings.Index(s, "=?")
		if i < 0 {
			flush()
			out.WriteString(cs.decode("", []byte(s)))
			break
		}
		between := s[:i]
		cset, enc, text, n, ok := parseWord(s[i:])
		if !ok {
			flush()
			out.WriteString(cs.decode("", []byte(s[:i+2])))
			s = s[i+2:]
			lastWasWord = false
			continue
		}
		// RFC 2047 §6.2: whitespace between adjacent encoded words is dropped.
		if !(lastWasWord && strings.TrimSpace(between) == "") {
			flush()
			out.WriteString(cs.decode("", []byte(between)))
		}
		var raw []byte
		if enc == 'B' {
			raw = decodeBase64Lenient([]byte(text), nil)
		} else {
			raw = decodeQ(text)
		}
		if l := strings.IndexByte(cset, '*'); l >= 0 { // RFC 2231 §5 language
			cset = cset[:l]
		}
		if !strings.EqualFold(cset, pendCS) {
			flush()
			pendCS = cset
		}
		pend = append(pend, raw...)
		s = s[i+n:]
		lastWasWord = true
	}
	flush()
	return out.String()
}

// parseWord parses "=?charset?E?text?=" at the start of s.
func parseWord(s string) (cset string, enc byte, text string, n int, ok bool) {
	rest := s[2:]
	q1 := strings.IndexByte(rest, '?')
	if q1 <= 0 || q1 > 75 || q1+2 >= len(rest) || rest[q1+2] != '?' {
		return
	}
	cset = rest[:q1]
	enc = rest[q1+1]
	if enc == 'b' {
		enc = 'B'
	} else if enc == 'q' {
		enc = 'Q'
	}
	if enc != 'B' && enc != 'Q' {
		return
	}
	body := rest[q1+3:]
	end := strings.Index(body, "?=")
	if end < 0 {
		return
	}
	text = body[:end]
	if strings.ContainsAny(text, " \t") && enc == 'B' {
		return
	}
	return cset, enc, text, 2 + q1 + 3 + end + 2, true
}

func decodeQ(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_':
			out = append(out, ' ')
		case c == '=' && i+2 < len(s):
			a, ok1 := unhex(s[i+1])
			b, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				out = append(out, a<<4|b)
				i += 2
			} else {
				out = append(out, c)
			}
		default:
			out = append(out, c)
		}
	}
	return out
}

var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alpha); i++ {
		t[alpha[i]] = byte(i)
	}
	t['-'] = 62 // URL-safe alphabet, seen in the wild
	t['_'] = 63
	return t
}()

// decodeBase64Lenient decodes base64, skipping characters outside the
// alphabet and stopping at padding of the final quantum. bad, if not nil, is
// set when non-whitespace garbage was skipped.
func decodeBase64Lenient(in []byte, bad *bool) []byte {
	out := make([]byte, 0, len(in)*3/4+3)
	var acc uint32
	bits := 0
	for _, c := range in {
		v := b64[c]
		if v == 0xff {
			if c == '=' {
				// Padding ends the quantum; realign for concatenated encodings.
				acc, bits = 0, 0
				continue
			}
			if bad != nil && c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				*bad = true
			}
			continue
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>uint(bits)))
			acc &= 1<<uint(bits) - 1
		}
	}
	return out
}

// decodeQP decodes quoted-printable leniently (RFC 2045 §6.7): soft line
// breaks are removed, =XX becomes a byte, any other '=' is kept.
func decodeQP(in []byte) []byte {
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		// Soft line break, possibly with trailing whitespace.
		j := i + 1
		for j < len(in) && (in[j] == ' ' || in[j] == '\t') {
			j++
		}
		if j < len(in) && in[j] == '\n' {
			i = j
			continue
		}
		if j+1 < len(in) && in[j] == '\r' && in[j+1] == '\n' {
			i = j + 1
			continue
		}
		if j == len(in) {
			break
		}
		if i+2 < len(in) {
			a, ok1 := unhex(in[i+1])
			b, ok2 := unhex(in[i+2])
			if ok1 && ok2 {
				out = append(out, a<<4|b)
				i += 2
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// decodeUTF7 decodes RFC 2152 UTF-7. Invalid sequences are kept literally.
func decodeUTF7(in []byte) string {
	var b strings.Builder
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '+' {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(in) && b64[in[j]] != 0xff && in[j] != '-' && in[j] != '_' {
			j++
		}
		if j == i+1 {
			if j < len(in) && in[j] == '-' {
				b.WriteByte('+')
				i = j
				continue
			}
			b.WriteByte('+')
			continue
		}
		seg := in[i+1 : j]
		if len(seg)%4 == 1 {
			seg = seg[:len(seg)-1]
		}
		raw, err := base64.RawStdEncoding.DecodeString(string(seg))
		if err != nil {
			b.Write(in[i:j])
			i = j - 1
			continue
		}
		for k := 0; k+1 < len(raw); k += 2 {
			r := rune(raw[k])<<8 | rune(raw[k+1])
			if r >= 0xd800 && r < 0xdc00 && k+3 < len(raw) {
				r2 := rune(raw[k+2])<<8 | rune(raw[k+3])
				if r2 >= 0xdc00 && r2 < 0xe000 {
					r = 0x10000 + (r-0xd800)<<10 + (r2 - 0xdc00)
					k += 2
				}
			}
			if !utf8.ValidRune(r) {
				r = utf8.RuneError
			}
			b.WriteRune(r)
		}
		if j < len(in) && in[j] == '-' {
			i = j
		} else {
			i = j - 1
		}
	}
	return b.String()
}
