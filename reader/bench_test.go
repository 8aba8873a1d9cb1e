// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/index"
	"github.com/sealmail/sealmail/store"
)

// benchMessages are 2,000 messages of about 3 KB of words.
func benchMessages() [][]byte {
	words := strings.Fields("invoice contract meeting quarterly report figures board minutes lunch travel budget review draft")
	var out [][]byte
	for i := range 2000 {
		var b strings.Builder
		fmt.Fprintf(&b, "From: a%d@example.com\r\nTo: b%d@example.org\r\nSubject: %s %d\r\nDate: Mon, 3 Mar 2025 10:00:00 +0000\r\n\r\n", i%50, i%70, words[i%len(words)], i)
		for b.Len() < 3000 {
			b.WriteString(words[(b.Len()*7+i)%len(words)])
			b.WriteByte(' ')
		}
		out = append(out, []byte(b.String()))
	}
	return out
}

// BenchmarkTail measures what the reader adds to indexing: following the
// feed of 2,000 stored messages (chain and checkpoints checked, every
// record hashed, decrypted, the documents built and committed with the
// cursor), against the yardstick of indexing the same plaintext directly
// (index.Add), in the same run. Reported: ns per message of each.
func BenchmarkTail(b *testing.B) {
	msgs := benchMessages()
	for b.Loop() {
		b.StopTimer()
		g := newRig(b, archive.Options{Store: store.Options{SealSize: 1 << 30}}, false)
		env := &sealmail.Envelope{MailFrom: "a@example.com", RcptTo: []string{"b@example.org"}, ClientIP: "192.0.2.1", Received: time.Now()}
		for _, m := range msgs {
			if _, err := g.a.Ingest(archive.WithActor(context.Background(), "bench"), env, m); err != nil {
				b.Fatal(err)
			}
		}
		x, err := index.Open(b.TempDir(), index.Options{})
		if err != nil {
			b.Fatal(err)
		}
		docs := make([]index.Doc, len(msgs))
		for i, m := range msgs {
			docs[i] = index.Doc{ID: sealmail.MessageID(i + 1), Raw: m, Envelopes: []sealmail.Envelope{*env}, Received: env.Received}
		}
		b.StartTimer()
		t0 := time.Now()
		if err := x.Add(context.Background(), docs); err != nil {
			b.Fatal(err)
		}
		bare := time.Since(t0)
		t0 = time.Now()
		for full := true; full; {
			if full, err = g.r.step(context.Background(), g.r.identities()); err != nil {
				b.Fatal(err)
			}
		}
		tail := time.Since(t0)
		b.StopTimer()
		x.Close()
		b.ReportMetric(float64(bare.Nanoseconds())/float64(len(msgs)), "ns/msg-index.Add")
		b.ReportMetric(float64(tail.Nanoseconds())/float64(len(msgs)), "ns/msg-tail")
		b.ReportMetric(float64(tail)/float64(bare), "tail/index.Add")
		b.StartTimer()
	}
}
