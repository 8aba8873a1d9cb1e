// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/index/query"
)

func msg(from, to, subject, date, body string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\n", from, to, subject)
	if date != "" {
		fmt.Fprintf(&b, "Date: %s\r\n", date)
	}
	fmt.Fprintf(&b, "Message-ID: <%s@test.example>\r\n\r\n%s\r\n", strings.ReplaceAll(subject, " ", "."), body)
	return []byte(b.String())
}

func ids(t *testing.T, x *Index, q string) []sealmail.MessageID {
	t.Helper()
	var got []sealmail.MessageID
	if err := x.IDs(context.Background(), q, func(id sealmail.MessageID) error {
		got = append(got, id)
		return nil
	}); err != nil {
		t.Fatalf("IDs(%q): %v", q, err)
	}
	slices.Sort(got)
	return got
}

func TestEnvelopeFields(t *testing.T) {
	x := openTemp(t)
	ctx := context.Background()
	env := sealmail.Envelope{
		Sender: "Journal.Sender@Corp.Example",
		Recipients: []sealmail.Recipient{
			{Address: "visible@corp.example", Kind: sealmail.RcptTo},
			{Address: "copy@partner.example", Kind: sealmail.RcptCc},
			{Address: "hidden@corp.example", Kind: sealmail.RcptBcc},
			{Address: "member@corp.example", Kind: sealmail.RcptUnknown, ExpandedFrom: "list@corp.example"},
		},
	}
	smtpEnv := sealmail.Envelope{Source: sealmail.SourceSMTPEnvelope, MailFrom: "bounce@lists.example", RcptTo: []string{"journal-copy@corp.example"},
		Untrusted: &sealmail.Envelope{Sender: "forged@evil.example"}}
	docs := []Doc{
		{ID: 3, Raw: msg("x@y.example", "z@y.example", "plain journal", "", "body"), Envelopes: []sealmail.Envelope{smtpEnv}},
		{ID: 1, Raw: msg(`"Ann Smith" <ann@outside.example>`, "visible@corp.example", "quarterly numbers", "Mon, 2 Jan 2023 10:00:00 +0000", "see attached"),
			Envelopes: []sealmail.Envelope{env}, Internal: []string{"corp.example"}},
		{ID: 2, Raw: msg("bob@corp.example", "ann@outside.example", "lunch", "Tue, 3 Jan 2023 10:00:00 +0000", "pizza")},
	}
	if err := x.Add(ctx, docs); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		q    string
		want []sealmail.MessageID
	}{
		{"from:journal.sender@corp.example", []sealmail.MessageID{1}},
		{"from:ann@outside.example", []sealmail.MessageID{1}},
		{"from:@corp.example", []sealmail.MessageID{1, 2}},
		{"from:corp.example", []sealmail.MessageID{1, 2}},
		{`from:"ann smith"`, []sealmail.MessageID{1}},
		{"from:smith", []sealmail.MessageID{1}},
		{"to:hidden@corp.example", []sealmail.MessageID{1}},
		{"to:member@corp.example", []sealmail.MessageID{1}},
		{"to:copy@partner.example", []sealmail.MessageID{1}},
		{"to:@outside.example", []sealmail.MessageID{2}},
		{"cc:copy@partner.example", []sealmail.MessageID{1}},
		{"cc:hidden@corp.example", nil},
		{"bcc:hidden@corp.example", []sealmail.MessageID{1}},
		{"bcc:hidden", []sealmail.MessageID{1}},
		{"bcc:copy@partner.example", nil},
		{"involved:hidden@corp.example", []sealmail.MessageID{1}},
		{"involved:list@corp.example", []sealmail.MessageID{1}},
		{"involved:ann@outside.example", []sealmail.MessageID{2}}, // doc 1 limits involved to internal domains
		{"involved:bob@corp.example", []sealmail.MessageID{2}},
		{"hidden", []sealmail.MessageID{1}}, // bare words search addresses
		{"message-id:lunch@test.example", []sealmail.MessageID{2}},
		{"from:bounce@lists.example", []sealmail.MessageID{3}},
		{"to:journal-copy@corp.example", []sealmail.MessageID{3}},
		{"bcc:journal-copy@corp.example", nil},
		{"forged", nil}, // untrusted claims are not indexed
		{"from:forged@evil.example", nil},
		{"message-id:<LUNCH@test.example>", []sealmail.MessageID{2}},
	}
	for _, tt := range tests {
		if got := ids(t, x, tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("IDs(%q) = %v, want %v", tt.q, got, tt.want)
		}
	}
}

func TestSearchOrderPagingAndHits(t *testing.T) {
	x := openTemp(t)
	ctx := context.Background()
	var docs []Doc
	base := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := 1; i <= 25; i++ {
		d := base.AddDate(0, 0, i)
		docs = append(docs, Doc{ID: sealmail.MessageID(i),
			Raw: msg(fmt.Sprintf("Sender %d <s%d@example.com>", i, i), "r@example.com", fmt.Sprintf("report %d", i), d.Format(time.RFC1123Z), "common words")})
	}
	// No Date header: dated by Received.
	docs = append(docs, Doc{ID: 26, Raw: []byte("Subject: undated\r\n\r\ncommon words\r\n"), Received: base})
	if err := x.Add(ctx, docs); err != nil {
		t.Fatal(err)
	}
	res, err := x.Search(ctx, "common", SearchOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 26 || len(res.Hits) != 10 {
		t.Fatalf("Search total %d, %d hits; want 26, 10", res.Total, len(res.Hits))
	}
	h := res.Hits[0]
	if h.ID != 25 || h.Subject != "report 25" || h.From != "Sender 25 <s25@example.com>" ||
		!h.Date.Equal(base.AddDate(0, 0, 25)) || h.Size != int64(len(docs[24].Raw)) || h.HasAttachment {
		t.Errorf("first hit = %+v, want id 25 with its fields", h)
	}
	res, err = x.Search(ctx, "common", SearchOptions{Limit: 10, Offset: 20})
	if err != nil {
		t.Fatal(err)
	}
	var got []sealmail.MessageID
	for _, h := range res.Hits {
		got = append(got, h.ID)
	}
	if want := []sealmail.MessageID{5, 4, 3, 2, 1, 26}; !slices.Equal(got, want) {
		t.Errorf("page 3 = %v, want %v", got, want)
	}
	res, err = x.Search(ctx, "common", SearchOptions{Limit: 2, Oldest: true})
	if err != nil || len(res.Hits) != 2 || res.Hits[0].ID != 26 || res.Hits[1].ID != 1 {
		t.Errorf("oldest first = %+v, %v; want 26, 1", res, err)
	}
	for q, want := range map[string]int{
		"after:2024-03-05":                       22, // 4th..25th (Mar 5..26)
		"before:2024-03-05":                      4,  // 1st..3rd and the undated one (Mar 1)
		"after:2024-03-05 before:2024-03-06":     1,
		"after:2024-03-02 AND before:2024-03-02": 0,
	} {
		if n, err := x.Count(ctx, q); err != nil || n != want {
			t.Errorf("Count(%q) = %d, %v; want %d", q, n, err, want)
		}
	}
}

func TestSizeAndAttachment(t *testing.T) {
	x := openTemp(t)
	ctx := context.Background()
	big := "Subject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n--b\r\n" +
		"Content-Type: application/pdf; name=\"scan.pdf\"\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + strings.Repeat("QUJDRA==\r\n", 200<<10/10) + "--b--\r\n"
	small := "Subject: small\r\n\r\nhello\r\n"
	if err := x.Add(ctx, []Doc{{ID: 1, Raw: []byte(big)}, {ID: 2, Raw: []byte(small)}}); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string][]sealmail.MessageID{
		"larger:100K":          {1},
		"smaller:100K":         {2},
		"larger:1M":            nil,
		"has:attachment":       {1},
		"-has:attachment":      {2},
		"filename:scan.pdf":    {1},
		"attachment:scan":      {1},
		"scan":                 {1},
		"larger:10 smaller:1K": {2},
	} {
		if got := ids(t, x, q); !slices.Equal(got, want) {
			t.Errorf("IDs(%q) = %v, want %v", q, got, want)
		}
	}
	res, err := x.Search(ctx, "big", SearchOptions{})
	if err != nil || len(res.Hits) != 1 || !res.Hits[0].HasAttachment || res.Hits[0].Size != int64(len(big)) {
		t.Errorf("Search(big) = %+v, %v; want one hit with attachment and size %d", res, err, len(big))
	}
}

func TestReplaceDeleteReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	x, err := Open(dir, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	add := func(id sealmail.MessageID, body string) {
		t.Helper()
		if err := x.Add(ctx, []Doc{{ID: id, Raw: msg("a@b.example", "c@d.example", "s", "", body)}}); err != nil {
			t.Fatal(err)
		}
	}
	add(1, "apples")
	add(2, "bananas")
	add(1, "cherries") // replaces
	// One ID twice in a batch: the last one wins.
	if err := x.Add(ctx, []Doc{
		{ID: 3, Raw: msg("a@b.example", "c@d.example", "s", "", "dates")},
		{ID: 3, Raw: msg("a@b.example", "c@d.example", "s", "", "figs")},
	}); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, x, "dates OR figs"); !slices.Equal(got, []sealmail.MessageID{3}) {
		t.Errorf("IDs(dates OR figs) = %v, want [3]", got)
	}
	if n, _ := x.Count(ctx, "figs"); n != 1 {
		t.Errorf("Count(figs) = %d, want 1", n)
	}
	if got := ids(t, x, "apples"); got != nil {
		t.Errorf("after replace, IDs(apples) = %v, want none", got)
	}
	if got := ids(t, x, "cherries"); !slices.Equal(got, []sealmail.MessageID{1}) {
		t.Errorf("after replace, IDs(cherries) = %v, want [1]", got)
	}
	if err := x.Delete(ctx, []sealmail.MessageID{2, 3, 99}); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, err := x.Count(ctx, "*"); !errors.Is(err, ErrClosed) {
		t.Errorf("Count after Close = %v, want ErrClosed", err)
	}
	if err := x.Add(ctx, []Doc{{ID: 3, Raw: []byte("x")}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close = %v, want ErrClosed", err)
	}

	x, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if y, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		if y != nil {
			y.Close()
		}
		t.Errorf("second Open of an open index = %v, want ErrLocked", err)
	}
	if got := ids(t, x, "*"); !slices.Equal(got, []sealmail.MessageID{1}) {
		t.Errorf("after reopen, IDs(*) = %v, want [1]", got)
	}
}

func TestSearchErrors(t *testing.T) {
	x := openTemp(t)
	ctx := context.Background()
	_, err := x.Search(ctx, "from:cworth AND (x", SearchOptions{})
	var se *query.SyntaxError
	if !errors.As(err, &se) || se.Pos != 18 || err.Error() != "query: at 18: expected ')'" {
		t.Errorf("Search(bad) error = %v, want query: at 18: expected ')'", err)
	}
	if err := x.Add(ctx, []Doc{{ID: 1, Raw: []byte("Subject: a\r\n\r\nb")}}); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	if err := x.IDs(ctx, "*", func(sealmail.MessageID) error { return stop }); err != stop {
		t.Errorf("IDs with failing callback = %v, want %v", err, stop)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := x.Add(cctx, []Doc{{ID: 2, Raw: []byte("x")}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Add with cancelled context = %v, want context.Canceled", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	x := openTemp(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := range 10 {
				id := sealmail.MessageID(g*100 + i + 1)
				if err := x.Add(ctx, []Doc{{ID: id, Raw: msg("a@b.example", "c@d.example", "conc", "", "shared words")}}); err != nil {
					t.Errorf("Add: %v", err)
					return
				}
				if _, err := x.Search(ctx, "shared", SearchOptions{Limit: 5}); err != nil {
					t.Errorf("Search: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n, err := x.Count(ctx, "shared words"); err != nil || n != 30 {
		t.Errorf("Count after concurrent adds = %d, %v; want 30", n, err)
	}
}

// TestBatchWithState: documents, deletions and the caller's state go in
// one batch; the state document is never a search result ("*" included);
// each document returns the records and seq it was stored with, and
// AfterSeq finds the documents updated after a point.
func TestBatchWithState(t *testing.T) {
	dir := t.TempDir()
	x, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { x.Close() }()
	ctx := context.Background()
	raw := msg("x@y.example", "list@y.example", "minutes", "Mon, 2 Jan 2023 10:00:00 +0000", "body")
	if st, err := x.State(ctx); err != nil || st != nil {
		t.Fatalf("State of a new index = %q, %v", st, err)
	}
	recs := []Record{{SHA256: "aa", Entry: 0}, {SHA256: "bb", Entry: 3}}
	err = x.Apply(ctx, Batch{Docs: []Doc{{ID: 1, Raw: raw, Seq: 5, Records: recs[:1]}, {ID: 2, Raw: raw, Seq: 6}, {ID: 3, Raw: raw, Seq: 7}},
		State: []byte(`{"seq":7}`)})
	if err != nil {
		t.Fatal(err)
	}
	err = x.Apply(ctx, Batch{Docs: []Doc{{ID: 1, Raw: raw, Seq: 9, Records: recs}}, Delete: []sealmail.MessageID{3, 42}, State: []byte(`{"seq":9}`)})
	if err != nil {
		t.Fatal(err)
	}
	x.Close()
	if x, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if st, err := x.State(ctx); err != nil || string(st) != `{"seq":9}` {
		t.Errorf("State = %q, %v", st, err)
	}
	if got := ids(t, x, "*"); !slices.Equal(got, []sealmail.MessageID{1, 2}) {
		t.Errorf(`IDs("*") = %v, want [1 2] (not the state, not the deleted)`, got)
	}
	if n, _ := x.Count(ctx, "-minutes"); n != 0 {
		t.Errorf("Count(-minutes) = %d, want 0 (the state document is no message)", n)
	}
	s, found, err := x.Lookup(ctx, 1)
	if err != nil || !found || s.Seq != 9 || !slices.Equal(s.Records, recs) {
		t.Errorf("Lookup(1) = %+v, %v, %v", s, found, err)
	}
	if _, found, _ := x.Lookup(ctx, 3); found {
		t.Error("Lookup(3) found a deleted document")
	}
	q, _ := Parse("subject:minutes")
	q.AfterSeq = 6
	var after []sealmail.MessageID
	if err := x.Each(ctx, q, func(s Stored) error { after = append(after, s.ID); return nil }); err != nil || !slices.Equal(after, []sealmail.MessageID{1}) {
		t.Errorf("documents updated after seq 6 = %v, %v; want [1]", after, err)
	}
}
