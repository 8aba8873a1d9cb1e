// SPDX-License-Identifier: Apache-2.0

package index

import (
	"math"
	"strings"
	"time"

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
			return bluge.NewDateRangeInclusiveQuery(n.Day, time.Time{}, true, false).SetField(fDate)
		}
		return bluge.NewDateRangeInclusiveQuery(time.Time{}, n.Day, false, false).SetField(fDate)
	case *query.Size:
		if n.Op == query.Larger {
			return bluge.NewNumericRangeInclusiveQuery(float64(n.Bytes), math.Inf(1), false, false).SetField(fSize)
		}
		return bluge.NewNumericRangeInclusiveQuery(math.Inf(-1), float64(n.Bytes), false, false).SetField(fSize)
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
	toks := textAnalyzer.Analyze([]byte(v))
	switch len(toks) {
	case 0:
		return bluge.NewMatchNoneQuery()
	case 1:
		return bluge.NewTermQuery(string(toks[0].Term)).SetField(field)
	}
	if field == fAttachText {
		// Attachment text is indexed without positions (it is large and
		// rarely searched by phrase): all the words must occur.
		b := bluge.NewBooleanQuery()
		for _, t := range toks {
			b.AddMust(bluge.NewTermQuery(string(t.Term)).SetField(field))
		}
		return b
	}
	terms := make([][]string, len(toks))
	for i, t := range toks {
		terms[i] = []string{string(t.Term)}
	}
	return bluge.NewMultiPhraseQuery(terms).SetField(field)
}
