// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"strings"
	"unicode/utf16"
)

// rtf writes the text of an RTF document.
func (j *job) rtf(data []byte) {
	s, ok := rtfText(data, j.lim.MaxTextBytes-j.out.Len())
	j.write(s)
	if !ok {
		j.truncated = true
	}
}

// rtfSkip lists destinations whose content is not text (RTF 1.9.1 spec).
// Groups starting with \* are skipped as well; of those, \*\htmltag holds
// the markup of Outlook's encapsulated HTML, whose text is outside it.
var rtfSkip = map[string]bool{
	"fonttbl": true, "colortbl": true, "stylesheet": true, "listtable": true, "listoverridetable": true,
	"rsidtbl": true, "revtbl": true, "filetbl": true, "pict": true, "objdata": true, "objclass": true,
	"fldinst": true, "themedata": true, "colorschememapping": true, "datastore": true, "latentstyles": true,
	"generator": true, "xmlnstbl": true, "pgdsctbl": true, "mmathPr": true, "pntext": true, "pntxta": true,
	"pntxtb": true, "bkmkstart": true, "bkmkend": true, "nonshppict": true, "shpinst": true, "template": true,
	"operator": true, "creatim": true, "revtim": true, "printim": true, "buptim": true,
}

// rtfWords maps control words to the text they stand for.
var rtfWords = map[string]string{
	"par": "\n", "line": "\n", "sect": "\n", "page": "\n", "row": "\n", "tab": "\t", "cell": "\t",
	"emdash": "\u2014", "endash": "\u2013", "bullet": "\u2022", "lquote": "\u2018", "rquote": "\u2019",
	"ldblquote": "\u201c", "rdblquote": "\u201d", "emspace": " ", "enspace": " ", "qmspace": " ",
}

// rtfMaxDepth bounds the group nesting tracked; deeper groups are skipped.
const rtfMaxDepth = 1000

type rtfState struct {
	skip    bool // inside a destination that is not text
	htmlrtf bool // inside \htmlrtf … \htmlrtf0: RTF-only content of encapsulated HTML
	uc      int  // \ucN: fallback characters after \uN
	cp      int  // code page of \'hh bytes
	fonttbl bool
}

// rtfText returns the text of an RTF document, at most max bytes (ok is
// false if there was more). It never fails: malformed input is read as far
// as it makes sense. Work is linear in len(b).
func rtfText(b []byte, max int) (text string, ok bool) {
	var out strings.Builder
	st := rtfState{uc: 1, cp: 1252}
	stack := make([]rtfState, 0, 16)
	deep := 0 // groups beyond rtfMaxDepth
	defCP := 1252
	fonts := map[int]int{}
	curFont := -1
	var pending []byte // \'hh bytes not yet decoded
	var surrogate rune // a high surrogate from \uN awaiting its pair
	fallback := 0      // characters still to skip after \uN
	flush := func() {
		if len(pending) > 0 {
			out.WriteString(decodeCodepage(st.cp, pending))
			pending = pending[:0]
		}
	}
	emit := func(s string) {
		flush()
		out.WriteString(s)
	}
	hidden := func() bool { return st.skip || st.htmlrtf || deep > 0 }
	i := 0
	for i < len(b) {
		if out.Len() >= max {
			return out.String()[:max], false
		}
		c := b[i]
		switch c {
		case '{':
			flush()
			fallback = 0
			if len(stack) >= rtfMaxDepth {
				deep++
			} else {
				stack = append(stack, st)
			}
			i++
			if i+1 < len(b) && b[i] == '\\' && b[i+1] == '*' {
				st.skip = true
				i += 2
			}
			continue
		case '}':
			flush()
			fallback = 0
			if deep > 0 {
				deep--
			} else if n := len(stack); n > 0 {
				st = stack[n-1]
				stack = stack[:n-1]
			}
			i++
			continue
		case '\r', '\n':
			i++
			continue
		case '\\':
		default:
			i++
			if fallback > 0 {
				fallback--
				continue
			}
			if hidden() {
				continue
			}
			if c >= 0x80 {
				pending = append(pending, c) // raw 8-bit text in the document's code page
			} else {
				emit(string(rune(c)))
			}
			continue
		}
		// A control word or symbol.
		i++
		if i >= len(b) {
			break
		}
		c = b[i]
		if !isASCIILetter(c) {
			i++
			switch c {
			case '\'':
				if i+2 <= len(b) {
					v, okHex := hexByte(b[i], b[i+1])
					i += 2
					if okHex {
						if fallback > 0 {
							fallback--
						} else if !hidden() {
							pending = append(pending, v)
						}
					}
				}
			case '\\', '{', '}':
				if fallback > 0 {
					fallback--
				} else if !hidden() {
					emit(string(rune(c)))
				}
			case '~':
				if !hidden() {
					emit("\u00a0")
				}
			case '_':
				if !hidden() {
					emit("-")
				}
			case '\r', '\n':
				if !hidden() {
					emit("\n") // \<newline> is \par
				}
			}
			continue
		}
		start := i
		for i < len(b) && i-start < 32 && isASCIILetter(b[i]) {
			i++
		}
		word := string(b[start:i])
		param, hasParam := 0, false
		neg := false
		if i < len(b) && b[i] == '-' {
			neg = true
			i++
		}
		for n := 0; i < len(b) && n < 10 && b[i] >= '0' && b[i] <= '9'; n++ {
			param = param*10 + int(b[i]-'0')
			hasParam = true
			i++
		}
		if neg {
			param = -param
		}
		if i < len(b) && b[i] == ' ' {
			i++ // the delimiter space belongs to the control word
		}
		if word == "bin" && hasParam && param > 0 {
			i += min(param, len(b)-i) // binary data
			continue
		}
		if word != "u" {
			flush()
		}
		switch {
		case rtfSkip[word]:
			st.skip = true
			if word == "fonttbl" {
				st.fonttbl = true
			}
		case word == "ansicpg" && hasParam:
			defCP, st.cp = param, param
		case word == "f" && hasParam:
			if st.fonttbl {
				curFont = param
			} else if cp, ok := fonts[param]; ok {
				st.cp = cp
			} else {
				st.cp = defCP
			}
		case word == "fcharset" && st.fonttbl && curFont >= 0:
			if cp, ok := charsetCodepage[param]; ok && cp != 1252 {
				fonts[curFont] = cp
			} else {
				fonts[curFont] = defCP
			}
		case word == "cpg" && st.fonttbl && curFont >= 0 && param > 0:
			fonts[curFont] = param
		case word == "uc" && hasParam && param >= 0:
			st.uc = min(param, 8)
		case word == "htmlrtf":
			st.htmlrtf = !hasParam || param != 0
		case word == "u" && hasParam:
			flush()
			r := rune(param)
			if r < 0 {
				r += 65536
			}
			fallback = st.uc
			if hidden() {
				continue
			}
			switch {
			case utf16.IsSurrogate(r) && r < 0xdc00:
				surrogate = r
			case utf16.IsSurrogate(r) && surrogate != 0:
				out.WriteRune(utf16.DecodeRune(surrogate, r))
				surrogate = 0
			default:
				surrogate = 0
				out.WriteRune(r)
			}
		default:
			if s, ok := rtfWords[word]; ok && !hidden() {
				emit(s)
			}
		}
	}
	flush()
	if out.Len() > max {
		return out.String()[:max], false
	}
	return out.String(), true
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func hexByte(a, b byte) (byte, bool) {
	h, ok1 := hexVal(a)
	l, ok2 := hexVal(b)
	return h<<4 | l, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
