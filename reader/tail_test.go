// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
)

// TestPipelineStopsAnywhere runs the pipelined tail over pages of 7 audit
// lines (a message's second receipt often in a later page than its first,
// so built on a page not committed yet) and stops it again and again at
// varying points, closing the reader and opening it again on its state
// each time. After every stop, every message an ingest entry at or below
// the cursor names is in the index with every receipt at or below it; in
// the end every message is indexed exactly once with all its receipts.
func TestPipelineStopsAnywhere(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{}, false)
	const n = 60
	msg := func(i int) string { return fmt.Sprintf("Subject: m%d\r\n\r\nword%d\r\n", i, i) }
	for i := range n {
		g.ingest(msg(i), "a@example.org")
		if i%5 == 4 {
			g.ingest(msg(i-3), "b@example.org") // a second receipt of message i-2
		}
	}
	ctx := context.Background()
	for round := 1; ; round++ {
		if round > 200 {
			t.Fatal("the tail did not catch up in 200 rounds")
		}
		g.r.opts.PageLines = 7
		start := g.r.Coverage().IndexedSeq
		fctx, cancel := context.WithCancel(ctx)
		go func() { // stop after a varying number of commits
			for g.r.Coverage().IndexedSeq < start+uint64(7*(round%4)) && fctx.Err() == nil {
				time.Sleep(100 * time.Microsecond)
			}
			cancel()
		}()
		_, err := g.r.follow(fctx)
		cancel()
		g.checkBelowCursor()
		if err == nil && g.r.Coverage().CaughtUp {
			t.Logf("caught up after %d stops", round-1)
			break
		}
		if err := g.r.Close(); err != nil {
			t.Fatal(err)
		}
		g.open(false)
	}
	x, done := g.r.index()
	defer done()
	if got, err := x.Count(ctx, "*"); err != nil || got != n {
		t.Errorf("indexed %d messages (%v), want %d", got, err, n)
	}
	if got, err := x.Count(ctx, "to:b@example.org"); err != nil || got != n/5 {
		t.Errorf("second receipts: %d messages (%v), want %d", got, err, n/5)
	}
}

// checkBelowCursor checks that the index holds every message, with every
// receipt, that an ingest entry at or below the reader's cursor names.
func (g *rig) checkBelowCursor() {
	g.t.Helper()
	ctx := context.Background()
	g.r.tailMu.Lock()
	cur := g.r.cur.Seq
	g.r.tailMu.Unlock()
	feed, err := g.rcv.Feed(ctx, 0, archive.FeedMaxLines)
	if err != nil {
		g.t.Fatal(err)
	}
	key, err := archive.ParseAuditKey(g.r.key)
	if err != nil {
		g.t.Fatal(err)
	}
	// The receipts of each message at or below the cursor, from the lines.
	want := map[sealmail.MessageID]int{}
	chain := &archive.Chain{Archive: g.r.key.Archive, Key: key}
	if err := chain.Genesis(feed.Genesis); err != nil {
		g.t.Fatal(err)
	}
	for _, line := range feed.Lines {
		e, err := chain.Next(line)
		if err != nil {
			g.t.Fatal(err)
		}
		if e.Seq > cur {
			break
		}
		if in := e.Ingest; in != nil && (in.Kind == "message" || in.Kind == "envelope") {
			want[in.ID]++
		}
	}
	x, done := g.r.index()
	defer done()
	for id, receipts := range want {
		s, found, err := x.Lookup(ctx, id)
		switch {
		case err != nil:
			g.t.Fatal(err)
		case !found:
			g.t.Fatalf("message %d is named at or below the cursor (%d) but not indexed", id, cur)
		case len(s.Records) < receipts:
			g.t.Fatalf("message %d has %d receipts in the index, %d at or below the cursor (%d)", id, len(s.Records), receipts, cur)
		}
	}
}
