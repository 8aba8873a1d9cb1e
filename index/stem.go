// SPDX-License-Identifier: Apache-2.0

package index

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/blevesearch/snowballstem"
	"github.com/blevesearch/snowballstem/english"
	"github.com/blugelabs/bluge/search"
)

// stem returns the English (Porter2, Snowball's "english") stem of a word.
func stem(word string) string {
	env := snowballstem.NewEnv(word)
	english.Stem(env)
	return env.Current()
}

// maxStemVariants bounds the words one stem: term expands to in one field.
const maxStemVariants = 1000

// stemQuery matches, in field, the words of the query value with any
// indexed word of the same stem in place of each (a phrase of them when
// there are several). The index holds no stems: the words are found in the
// field's term dictionary when the query runs, so stemming costs no index
// space.
type stemQuery struct {
	field string
	words []string // the analyzed words of the query value
}

func (q stemQuery) Searcher(r search.Reader, opts search.SearcherOptions) (search.Searcher, error) {
	alts := make([][]string, len(q.words))
	for i, w := range q.words {
		vs, err := stemVariants(r, q.field, w)
		if err != nil {
			return nil, err
		}
		alts[i] = vs
	}
	return match(q.field, alts).Searcher(r, opts)
}

// stemVariants returns the words of field's dictionary whose stem is
// word's; the word itself is always among them (it may not be indexed).
// A word and its stem share all but the stem's last letter (happy and
// happi), or its last two when the stem ends in "ie" (dying and die): the
// candidates are the dictionary's words with that prefix.
func stemVariants(r search.Reader, field, word string) ([]string, error) {
	s := stem(word)
	prefixes := []string{s[:max(len(s)-1, 0)]}
	if base, ok := strings.CutSuffix(s, "ie"); ok {
		prefixes = []string{base + "i", base + "y"}
	}
	out := []string{word}
	for _, p := range prefixes {
		if p == "" {
			continue // a one-letter stem: the word only
		}
		it, err := r.DictionaryIterator(field, nil, []byte(p), prefixEnd([]byte(p)))
		if err != nil {
			return nil, fmt.Errorf("index: stem %s: %w", field, err)
		}
		for {
			e, err := it.Next()
			if err != nil {
				_ = it.Close()
				return nil, fmt.Errorf("index: stem %s: %w", field, err)
			}
			if e == nil {
				break
			}
			if t := e.Term(); t != word && stem(t) == s {
				if len(out) == maxStemVariants {
					break
				}
				out = append(out, t)
			}
		}
		if err := it.Close(); err != nil {
			return nil, fmt.Errorf("index: stem %s: %w", field, err)
		}
	}
	return out, nil
}

// prefixEnd is the least byte string greater than every string with prefix
// p (nil: none, when p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
