// SPDX-License-Identifier: Apache-2.0

package mimepart

import "strings"

// maxContinuations bounds the RFC 2231 continuations read of one parameter.
const maxContinuations = 1000

// ParseParams parses a Content-Type or Content-Disposition value leniently:
// the lower-case value before the first ";" (or white space, or a comment)
// and its parameters, with lower-case names (RFC 2045 §5.1). A missing ";"
// before a parameter and a comment after an unquoted value are tolerated; a
// quoted value without its closing quote takes the rest of the field; of
// duplicate parameters the first wins. RFC 2231 continuations and charsets
// are decoded to UTF-8. Other values keep their raw bytes: RFC 2047 words
// inside quoted values, as many clients send them, and 8-bit text are the
// caller's to decode ([DecodeWords]). ok is false when a parameter named a
// charset that could not be converted. params is never nil.
func ParseParams(s string) (value string, params map[string]string, ok bool) {
	typ, rest, _ := strings.Cut(s, ";")
	typ = strings.TrimSpace(typ)
	if i := strings.IndexAny(typ, " \t("); i >= 0 {
		// A comment after the value (RFC 2045 §5.1 allows them), or a
		// parameter without its ";" ("multipart/mixed boundary=x").
		if extra := typ[i:]; strings.Contains(extra, "=") {
			rest = extra + ";" + rest
		}
		typ = typ[:i]
	}
	typ = strings.ToLower(typ)
	params = map[string]string{}
	ok = true
	if rest == "" {
		return typ, params, ok
	}
	type piece struct {
		val     string
		encoded bool
	}
	var cont map[string]map[int]piece // RFC 2231 continuations
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
			// Quoted string; a backslash escapes one character.
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
			// A trailing comment: charset=us-ascii (Plain Text).
			if k := strings.IndexByte(val, '('); k > 0 && strings.HasSuffix(val, ")") {
				val = strings.TrimSpace(val[:k])
			}
		}
		if key == "" {
			continue
		}
		// RFC 2231 §3-4: name*N*, name*N, name*.
		if star := strings.IndexByte(key, '*'); star >= 0 {
			base, suffix := key[:star], key[star+1:]
			encoded := strings.HasSuffix(suffix, "*") || suffix == ""
			suffix = strings.TrimSuffix(suffix, "*")
			n := 0
			if suffix != "" {
				for _, c := range suffix {
					if c < '0' || c > '9' || n > maxContinuations {
						n = -1
						break
					}
					n = n*10 + int(c-'0')
				}
				if n < 0 {
					continue
				}
			}
			if cont == nil {
				cont = map[string]map[int]piece{}
			}
			if cont[base] == nil {
				cont[base] = map[int]piece{}
			}
			cont[base][n] = piece{val, encoded}
			continue
		}
		if _, dup := params[key]; !dup {
			params[key] = val
		}
	}
	for base, pieces := range cont {
		var raw []byte
		charset := ""
		for i := 0; i < len(pieces) && i <= maxContinuations; i++ {
			p, found := pieces[i]
			if !found {
				break
			}
			v := p.val
			if p.encoded {
				if i == 0 {
					// RFC 2231 §4: charset'language'value
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
		dec, known := DecodeCharset(charset, raw)
		ok = ok && known
		params[base] = dec
	}
	return typ, params, ok
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
