// SPDX-License-Identifier: Apache-2.0

package mimepart

import (
	"strings"
	"unicode/utf8"
)

// DecodeWords decodes the RFC 2047 encoded words in a header value and
// returns valid UTF-8. Adjacent encoded words in the same charset are joined
// before charset conversion, so a multibyte character split across two
// words survives (clients do this); white space between encoded words is
// dropped (RFC 2047 §6.2). Raw text outside encoded words is read as UTF-8
// when valid, else as windows-1252. Malformed words are kept as written.
// ok is false when a word named a charset that could not be converted.
func DecodeWords(s string) (string, bool) {
	if !strings.Contains(s, "=?") {
		return fallback([]byte(s)), true
	}
	ok := true
	var out strings.Builder
	var pend []byte // decoded bytes of consecutive words in pendCS
	pendCS := ""
	flush := func() {
		if len(pend) > 0 {
			d, known := DecodeCharset(pendCS, pend)
			ok = ok && known
			out.WriteString(d)
		}
		pend, pendCS = pend[:0], ""
	}
	lastWasWord := false
	for len(s) > 0 {
		i := strings.Index(s, "=?")
		if i < 0 {
			flush()
			out.WriteString(fallback([]byte(s)))
			break
		}
		between := s[:i]
		cset, enc, text, n, valid := parseWord(s[i:])
		if !valid {
			flush()
			out.WriteString(fallback([]byte(s[:i+2])))
			s = s[i+2:]
			lastWasWord = false
			continue
		}
		// RFC 2047 §6.2: white space between adjacent encoded words is
		// dropped.
		if !lastWasWord || strings.TrimSpace(between) != "" {
			flush()
			out.WriteString(fallback([]byte(between)))
		}
		var raw []byte
		if enc == 'B' {
			raw, _ = decodeBase64([]byte(text))
		} else {
			raw = decodeQ(text)
		}
		if l := strings.IndexByte(cset, '*'); l >= 0 { // RFC 2231 §5 language
			cset = cset[:l]
		}
		if enc == 'Q' && transcoded(text) {
			cset = "utf-8"
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
	return out.String(), ok
}

// transcoded reports whether the text of a Q word holds raw 8-bit bytes
// (not allowed by RFC 2047 §5) that are valid UTF-8: a gateway converted the
// header to UTF-8 without re-encoding the word, as readpst does with the
// transport headers of a PST. Such a word is read as UTF-8, whatever charset
// it names; raw 8-bit bytes that are not UTF-8 are in the named charset.
func transcoded(text string) bool {
	for i := 0; i < len(text); i++ {
		if text[i] >= 0x80 {
			return utf8.ValidString(text)
		}
	}
	return false
}

// parseWord parses "=?charset?E?text?=" at the start of s; n is its length.
func parseWord(s string) (cset string, enc byte, text string, n int, ok bool) {
	rest := s[2:]
	q1 := strings.IndexByte(rest, '?')
	if q1 <= 0 || q1 > 75 || q1+2 >= len(rest) || rest[q1+2] != '?' {
		return
	}
	cset = rest[:q1]
	enc = rest[q1+1]
	switch enc {
	case 'b':
		enc = 'B'
	case 'q':
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
	if enc == 'B' && strings.ContainsAny(text, " \t") {
		return
	}
	return cset, enc, text, 2 + q1 + 3 + end + 2, true
}

// decodeQ decodes the Q encoding (RFC 2047 §4.2): "_" is a space, =XX a
// byte; any other "=" is kept.
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
