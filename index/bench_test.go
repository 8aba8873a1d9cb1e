// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/extract"
)

// benchMessages are real list messages (notmuch's corpora).
func benchMessages(b *testing.B) []corpusFile {
	files := readCorpus(b, "notmuch-default", "notmuch-corpora/lkml")
	if len(files) == 0 {
		b.Fatal("no corpus")
	}
	return files
}

// BenchmarkIndex measures indexing throughput (messages/s, in batches of
// 500 as the archive feeder writes them, durable per batch).
func BenchmarkIndex(b *testing.B) {
	files := benchMessages(b)
	x := openTemp(b)
	ctx := context.Background()
	const batch = 500
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		var docs []Doc
		for j := i; j < b.N && j < i+batch; j++ {
			f := files[j%len(files)]
			bytes += int64(len(f.raw))
			docs = append(docs, Doc{ID: sealmail.MessageID(j + 1), Raw: f.raw})
		}
		if err := x.Add(ctx, docs); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(bytes)/1e6/b.Elapsed().Seconds(), "MB/s")
}

// BenchmarkExtract measures text extraction alone.
func BenchmarkExtract(b *testing.B) {
	files := benchMessages(b)
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := files[i%len(files)]
		bytes += int64(len(f.raw))
		Extract(f.raw)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(bytes)/1e6/b.Elapsed().Seconds(), "MB/s")
}

// BenchmarkSearch measures a typical query with paging on an index of
// 5,000 messages.
func BenchmarkSearch(b *testing.B) {
	files := benchMessages(b)
	x := openTemp(b)
	ctx := context.Background()
	var docs []Doc
	for j := range 5000 {
		docs = append(docs, Doc{ID: sealmail.MessageID(j + 1), Raw: files[j%len(files)].raw})
	}
	if err := x.Add(ctx, docs); err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{"from:cworth", "kernel", `"signed-off-by" after:2010-01-01`, "to:@vger.kernel.org OR notmuch"} {
		b.Run(q, func(b *testing.B) {
			for range b.N {
				if _, err := x.Search(ctx, q, SearchOptions{Limit: 50}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIndexAttachments measures the index-time overhead of attachment
// extraction on a realistic mix: list messages, one in eight (12 %, as in
// bench/gen_mail.py) carrying a document attachment (the generated corpus
// of ../extract/testdata, every format in turn). "names" indexes names
// only (no Extractor), "sandbox" extracts each document in the sandbox.
func BenchmarkIndexAttachments(b *testing.B) {
	files := benchMessages(b)
	docs := []struct{ file, ct string }{
		{"sample.pdf", "application/pdf"}, {"sample.docx", "application/octet-stream"},
		{"sample.xlsx", "application/octet-stream"}, {"sample.odt", "application/vnd.oasis.opendocument.text"},
		{"sample.doc", "application/msword"}, {"sample.xls", "application/vnd.ms-excel"},
		{"sample.rtf", "application/rtf"}, {"sample.zip", "application/zip"},
	}
	var mix [][]byte
	for i := range 800 {
		if i%8 == 0 {
			d := docs[(i/8)%len(docs)]
			mix = append(mix, withAttachments(fmt.Sprintf("message %d", i), [3]string{d.file, d.ct, docFile(b, "corpus/"+d.file)}))
		} else {
			mix = append(mix, files[i%len(files)].raw)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	sb, err := extract.NewSandbox(extract.Options{Command: []string{exe, "extract-child"}})
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range []struct {
		name string
		ext  Extractor
	}{{"names", nil}, {"sandbox", sb}} {
		b.Run(m.name, func(b *testing.B) {
			x, err := Open(b.TempDir(), Options{Extractor: m.ext})
			if err != nil {
				b.Fatal(err)
			}
			defer x.Close()
			ctx := context.Background()
			const batch = 500
			n := 0
			for b.Loop() {
				var docs []Doc
				for range batch {
					n++
					docs = append(docs, Doc{ID: sealmail.MessageID(n), Raw: mix[n%len(mix)]})
				}
				if err := x.Add(ctx, docs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
			st := x.ExtractStats()
			b.ReportMetric(st.Time.Seconds()/b.Elapsed().Seconds(), "extract-s/s")
		})
	}
}
