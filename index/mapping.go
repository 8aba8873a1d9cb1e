// SPDX-License-Identifier: Apache-2.0

package index

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/blugelabs/bluge"
	"github.com/blugelabs/bluge/analysis"
	"github.com/blugelabs/bluge/numeric"
	"github.com/blugelabs/bluge/search"
	segment "github.com/blugelabs/bluge_segment_api"

	"github.com/sealmail/sealmail"
)

// Field names of the Bluge mapping. Text fields ("words") are analyzed with
// [wordTokenizer] and keep positions for phrase queries; "…_addr" fields are
// keywords holding lower-case addresses and "@domain" terms.
const (
	fID          = "_id"
	fSubject     = "subject"   // text, stored
	fFrom        = "from"      // text: header From and Sender, envelope sender and on-behalf-of
	fFromAddr    = "from_addr" // keyword
	fTo          = "to"        // text: header To, Cc, Bcc and every envelope recipient
	fToAddr      = "to_addr"
	fCc          = "cc" // text: header Cc and envelope recipients of kind cc
	fCcAddr      = "cc_addr"
	fBcc         = "bcc" // text: header Bcc and envelope recipients of kind bcc
	fBccAddr     = "bcc_addr"
	fBody        = "body"
	fAttachName  = "attachment_name"
	fAttachText  = "attachment_text"
	fMessageID   = "message_id" // keyword, lower-case, without <>
	fDate        = "date"       // stored only: the date (bluge.DecodeDateTime)
	fDay         = "day"        // integer: days since 1970-01-01 UTC, for after: and before:
	fSort        = "sort"       // keyword, sortable: sortKey(date, id)
	fSize        = "size"       // integer, stored
	fHas         = "has"        // keyword: "attachment"
	fFlag        = "flag"       // keyword: see FlagDecodeError, FlagTruncated
	fInvolved    = "involved"   // keyword: addresses involved (internal ones if configured)
	fFromDisplay = "from_display"
	fKind        = "kind"    // keyword: kindMessage on every message document
	fSeq         = "seq"     // integer, stored: Doc.Seq
	fRecords     = "records" // stored only: JSON of Doc.Records
	fState       = "state"   // stored only, on the state document
)

// kindMessage marks message documents, so that queries (even "*") never
// match the state document, whose ID is stateID (not a message id).
const (
	kindMessage = "message"
	stateID     = "_state"
)

// positions are the text fields indexed with term positions: a phrase
// there is its words adjacent and in order; elsewhere all its words.
var positions = map[string]bool{fSubject: true, fFrom: true, fTo: true, fCc: true, fBcc: true, fAttachName: true}

// wordFields are searched by a bare word or phrase.
var wordFields = []string{fSubject, fBody, fFrom, fTo, fAttachName, fAttachText}

// Bluge keeps dates as int64 nanoseconds.
var (
	minDate = time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC)
	maxDate = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

// addrSet collects lower-case addresses and their domain terms.
type addrSet struct {
	seen  map[string]bool
	terms []string
}

func (s *addrSet) addTerm(t string) {
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	if !s.seen[t] {
		s.seen[t] = true
		s.terms = append(s.terms, t)
	}
}

// add records an address, "@domain" and "@parent.domain" down to two labels,
// so from:@example.com also matches mail.example.com.
func (s *addrSet) add(addr string) {
	addr = normAddr(addr)
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return
	}
	s.addTerm(addr)
	dom := addr[at+1:]
	for {
		s.addTerm("@" + dom)
		i := strings.IndexByte(dom, '.')
		if i < 0 || strings.Count(dom, ".") < 2 {
			break
		}
		dom = dom[i+1:]
	}
}

func normAddr(a string) string {
	a = strings.TrimSpace(a)
	a = strings.TrimPrefix(a, "<")
	a = strings.TrimSuffix(a, ">")
	return strings.ToLower(strings.Trim(a, ".\"'"))
}

func isLocalRune(c rune) bool {
	return isWordRune(c) || strings.ContainsRune(".!#$%&'*+-/=?^_`{|}~", c)
}

func isDomainRune(c rune) bool { return isWordRune(c) || c == '.' || c == '-' }

// scanAddrs finds address-like tokens (local@domain) in decoded header text.
// It is lenient on purpose: broken address lists are common and an address
// must be searchable even when the list does not parse.
func scanAddrs(s string) []string {
	var out []string
	rs := []rune(s)
	for i, c := range rs {
		if c != '@' {
			continue
		}
		l := i
		for l > 0 && isLocalRune(rs[l-1]) {
			l--
		}
		r := i + 1
		for r < len(rs) && isDomainRune(rs[r]) {
			r++
		}
		if l == i || r == i+1 {
			continue
		}
		out = append(out, string(rs[l:r]))
	}
	return out
}

// buildDocument builds the Bluge document for one message.
func buildDocument(d *Doc, x *Extracted) *bluge.Document {
	doc := bluge.NewDocument(d.ID.String())
	noDocValues((*doc)[0].(*bluge.TermField)) // _id: Bluge finds documents by its term
	text := func(name, v string) {
		if v != "" {
			f := bluge.NewTextField(name, v).WithAnalyzer(textAnalyzer)
			if positions[name] {
				f.SearchTermPositions()
			}
			doc.AddField(f)
		}
	}
	kw := func(name string, vs []string) {
		switch len(vs) {
		case 0:
		case 1:
			doc.AddField(bluge.NewKeywordField(name, vs[0]))
		default:
			doc.AddField(bluge.NewTextField(name, strings.Join(vs, "\n")).WithAnalyzer(listAnalyzer))
		}
	}
	// joined is the header values and the envelope addresses the headers
	// do not already name (a journaled copy's envelope mostly repeats them).
	joined := func(env []string, headers ...[]string) string {
		var b strings.Builder
		add := func(v string) {
			if b.Len() > 0 {
				b.WriteString(" , ")
			}
			b.WriteString(v)
		}
		for _, h := range headers {
			for _, v := range h {
				add(v)
			}
		}
		named := strings.ToLower(b.String())
		for _, a := range env {
			if !strings.Contains(named, a) {
				add(a)
			}
		}
		return b.String()
	}

	var from, to, cc, bcc, involved addrSet
	var envFrom, envTo, envCc, envBcc []string
	for _, v := range append(append([]string{}, x.From...), x.Sender...) {
		for _, a := range scanAddrs(v) {
			from.add(a)
		}
	}
	for _, v := range x.To {
		for _, a := range scanAddrs(v) {
			to.add(a)
		}
	}
	for _, v := range x.Cc {
		for _, a := range scanAddrs(v) {
			to.add(a)
			cc.add(a)
		}
	}
	for _, v := range x.Bcc {
		for _, a := range scanAddrs(v) {
			to.add(a)
			bcc.add(a)
		}
	}
	for i := range d.Envelopes {
		// Untrusted claims are evidence only and are not indexed: they must
		// never decide who can find a message.
		e := &d.Envelopes[i]
		sender := e.Sender
		if sender == "" {
			sender = e.MailFrom // a plain SMTP envelope
		}
		rcpts := e.Recipients
		if len(rcpts) == 0 {
			for _, a := range e.RcptTo {
				rcpts = append(rcpts, sealmail.Recipient{Address: a, Kind: sealmail.RcptUnknown})
			}
		}
		if e.Imported != nil && normAddr(e.Imported.Owner) != "" {
			involved.add(normAddr(e.Imported.Owner)) // the mailbox an imported copy came from
		}
		for _, a := range []string{sender, e.OnBehalfOf} {
			if a = normAddr(a); a != "" {
				from.add(a)
				envFrom = append(envFrom, a)
			}
		}
		for _, r := range rcpts {
			a := normAddr(r.Address)
			if a == "" {
				continue
			}
			to.add(a)
			envTo = append(envTo, a)
			switch r.Kind {
			case sealmail.RcptCc:
				cc.add(a)
				envCc = append(envCc, a)
			case sealmail.RcptBcc:
				bcc.add(a)
				envBcc = append(envBcc, a)
			}
			for _, x := range []string{r.ExpandedFrom, r.ForwardedFrom} {
				if x = normAddr(x); x != "" {
					involved.add(x)
				}
			}
		}
	}

	text(fSubject, x.Subject)
	if x.Subject != "" {
		// Stored separately from the analyzed field to keep the text field lean.
		doc.AddField(bluge.NewStoredOnlyField(fSubject+"_s", []byte(x.Subject)))
	}
	text(fFrom, joined(envFrom, x.From, x.Sender))
	text(fTo, joined(envTo, x.To, x.Cc, x.Bcc))
	text(fCc, joined(envCc, x.Cc))
	text(fBcc, joined(envBcc, x.Bcc))
	kw(fFromAddr, from.terms)
	kw(fToAddr, to.terms)
	kw(fCcAddr, cc.terms)
	kw(fBccAddr, bcc.terms)
	for _, s := range []*addrSet{&from, &to} {
		for _, t := range s.terms {
			if !strings.HasPrefix(t, "@") {
				involved.add(t)
			}
		}
	}
	var inv []string
	for _, a := range involved.terms {
		if !strings.HasPrefix(a, "@") && internalAddr(a, d.Internal) {
			inv = append(inv, a)
		}
	}
	kw(fInvolved, inv)

	text(fBody, x.Body)
	text(fAttachName, strings.Join(x.AttachNames, " , "))
	// No positions in attachment text: it is often large (CSV, logs) and
	// positions would double the cost of indexing it.
	text(fAttachText, x.AttachText)
	if x.MessageID != "" {
		kw(fMessageID, []string{strings.ToLower(x.MessageID)})
	}
	date := x.Date
	if date.IsZero() {
		date = d.Received
	}
	if date.IsZero() {
		date = time.Unix(0, 0)
	}
	if date.Before(minDate) {
		date = minDate
	} else if date.After(maxDate) {
		date = maxDate
	}
	doc.AddField(bluge.NewKeywordField(fKind, kindMessage))
	doc.AddField(intField(fSeq, int64(d.Seq)).StoreValue())
	if len(d.Records) > 0 {
		b, _ := json.Marshal(d.Records) // strings and ints: cannot fail
		doc.AddField(bluge.NewStoredOnlyField(fRecords, b))
	}
	if len(x.Attachments) > 0 {
		doc.AddField(attachmentsField(x))
	}
	doc.AddField(bluge.NewStoredOnlyField(fDate, numeric.MustNewPrefixCodedInt64(date.UnixNano(), 0)))
	doc.AddField(intField(fDay, dayOf(date)))
	doc.AddField(bluge.NewKeywordField(fSort, sortKey(date, d.ID)).Sortable())
	doc.AddField(intField(fSize, int64(len(d.Raw))).StoreValue())
	if x.HasAttachment {
		doc.AddField(bluge.NewKeywordField(fHas, "attachment").StoreValue())
	}
	kw(fFlag, x.Flags())
	if len(x.From) > 0 {
		doc.AddField(bluge.NewStoredOnlyField(fFromDisplay, []byte(strings.Join(x.From, ", "))))
	} else if len(envFrom) > 0 {
		doc.AddField(bluge.NewStoredOnlyField(fFromDisplay, []byte(envFrom[0])))
	}
	return doc
}

// noDocValues keeps f out of the doc values (Bluge gives numeric fields and
// _id doc values by default): only [fSort] is sorted on, and a numeric
// field's doc values hold all its 16 precision-shifted terms.
func noDocValues(f *bluge.TermField) *bluge.TermField {
	f.FieldOptions &^= bluge.Sortable | bluge.Aggregatable
	return f
}

// intField indexes the integer v for range queries ([intRange]), without
// doc values. Bluge's numeric fields index the sortable bits of a float64
// at 16 precisions, 4 bits apart; an integer's float64 has its distinct
// bits high, so most of the 16 terms would be unique to the document.
// The float64 whose sortable bits are v itself puts the distinct bits
// low: all but the finest few terms are shared with neighbouring values.
func intField(name string, v int64) *bluge.TermField {
	return noDocValues(bluge.NewNumericField(name, numeric.Int64ToFloat64(v)))
}

// intValue decodes the stored value of an [intField].
func intValue(b []byte) (int64, error) {
	f, err := bluge.DecodeNumericFloat64(b)
	return numeric.Float64ToInt64(f), err
}

// intRange matches the documents whose [intField] field is in [lo, hi];
// math.MinInt64 and math.MaxInt64 leave that end open.
func intRange(field string, lo, hi int64) bluge.Query {
	if lo > hi {
		return bluge.NewMatchNoneQuery()
	}
	flo, fhi := numeric.Int64ToFloat64(lo), numeric.Int64ToFloat64(hi)
	if lo == math.MinInt64 {
		flo = math.Inf(-1)
	}
	if hi == math.MaxInt64 {
		fhi = math.Inf(1)
	}
	return bluge.NewNumericRangeInclusiveQuery(flo, fhi, true, true).SetField(field)
}

// dayOf is the day of t: days since 1970-01-01 UTC.
func dayOf(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return d
}

// sortKey orders messages by date, then id, as one fixed-width term: sorting
// on one single-term doc value is much cheaper than on a numeric date field
// (whose doc values hold every precision-shifted term).
func sortKey(date time.Time, id sealmail.MessageID) string {
	return fmt.Sprintf("%016x%016x", uint64(date.UnixNano())^(1<<63), uint64(id))
}

// internalAddr reports whether addr is in one of the internal domains (or a
// subdomain); with no internal domains configured every address is.
func internalAddr(addr string, internal []string) bool {
	if len(internal) == 0 {
		return true
	}
	dom := addr[strings.LastIndexByte(addr, '@')+1:]
	for _, d := range internal {
		d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
		if d != "" && (dom == d || strings.HasSuffix(dom, "."+d)) {
			return true
		}
	}
	return false
}

// textAnalyzer is stateless and shared by all indexes.
var textAnalyzer = newAnalyzer()

var _ analysis.Tokenizer = wordTokenizer{}

// unscored is the similarity of every indexed field: sealmail orders
// results by date and never by relevance, so the index keeps no length
// norms (Bluge's default similarity writes a 4-byte float with every
// posting, five bytes as a varint). The norm is the float32 whose bits
// are 1 (one varint byte), not 0: Bluge's single-document postings store
// the norm's bits and take 0 for "not single-document".
type unscored struct{}

func (unscored) ComputeNorm(int) float32 { return math.Float32frombits(1) }

func (unscored) Scorer(float64, segment.CollectionStats, segment.TermStats) search.Scorer {
	return unscoredScorer{}
}

type unscoredScorer struct{}

func (unscoredScorer) Score(int, float64) float64 { return 0 }

func (unscoredScorer) Explain(int, float64) *search.Explanation {
	return search.NewExplanation(0, "unscored")
}

// indexedFields are all the fields Bluge indexes (for [unscored]).
var indexedFields = []string{fID, fSubject, fFrom, fFromAddr, fTo, fToAddr, fCc, fCcAddr, fBcc, fBccAddr,
	fBody, fAttachName, fAttachText, fMessageID, fDay, fSort, fSize, fHas, fFlag, fInvolved, fKind, fSeq}
