// SPDX-License-Identifier: Apache-2.0

package index

import (
	"bytes"
	"unicode"
	"unicode/utf8"

	"github.com/blugelabs/bluge/analysis"
)

// maxTokenBytes drops longer tokens (base64 runs, hashes pasted in text):
// nobody searches for them and they bloat the term dictionary.
const maxTokenBytes = 120

// wordTokenizer splits text into lower-case words: maximal runs of letters,
// digits, combining marks and connector punctuation ("thread_id"). Every other character separates words, so
// "carl.worth@example.com" is carl, worth, example, com, as in Xapian's term
// generator that notmuch uses. Han, Hiragana and Katakana characters are one
// token each (scripts written without spaces); a query for a word in them is
// a phrase of its characters. It is linear and allocation-light: ASCII
// lower-case words are sub-slices of the input. Tokens carry no byte
// offsets (Start and End are 0): nothing highlights, and Bluge would store
// two of them with every position.
type wordTokenizer struct{}

func isCJK(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r)
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || unicode.Is(unicode.Pc, r)
}

func (wordTokenizer) Tokenize(in []byte) analysis.TokenStream {
	var slab []analysis.Token
	newTok := func() *analysis.Token {
		if len(slab) == cap(slab) {
			n := len(in)/8 + 4
			if n > 4096 {
				n = 4096
			}
			slab = make([]analysis.Token, 0, n)
		}
		slab = slab[:len(slab)+1]
		return &slab[len(slab)-1]
	}
	var out analysis.TokenStream
	var lower []byte // backing store for lower-cased non-ASCII or mixed-case terms
	i := 0
	for i < len(in) {
		r, size := rune(in[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(in[i:])
		}
		if !isWordRune(r) {
			i += size
			continue
		}
		if r >= utf8.RuneSelf && isCJK(r) {
			t := newTok()
			*t = analysis.Token{Term: in[i : i+size], PositionIncr: 1, Type: analysis.Ideographic}
			out = append(out, t)
			i += size
			continue
		}
		start := i
		simple := true // ASCII lower-case and digits only
		for i < len(in) {
			r, size = rune(in[i]), 1
			if r >= utf8.RuneSelf {
				r, size = utf8.DecodeRune(in[i:])
				if isCJK(r) || !isWordRune(r) {
					break
				}
				simple = false
			} else {
				if !isWordRune(r) {
					break
				}
				if 'A' <= r && r <= 'Z' {
					simple = false
				}
			}
			i += size
		}
		if i-start > maxTokenBytes {
			continue
		}
		term := in[start:i]
		if !simple {
			off := len(lower)
			for _, r := range string(term) {
				lower = utf8.AppendRune(lower, unicode.ToLower(r))
			}
			// lower may have been reallocated; the slice below is stable
			// because earlier terms keep their own backing array.
			term = lower[off:len(lower):len(lower)]
		}
		t := newTok()
		*t = analysis.Token{Term: term, PositionIncr: 1, Type: analysis.AlphaNumeric}
		out = append(out, t)
	}
	return out
}

// newAnalyzer returns the analyzer used for every text field, at index and
// at query time.
func newAnalyzer() *analysis.Analyzer {
	return &analysis.Analyzer{Tokenizer: wordTokenizer{}}
}

// listTokenizer splits a newline-separated list of exact terms (addresses,
// flags): one field instance carries all the values of a keyword field,
// which costs far less to index than one field per value.
type listTokenizer struct{}

func (listTokenizer) Tokenize(in []byte) analysis.TokenStream {
	var out analysis.TokenStream
	n := bytes.Count(in, []byte{'\n'}) + 1
	slab := make([]analysis.Token, 0, n)
	start := 0
	for i := 0; i <= len(in); i++ {
		if i < len(in) && in[i] != '\n' {
			continue
		}
		if i > start {
			slab = append(slab, analysis.Token{Start: start, End: i, Term: in[start:i], PositionIncr: 1, Type: analysis.AlphaNumeric})
			out = append(out, &slab[len(slab)-1])
		}
		start = i + 1
	}
	return out
}

// listAnalyzer indexes the exact values of a newline-separated list.
var listAnalyzer = &analysis.Analyzer{Tokenizer: listTokenizer{}}
