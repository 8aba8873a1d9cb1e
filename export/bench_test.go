// SPDX-License-Identifier: Apache-2.0

package export

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealmail/sealmail"
)

// benchMessage is a 10 KB message with a folded, encoded subject.
var benchMessage = []byte("From: Alice <alice@example.com>\r\nTo: bob@example.com\r\n" +
	"Subject: =?UTF-8?Q?Quarterly_r=C3=A9sultats?=\r\n Q3\r\nDate: Tue, 1 Jan 2013 12:00:00 +0200\r\n\r\n" +
	strings.Repeat("From the desk of Alice: lorem ipsum dolor sit amet, consectetur.\r\n", 150))

func benchWriter(b *testing.B, open func(dir string) (Writer, error)) {
	w, err := open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	recv := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if err := w.Add(ctx, Item{ID: sealmail.MessageID(i), Received: recv, Raw: benchMessage}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkAdd(b *testing.B) {
	for _, f := range []struct {
		name string
		open func(dir string) (Writer, error)
	}{
		{"mbox", func(d string) (Writer, error) { return NewMbox(filepath.Join(d, "x.mbox"), Options{}) }},
		{"eml-zip", func(d string) (Writer, error) { return NewEMLZip(filepath.Join(d, "x.zip"), Options{}) }},
		{"eml-dir", func(d string) (Writer, error) { return NewEMLDir(filepath.Join(d, "x"), Options{}) }},
		{"pst", func(d string) (Writer, error) { return NewPST(filepath.Join(d, "x.pst"), Options{}) }},
	} {
		b.Run(f.name, func(b *testing.B) { benchWriter(b, f.open) })
	}
}

// Peak memory of a 10,000-message export, as docs/benchmarks.md reports it:
//
//	go test -c -o export.test ./export
//	/usr/bin/time -v ./export.test -test.run '^$' -test.bench '^BenchmarkAdd/mbox$' -test.benchtime 10000x

// BenchmarkRowMemory reports the heap kept per manifest row (the only
// state that grows with the message count).
func BenchmarkRowMemory(b *testing.B) {
	st := newState(Options{}, "mbox", digestOriginal)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		st.record(Item{ID: sealmail.MessageID(i), Raw: benchMessage}, fmt.Sprintf("20240101-000000-%d.eml", i))
	}
}
