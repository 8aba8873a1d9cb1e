// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync/atomic"
	"time"

	"github.com/blugelabs/bluge"

	"github.com/sealmail/sealmail/extract"
	"github.com/sealmail/sealmail/index/query"
)

// fAttachments is a stored-only field: per attachment its name, type, the
// reason its text is not (all) indexed, and a Bloom filter of the words of
// its text, so a hit can say which attachment matched without storing the
// text (JSON of [storedAttachments]; docs/format.md, "Full-text index").
const fAttachments = "attachments"

// storedAttachments is the value of fAttachments, version 1.
type storedAttachments struct {
	V int                `json:"v"`
	A []storedAttachment `json:"a"`
}

type storedAttachment struct {
	Name   string         `json:"n,omitempty"`
	Type   string         `json:"t,omitempty"`
	Reason extract.Reason `json:"r,omitempty"`
	Bloom  []byte         `json:"b,omitempty"` // see bloomOf
}

// HitAttachment is one attachment of a [Hit].
type HitAttachment struct {
	Name    string         // file name; empty for an unnamed part (see Type)
	Type    string         // declared content type
	Matched bool           // its name or text has every word of a term of the query
	Reason  extract.Reason // why its text is not (all) searchable; "" if it is, or it has none
}

// Bloom filters: bloomBitsPerWord bits per distinct word and bloomHashes
// probes (a false positive rate near 1%), at most bloomMaxBytes per
// attachment (beyond some 50,000 distinct words the rate rises). Probe i of
// word w sets bit (h1 + i·h2) mod m, where h1 and h2 are the low and high
// halves of fmix64(FNV-1a-64(w)), h2 made odd (Kirsch and Mitzenmacher's
// double hashing). FNV-1a alone mixes its last bytes poorly: words that
// differ only at the end ("sealods", "sealrtf") would share probes.
const (
	bloomBitsPerWord = 10
	bloomHashes      = 7
	bloomMinBytes    = 64 // a short text gets a sparse filter: almost no false positives
	bloomMaxBytes    = 64 << 10
)

func bloomProbes(word string, m uint32, fn func(bit uint32) bool) bool {
	h := fnv.New64a()
	h.Write([]byte(word))
	v := fmix64(h.Sum64())
	h1, h2 := uint32(v), uint32(v>>32)|1
	for i := uint32(0); i < bloomHashes; i++ {
		if !fn((h1 + i*h2) % m) {
			return false
		}
	}
	return true
}

// fmix64 is MurmurHash3's 64-bit finalizer.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// bloomOf returns the Bloom filter of the words of text (analyzed as the
// index analyzes attachment text), nil if it has none.
func bloomOf(text string) []byte {
	words := map[string]struct{}{}
	for _, t := range textAnalyzer.Analyze([]byte(text)) {
		words[string(t.Term)] = struct{}{}
	}
	if len(words) == 0 {
		return nil
	}
	b := make([]byte, min(max(bloomMinBytes, (len(words)*bloomBitsPerWord+7)/8), bloomMaxBytes))
	m := uint32(len(b) * 8)
	for w := range words {
		bloomProbes(w, m, func(bit uint32) bool { b[bit/8] |= 1 << (bit % 8); return true })
	}
	return b
}

func bloomHas(b []byte, word string) bool {
	if len(b) == 0 {
		return false
	}
	return bloomProbes(word, uint32(len(b)*8), func(bit uint32) bool { return b[bit/8]&(1<<(bit%8)) != 0 })
}

// attachmentsField stores x's attachments.
func attachmentsField(x *Extracted) *bluge.TermField {
	sa := storedAttachments{V: 1, A: make([]storedAttachment, len(x.Attachments))}
	for i, a := range x.Attachments {
		sa.A[i] = storedAttachment{Name: a.Name, Type: a.Type, Reason: a.Reason}
		if a.textEnd > a.textStart && a.textEnd <= len(x.AttachText) {
			sa.A[i].Bloom = bloomOf(x.AttachText[a.textStart:a.textEnd])
		}
	}
	b, _ := json.Marshal(sa) // strings and bytes: cannot fail
	return bluge.NewStoredOnlyField(fAttachments, b)
}

// queryTerm is a positive term of a query that attachments can match:
// its words, and whether only names count (filename:).
type queryTerm struct {
	words     []string
	namesOnly bool
}

// attachmentTerms returns the terms of n that can match an attachment:
// bare words, attachment: and filename:, outside a negation.
func attachmentTerms(n query.Node) []queryTerm {
	var out []queryTerm
	var walk func(n query.Node)
	walk = func(n query.Node) {
		switch n := n.(type) {
		case *query.Term:
			if n.Field != query.FieldAny && n.Field != query.FieldAttachment && n.Field != query.FieldFilename {
				return
			}
			var words []string
			for _, t := range textAnalyzer.Analyze([]byte(n.Value)) {
				words = append(words, string(t.Term))
			}
			if len(words) > 0 {
				out = append(out, queryTerm{words: words, namesOnly: n.Field == query.FieldFilename})
			}
		case *query.And:
			for _, c := range n.Nodes {
				walk(c)
			}
		case *query.Or:
			for _, c := range n.Nodes {
				walk(c)
			}
		}
	}
	walk(n)
	return out
}

// hitAttachments decodes fAttachments and says which attachments match
// one of terms: all its words in the name, or (but for filename:) in the
// text's Bloom filter. A filter can say yes wrongly (about 1%), never no
// wrongly.
func hitAttachments(value []byte, terms []queryTerm) ([]HitAttachment, error) {
	var sa storedAttachments
	if err := json.Unmarshal(value, &sa); err != nil {
		return nil, fmt.Errorf("attachments field: %w", err)
	}
	if sa.V != 1 {
		return nil, fmt.Errorf("attachments field: version %d: %w", sa.V, ErrUnsupportedVersion)
	}
	out := make([]HitAttachment, len(sa.A))
	for i, a := range sa.A {
		out[i] = HitAttachment{Name: a.Name, Type: a.Type, Reason: a.Reason}
		name := map[string]bool{}
		for _, t := range textAnalyzer.Analyze([]byte(a.Name)) {
			name[string(t.Term)] = true
		}
		for _, t := range terms {
			inName, inText := true, !t.namesOnly
			for _, w := range t.words {
				inName = inName && name[w]
				inText = inText && bloomHas(a.Bloom, w)
			}
			if inName || inText {
				out[i].Matched = true
				break
			}
		}
	}
	return out, nil
}

// ErrUnsupportedVersion is returned for a stored field of a format version
// this build does not know (an index written by a newer sealmail).
var ErrUnsupportedVersion = errors.New("index: unsupported version")

// ExtractStats counts the work of the Extractor since the index was
// opened: the share of indexing time extraction takes.
type ExtractStats struct {
	Attachments int64         // attachments handed to the Extractor
	Unextracted int64         // of those, with a Reason
	Time        time.Duration // spent in the Extractor, summed over workers
}

type extractStats struct {
	n, failed, nanos atomic.Int64
}

// ExtractStats returns the Extractor's counts.
func (x *Index) ExtractStats() ExtractStats {
	return ExtractStats{Attachments: x.stats.n.Load(), Unextracted: x.stats.failed.Load(), Time: time.Duration(x.stats.nanos.Load())}
}

// timed counts an Extractor's calls and time.
type timed struct {
	Extractor
	stats *extractStats
}

func (t *timed) Extract(ctx context.Context, in extract.Input) extract.Result {
	start := time.Now()
	r := t.Extractor.Extract(ctx, in)
	t.stats.nanos.Add(int64(time.Since(start)))
	t.stats.n.Add(1)
	if r.Reason != "" {
		t.stats.failed.Add(1)
	}
	return r
}
