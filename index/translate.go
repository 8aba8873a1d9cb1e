// SPDX-License-Identifier: Apache-2.0

package index

import (
	"math"
	"strings"

	"github.com/blugelabs/bluge"

	"github.com/sealmail/sealmail/index/query"
)

// translate turns a parsed query into a Bluge query.
func translate(n query.Node) bluge.Query {
	switch n := n.(type) {
	case *query.All:
		return bluge.NewMatchAllQuery()
	case *query.Term:
		return termQuery(n)
	case *query.Date:
		// after: inclusive of its day, before: exclusive (see query.DateOp).
		if n.Op == query.After {
			return intRange(fDay, dayOf(n.Day), math.MaxInt64)
		}
		return intRange(fDay, math.MinInt64, dayOf(n.Day)-1)
	case *query.Size:
		if n.Op == query.Larger {
			if n.Bytes == math.MaxInt64 {
				return bluge.NewMatchNoneQuery()
			}
			return intRange(fSize, n.Bytes+1, math.MaxInt64)
		}
		return intRange(fSize, math.MinInt64, n.Bytes-1)
	case *query.Flag:
		if n.Key == "has" {
			return bluge.NewTermQuery("attachment").SetField(fHas)
		}
		return bluge.NewTermQuery(n.Value).SetField(fFlag)
	case *query.And:
		b := bluge.NewBooleanQuery()
		musts := 0
		for _, c := range n.Nodes {
			if not, ok := c.(*query.Not); ok {
				b.AddMustNot(translate(not.Node))
				continue
			}
			b.AddMust(translate(c))
			musts++
		}
		if musts == 0 {
			b.AddMust(bluge.NewMatchAllQuery())
		}
		return b
	case *query.Or:
		b := bluge.NewBooleanQuery()
		for _, c := range n.Nodes {
			b.AddShould(translate(c))
		}
		return b.SetMinShould(1)
	case *query.Not:
		return bluge.NewBooleanQuery().AddMust(bluge.NewMatchAllQuery()).AddMustNot(translate(n.Node))
	}
	return bluge.NewMatchNoneQuery()
}

func termQuery(t *query.Term) bluge.Query {
	switch t.Field {
	case query.FieldAny:
		return anyOf(wordFields, t.Value)
	case query.FieldFrom:
		return addrQuery(fFrom, fFromAddr, t)
	case query.FieldTo:
		return addrQuery(fTo, fToAddr, t)
	case query.FieldCc:
		return addrQuery(fCc, fCcAddr, t)
	case query.FieldBcc:
		return addrQuery(fBcc, fBccAddr, t)
	case query.FieldSubject:
		return phrase(fSubject, t.Value)
	case query.FieldBody:
		return phrase(fBody, t.Value)
	case query.FieldAttachment:
		return anyOf([]string{fAttachName, fAttachText}, t.Value)
	case query.FieldFilename:
		return phrase(fAttachName, t.Value)
	case query.FieldMessageID:
		return bluge.NewTermQuery(strings.ToLower(t.Value)).SetField(fMessageID)
	case query.FieldStem:
		return stemmed(wordFields, t.Value)
	case query.FieldInvolved:
		return bluge.NewTermQuery(normAddr(t.Value)).SetField(fInvolved)
	}
	return bluge.NewMatchNoneQuery()
}

// addrQuery matches a whole address ("a@b.c") or a domain ("@b.c") against
// the keyword field, and anything else (a name, a word of an address, a
// domain without "@", a quoted phrase) as a phrase of words.
func addrQuery(words, addrs string, t *query.Term) bluge.Query {
	v := normAddr(t.Value)
	if !t.Phrase && strings.Contains(v, "@") && !strings.ContainsAny(v, " \t") {
		return bluge.NewTermQuery(v).SetField(addrs)
	}
	return phrase(words, t.Value)
}

func anyOf(fields []string, v string) bluge.Query {
	b := bluge.NewBooleanQuery()
	for _, f := range fields {
		b.AddShould(phrase(f, v))
	}
	return b.SetMinShould(1)
}

// phrase matches the words of v, in order and adjacent, in field (in
// attachment text: all of the words). One word is a term query; no words
// matches nothing.
func phrase(field, v string) bluge.Query {
	return match(field, words(v))
}

// words analyzes v as a text field's value, one alternative per word.
func words(v string) [][]string {
	toks := textAnalyzer.Analyze([]byte(v))
	out := make([][]string, len(toks))
	for i, t := range toks {
		out[i] = []string{string(t.Term)}
	}
	return out
}

// match matches a phrase of words in field, each word one of its
// alternatives: adjacent and in order where field keeps positions, else
// all somewhere in it. No words match nothing.
func match(field string, alts [][]string) bluge.Query {
	switch len(alts) {
	case 0:
		return bluge.NewMatchNoneQuery()
	case 1:
		return oneOf(field, alts[0])
	}
	if !positions[field] {
		b := bluge.NewBooleanQuery()
		for _, a := range alts {
			b.AddMust(oneOf(field, a))
		}
		return b
	}
	return bluge.NewMultiPhraseQuery(alts).SetField(field)
}

// oneOf matches any of terms in field.
func oneOf(field string, terms []string) bluge.Query {
	if len(terms) == 1 {
		return bluge.NewTermQuery(terms[0]).SetField(field)
	}
	b := bluge.NewBooleanQuery()
	for _, t := range terms {
		b.AddShould(bluge.NewTermQuery(t).SetField(field))
	}
	return b.SetMinShould(1)
}

// stemmed matches the words of v, each in any form of its English stem,
// in any of fields (see [stemQuery]).
func stemmed(fields []string, v string) bluge.Query {
	var ws []string
	for _, t := range textAnalyzer.Analyze([]byte(v)) {
		ws = append(ws, string(t.Term))
	}
	if len(ws) == 0 {
		return bluge.NewMatchNoneQuery()
	}
	b := bluge.NewBooleanQuery()
	for _, f := range fields {
		b.AddShould(stemQuery{field: f, words: ws})
	}
	return b.SetMinShould(1)
}
