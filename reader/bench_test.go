// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

// genMail returns n messages of bench/gen_mail.py's realistic mix (seed
// 12); it skips b without python3.
func genMail(b *testing.B, n int) [][]byte {
	if _, err := exec.LookPath("python3"); err != nil {
		b.Skip("python3 not found: bench/gen_mail.py cannot run")
	}
	dir := filepath.Join(b.TempDir(), "Maildir")
	if out, err := exec.Command("python3", "../bench/gen_mail.py", "--out", dir, "-n", strconv.Itoa(n), "--seed", "12").CombinedOutput(); err != nil {
		b.Fatalf("gen_mail.py: %v: %s", err, out)
	}
	var msgs [][]byte
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() {
			m, err := os.ReadFile(p)
			msgs = append(msgs, m)
			return err
		}
		return err
	})
	if err != nil || len(msgs) != n {
		b.Fatalf("read %d of %d generated messages: %v", len(msgs), n, err)
	}
	return msgs
}

// BenchmarkRebuild measures reindex --all in process: N messages of the
// realistic mix (SEALMAIL_BENCH_N, default 2000), ingested by 16
// concurrent senders (so records hold a group commit's messages, as
// under load), are indexed again from the audit log's first entry by the
// pipelined tail ([Reader.follow]) and, for comparison, page after page
// by [Reader.step]; the yardstick is index.Add of the same plaintext in
// pages of the same size, same run. Pages of 1,000 audit lines. Reported:
// ns per message of each and the ratios. Attachments are indexed by name
// (no Extractor).
func BenchmarkRebuild(b *testing.B) {
	n := 2000
	if s := os.Getenv("SEALMAIL_BENCH_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	msgs := genMail(b, n)
	g := newRig(b, archive.Options{Store: store.Options{SealSize: 1 << 30}}, false)
	g.r.opts.PageLines = 1000
	env := &sealmail.Envelope{MailFrom: "a@example.com", RcptTo: []string{"b@example.org"}, ClientIP: "192.0.2.1", Received: time.Now()}
	var wg sync.WaitGroup
	next := make(chan []byte)
	for range 16 {
		wg.Go(func() {
			for m := range next {
				if _, err := g.a.Ingest(archive.WithActor(context.Background(), "bench"), env, m); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for _, m := range msgs {
		next <- m
	}
	close(next)
	wg.Wait()
	ctx := context.Background()
	ids := g.r.identities()
	for b.Loop() {
		b.StopTimer()
		x, err := index.Open(b.TempDir(), index.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		for i := 0; i < len(msgs); i += 1000 {
			var docs []index.Doc
			for j, m := range msgs[i:min(i+1000, len(msgs))] {
				docs = append(docs, index.Doc{ID: sealmail.MessageID(i + j + 1), Raw: m, Envelopes: []sealmail.Envelope{*env}, Received: env.Received})
			}
			if err := x.Add(ctx, docs); err != nil {
				b.Fatal(err)
			}
		}
		bare := time.Since(t0)
		b.StopTimer()
		x.Close()
		if err := g.r.rebuild(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 = time.Now()
		for full := true; full; {
			if full, err = g.r.step(ctx, ids); err != nil {
				b.Fatal(err)
			}
		}
		serial := time.Since(t0)
		b.StopTimer()
		if err := g.r.rebuild(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 = time.Now()
		if _, err := g.r.follow(ctx); err != nil {
			b.Fatal(err)
		}
		piped := time.Since(t0)
		b.StopTimer()
		if c := g.r.Coverage(); c.Indexed != n {
			b.Fatalf("rebuilt %d of %d messages", c.Indexed, n)
		}
		per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
		b.ReportMetric(per(bare), "ns/msg-index.Add")
		b.ReportMetric(per(serial), "ns/msg-step")
		b.ReportMetric(per(piped), "ns/msg-follow")
		b.ReportMetric(float64(piped)/float64(bare), "follow/index.Add")
		b.ReportMetric(float64(serial)/float64(piped), "step/follow")
		b.StartTimer()
	}
}
