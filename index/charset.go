// SPDX-License-Identifier: Apache-2.0

package index

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
)

// charsets converts text in a named charset to UTF-8 for one extraction and
// remembers whether some charset was unknown.
type charsets struct {
	unknown bool
}

// quirks maps charset labels that real mail uses but that the IANA and WHATWG
// tables miss or map to a narrower charset than senders actually use.
var quirks = map[string]encoding.Encoding{
	// GB2312-labelled mail is routinely GBK or GB18030 (a superset).
	"gb2312":         simplifiedchinese.GB18030,
	"gbk":            simplifiedchinese.GB18030,
	"x-gbk":          simplifiedchinese.GB18030,
	"cp936":          simplifiedchinese.GB18030,
	"euc-cn":         simplifiedchinese.GB18030,
	"x-euc-cn":       simplifiedchinese.GB18030,
	"gb18030":        simplifiedchinese.GB18030,
	"chinese":        simplifiedchinese.GB18030,
	"big5":           traditionalchinese.Big5,
	"x-big5":         traditionalchinese.Big5,
	"big5-hkscs":     traditionalchinese.Big5,
	"cp950":          traditionalchinese.Big5,
	"shift_jis":      japanese.ShiftJIS,
	"shift-jis":      japanese.ShiftJIS,
	"sjis":           japanese.ShiftJIS,
	"x-sjis":         japanese.ShiftJIS,
	"cp932":          japanese.ShiftJIS,
	"windows-31j":    japanese.ShiftJIS,
	"iso-2022-jp":    japanese.ISO2022JP,
	"euc-jp":         japanese.EUCJP,
	"x-euc-jp":       japanese.EUCJP,
	"ks_c_5601-1987": korean.EUCKR,
	"ks_c_5601":      korean.EUCKR,
	"euc-kr":         korean.EUCKR,
	"cp949":          korean.EUCKR,
	// Microsoft's "unicode" is UTF-16LE; RFC 2781 says unmarked UTF-16 is BE.
	"unicode":        unicode.UTF16(unicode.LittleEndian, unicode.UseBOM),
	"utf-16":         unicode.UTF16(unicode.BigEndian, unicode.UseBOM),
	"utf-16le":       unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM),
	"utf-16be":       unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM),
	"iso-8859-8-i":   charmap.ISO8859_8,
	"iso-8859-6-i":   charmap.ISO8859_6,
	"x-mac-cyrillic": charmap.MacintoshCyrillic,
	"koi8-r":         charmap.KOI8R,
	"koi8-u":         charmap.KOI8U,
	"latin1":         charmap.Windows1252,
	"iso-8859-1":     charmap.Windows1252, // WHATWG: senders mean windows-1252
}

// decode converts raw in charset name to UTF-8. An empty, ASCII or UTF-8
// label takes the bytes as UTF-8 when valid and as windows-1252 otherwise
// (undeclared 8-bit text). An unknown label is treated the same way and
// recorded in c.unknown.
func (c *charsets) decode(name string, raw []byte) string {
	s := c.decodeRaw(name, raw)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

func (c *charsets) decodeRaw(name string, raw []byte) string {
	name = strings.ToLower(strings.Trim(strings.TrimSpace(name), `"'`))
	switch name {
	case "", "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "default", "x-unknown":
		return fallback(raw)
	case "utf-7", "unicode-1-1-utf-7", "x-utf-7":
		return decodeUTF7(raw)
	}
	if enc, ok := quirks[name]; ok {
		return convert(enc, raw)
	}
	r, err := charset.Reader(name, bytes.NewReader(raw))
	if err != nil {
		c.unknown = true
		return fallback(raw)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		c.unknown = true
	}
	return string(bytes.ToValidUTF8(out, []byte("\uFFFD")))
}

func convert(enc encoding.Encoding, raw []byte) string {
	out, err := enc.NewDecoder().Bytes(raw)
	if err != nil {
		// x/text decoders replace invalid input; an error here means the
		// transformer gave up. Keep what is readable.
		return fallback(raw)
	}
	return string(out)
}

// fallback reads raw as UTF-8 if valid, else as windows-1252.
func fallback(raw []byte) string {
	if utf8.Valid(raw) {
		return string(raw)
	}
	out, err := charmap.Windows1252.NewDecoder().Bytes(raw)
	if err != nil {
		return string(bytes.ToValidUTF8(raw, []byte("\uFFFD")))
	}
	return string(out)
}
