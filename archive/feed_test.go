// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/store"
)

// TestFeed follows the feed while messages (and second receipts) arrive
// from many goroutines and one is deleted: every line continues the chain
// from the genesis (checkpoints signed by the audit key), every message or
// envelope ingest entry of a page names a message the page carries, and,
// the feed never passing its horizon, one whose catalog commit is done
// (live with at least that receipt, or deleted), whose vouched record is
// in the page byte for byte, and which decrypts to what was sent.
func TestFeed(t *testing.T) {
	t.Parallel()
	id, _ := age.GenerateX25519Identity()
	a, err := Create(t.TempDir(), []string{id.Recipient().String()}, Options{MinFreeBytes: -1, CheckpointEvery: 25})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := WithActor(context.Background(), "test")
	key := a.AuditKey()
	pub, err := ParseAuditKey(key)
	if err != nil {
		t.Fatal(err)
	}
	chain := &Chain{Archive: key.Archive, Key: pub}

	var sent sync.Map // id → original
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 30 {
				data := fmt.Appendf(nil, "Subject: m %d/%d\r\n\r\nbody\r\n", w, i%20) // i ≥ 20: second receipts
				env := &sealmail.Envelope{MailFrom: "a@example.com", RcptTo: []string{fmt.Sprintf("r%d@example.org", i)}, ClientIP: "192.0.2.1", Received: time.Now()}
				mid, err := a.Ingest(ctx, env, data)
				if err != nil {
					t.Error(err)
					return
				}
				sent.Store(mid, data)
			}
		})
	}
	var after uint64
	lines, ingests, checkpoints := 0, 0, 0
	check := func(limit int) int {
		p, err := a.Feed(ctx, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if after == 0 {
			if err := chain.Genesis(p.Genesis); err != nil {
				t.Fatal(err)
			}
		}
		msgs := map[uint64]FeedMessage{}
		for _, m := range p.Messages {
			msgs[m.ID] = m
		}
		recs := map[string][]byte{}
		for _, r := range p.Records {
			if sum := sha256.Sum256(r.Raw); hex.EncodeToString(sum[:]) != r.SHA256 {
				t.Fatalf("record %s: its bytes hash to %x", r.SHA256, sum)
			}
			recs[r.SHA256] = r.Raw
		}
		for _, line := range p.Lines {
			e, err := chain.Next(line)
			if err != nil {
				t.Fatalf("line after %d: %v", chain.Seq, err)
			}
			if e.Seq > p.Horizon {
				t.Fatalf("line %d beyond the horizon %d", e.Seq, p.Horizon)
			}
			if e.Type == "checkpoint" {
				checkpoints++
			}
			in := e.Ingest
			if in == nil || in.Kind == "tombstone" {
				continue
			}
			ingests++
			m, ok := msgs[uint64(in.ID)]
			switch {
			case !ok:
				t.Fatalf("ingest entry %d names message %d, which the page does not carry", e.Seq, in.ID)
			case m.State == FeedDeleted:
				continue
			case m.State != FeedLive || m.Receipts < in.Receipt:
				t.Fatalf("ingest entry %d (message %d receipt %d): %s with %d receipts in the page: the feed passed its horizon", e.Seq, in.ID, in.Receipt, m.State, m.Receipts)
			}
			if !slices.Contains(m.Records, in.Ref) {
				t.Fatalf("message %d: the record entry %v its ingest entry vouches for is not among its records %v", in.ID, in.Ref, m.Records)
			}
			raw := recs[in.Ref.Record]
			if raw == nil {
				continue // carried by an earlier page
			}
			rv, err := ParseRecord(raw)
			if err != nil || !rv.Names(in.Ref.Entry, in.ID, in.Kind) {
				t.Fatalf("record %s entry %d: %v, or not message %d's %s", in.Ref.Record, in.Ref.Entry, err, in.ID, in.Kind)
			}
			if in.Kind == "message" {
				o, err := rv.Decrypt([]age.Identity{id})
				if err != nil {
					t.Fatal(err)
				}
				orig, _, err := o.Entry(in.Ref.Entry)
				want, _ := sent.Load(in.ID)
				if err != nil || want != nil && !bytes.Equal(orig, want.([]byte)) {
					t.Fatalf("message %d decrypts to %q, %v; want %q", in.ID, orig, err, want)
				}
			}
		}
		lines += len(p.Lines)
		after = chain.Seq
		return len(p.Lines)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		check(7)
	}
	// Delete one message; the rest of the feed shows its tombstone and the
	// message as deleted.
	e, err := a.audit.Append(ctx, audit.Event{Type: audit.TypeErase, Actor: "test", Fields: map[string]any{"ids": []uint64{1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.Delete(ctx, []store.Deletion{{ID: 1, Reason: "erasure", Audit: e.Seq}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for check(0) > 0 {
	}
	if ingests < 120 || checkpoints == 0 {
		t.Errorf("the feed showed %d message and envelope ingest entries and %d checkpoints, want 120 and some", ingests, checkpoints)
	}
	if head, _ := a.audit.Head(); chain.Seq != head {
		t.Errorf("the feed ended at %d, the log at %d", chain.Seq, head)
	}
	// A page cannot start beyond the log.
	if _, err := a.Feed(ctx, chain.Seq+10, 0); AsError(err).Code != CodeInvalid {
		t.Errorf("Feed beyond the head: %v, want invalid", err)
	}
}
