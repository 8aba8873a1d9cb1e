// SPDX-License-Identifier: Apache-2.0

package mimepart

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// aliases maps charset labels that real mail uses, but that go-message's
// charset tables lack or map to a narrower charset than senders use, to a
// label those tables read as intended.
var aliases = map[string]string{
	// GB2312-labelled mail is routinely GBK or GB18030 (a superset).
	"gb2312":   "gb18030",
	"gbk":      "gb18030",
	"x-gbk":    "gb18030",
	"cp936":    "gb18030",
	"euc-cn":   "gb18030",
	"x-euc-cn": "gb18030",
	"chinese":  "gb18030",

	"x-big5":      "big5",
	"big5-hkscs":  "big5",
	"cp950":       "big5",
	"cp932":       "shift_jis",
	"windows-31j": "shift_jis",
	"sjis":        "shift_jis",
	"x-sjis":      "shift_jis",
	"ks_c_5601":   "euc-kr",
	"cp949":       "euc-kr",

	// WHATWG: senders of ISO-8859-1 mean windows-1252.
	"latin1":     "windows-1252",
	"iso-8859-1": "windows-1252",
}

// DecodeCharset converts raw, text in the charset named label, to valid
// UTF-8. An empty, ASCII or UTF-8 label, and text that is not valid in its
// charset, is read as UTF-8 when valid and as windows-1252 otherwise
// (undeclared 8-bit text). An unknown label is read the same way and ok is
// false.
func DecodeCharset(label string, raw []byte) (s string, ok bool) {
	name := strings.ToLower(strings.Trim(strings.TrimSpace(label), `"'`))
	switch name {
	case "", "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "default", "x-unknown":
		return fallback(raw), true
	case "utf-7", "unicode-1-1-utf-7", "x-utf-7":
		// RFC 2152; not in go-message's tables.
		return strings.ToValidUTF8(decodeUTF7(raw), "\uFFFD"), true
	case "unicode":
		// Microsoft's "unicode" is UTF-16, little-endian unless a BOM
		// says otherwise.
		name = "utf-16le"
		if bytes.HasPrefix(raw, []byte{0xfe, 0xff}) {
			name = "utf-16be"
		}
		raw = bytes.TrimPrefix(bytes.TrimPrefix(raw, []byte{0xfe, 0xff}), []byte{0xff, 0xfe})
	}
	if a, found := aliases[name]; found {
		name = a
	}
	r, err := charset.Reader(name, bytes.NewReader(raw))
	if err != nil {
		return fallback(raw), false
	}
	var out bytes.Buffer
	out.Grow(len(raw) + len(raw)/2)
	if _, err := io.Copy(&out, r); err != nil {
		// x/text decoders replace invalid input; an error means the
		// transformer gave up. Keep what was converted.
		return string(bytes.ToValidUTF8(out.Bytes(), []byte("\uFFFD"))), false
	}
	return string(bytes.ToValidUTF8(out.Bytes(), []byte("\uFFFD"))), true
}

// fallback reads raw as UTF-8 if valid, else as windows-1252.
func fallback(raw []byte) string {
	if utf8.Valid(raw) {
		return string(raw)
	}
	var b strings.Builder
	b.Grow(len(raw) + len(raw)/2)
	for _, c := range raw {
		if c < 0x80 {
			b.WriteByte(c)
		} else {
			b.WriteRune(windows1252[c-0x80])
		}
	}
	return b.String()
}

// windows1252 is the upper half of windows-1252, as x/text's charmap
// decodes it (the five unassigned bytes become U+FFFD).
var windows1252 = [128]rune{
	'\u20AC', '\uFFFD', '\u201A', '\u0192', '\u201E', '\u2026', '\u2020', '\u2021',
	'\u02C6', '\u2030', '\u0160', '\u2039', '\u0152', '\uFFFD', '\u017D', '\uFFFD',
	'\uFFFD', '\u2018', '\u2019', '\u201C', '\u201D', '\u2022', '\u2013', '\u2014',
	'\u02DC', '\u2122', '\u0161', '\u203A', '\u0153', '\uFFFD', '\u017E', '\u0178',
	'\u00A0', '\u00A1', '\u00A2', '\u00A3', '\u00A4', '\u00A5', '\u00A6', '\u00A7',
	'\u00A8', '\u00A9', '\u00AA', '\u00AB', '\u00AC', '\u00AD', '\u00AE', '\u00AF',
	'\u00B0', '\u00B1', '\u00B2', '\u00B3', '\u00B4', '\u00B5', '\u00B6', '\u00B7',
	'\u00B8', '\u00B9', '\u00BA', '\u00BB', '\u00BC', '\u00BD', '\u00BE', '\u00BF',
	'\u00C0', '\u00C1', '\u00C2', '\u00C3', '\u00C4', '\u00C5', '\u00C6', '\u00C7',
	'\u00C8', '\u00C9', '\u00CA', '\u00CB', '\u00CC', '\u00CD', '\u00CE', '\u00CF',
	'\u00D0', '\u00D1', '\u00D2', '\u00D3', '\u00D4', '\u00D5', '\u00D6', '\u00D7',
	'\u00D8', '\u00D9', '\u00DA', '\u00DB', '\u00DC', '\u00DD', '\u00DE', '\u00DF',
	'\u00E0', '\u00E1', '\u00E2', '\u00E3', '\u00E4', '\u00E5', '\u00E6', '\u00E7',
	'\u00E8', '\u00E9', '\u00EA', '\u00EB', '\u00EC', '\u00ED', '\u00EE', '\u00EF',
	'\u00F0', '\u00F1', '\u00F2', '\u00F3', '\u00F4', '\u00F5', '\u00F6', '\u00F7',
	'\u00F8', '\u00F9', '\u00FA', '\u00FB', '\u00FC', '\u00FD', '\u00FE', '\u00FF',
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
		for j < len(in) && isBase64(in[j]) {
			j++
		}
		if j == i+1 {
			if j < len(in) && in[j] == '-' {
				b.WriteByte('+') // "+-" is "+"
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

// isBase64 reports whether c is in the standard base64 alphabet.
func isBase64(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}
