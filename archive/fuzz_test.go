// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"bytes"
	"context"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
)

// feedSample is a small archive's feed from the start: its chain's
// starting point, the lines and the records, for fuzz seeds.
func feedSample(f *testing.F) (Chain, []byte, [][]byte, [][]byte) {
	f.Helper()
	id, _ := age.GenerateX25519Identity()
	a, err := Create(f.TempDir(), []string{id.Recipient().String()}, Options{MinFreeBytes: -1, CheckpointEvery: 3})
	if err != nil {
		f.Fatal(err)
	}
	defer a.Close()
	ctx := WithActor(context.Background(), "fuzz")
	for _, rcpt := range []string{"a@example.org", "b@example.org"} {
		env := &sealmail.Envelope{MailFrom: "x@example.com", RcptTo: []string{rcpt}, ClientIP: "192.0.2.1", Received: time.Now()}
		if _, err := a.Ingest(ctx, env, []byte("Subject: s\r\n\r\nbody\r\n")); err != nil {
			f.Fatal(err)
		}
	}
	p, err := a.Feed(ctx, 0, 0)
	if err != nil {
		f.Fatal(err)
	}
	key := a.AuditKey()
	pub, _ := ParseAuditKey(key)
	var recs [][]byte
	for _, r := range p.Records {
		recs = append(recs, r.Raw)
	}
	return Chain{Archive: key.Archive, Key: pub}, p.Genesis, p.Lines, recs
}

// FuzzChainNext: whatever a feed carries after a verified prefix, the chain
// neither panics nor moves on an error, and moves by one entry otherwise.
func FuzzChainNext(f *testing.F) {
	start, genesis, lines, _ := feedSample(f)
	for i := range lines {
		f.Add(i, lines[i])
		f.Add(i, bytes.Replace(lines[i], []byte(`"seq":`), []byte(`"seq":1`), 1))
	}
	f.Fuzz(func(t *testing.T, prefix int, line []byte) {
		c := start
		if err := c.Genesis(genesis); err != nil {
			t.Fatal(err)
		}
		for _, l := range lines[:max(0, min(prefix, len(lines)))] {
			if _, err := c.Next(l); err != nil {
				t.Fatal(err)
			}
		}
		before := c
		e, err := c.Next(line)
		switch {
		case err != nil && (c.Seq != before.Seq || c.Head != before.Head):
			t.Fatalf("Next failed (%v) but moved the chain", err)
		case err == nil && (e.Seq != before.Seq+1 || c.Seq != e.Seq):
			t.Fatalf("Next took entry %d after %d", e.Seq, before.Seq)
		}
	})
}

// FuzzParseRecord: a record from anywhere is checked without panicking,
// and its entries are only looked up within bounds.
func FuzzParseRecord(f *testing.F) {
	_, _, _, recs := feedSample(f)
	for _, r := range recs {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := ParseRecord(raw)
		if err != nil {
			return
		}
		for i := -1; i < 3; i++ {
			v.Names(i, 1, "message")
		}
	})
}
