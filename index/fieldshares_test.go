// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/index/internal/benchmail"
)

// TestFieldShares measures what each field costs: the index is built once
// with every field and once more without each field in turn, and a field's
// share is what leaving it out saves. By default it runs on a small part of
// the shared corpus and checks that leaving a field out never makes the
// index larger; bench/index.sh runs it on generated mail with
//
//	SEALMAIL_FIELD_SHARES=MAILDIR [SEALMAIL_FIELD_SHARES_N=5000] [SEALMAIL_FIELD_SHARES_OUT=FILE]
//
// (SEALMAIL_FIELD_SHARES_ONLY=f1,f2 measures those fields only)
// and puts the table (markdown) into its report.
func TestFieldShares(t *testing.T) {
	var raws [][]byte
	var envs bool
	if dir := os.Getenv("SEALMAIL_FIELD_SHARES"); dir != "" {
		n, _ := strconv.Atoi(os.Getenv("SEALMAIL_FIELD_SHARES_N"))
		if n <= 0 {
			n = 5000
		}
		paths, err := benchmail.Files(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths[:min(n, len(paths))] {
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			raws = append(raws, raw)
		}
		envs = true
	} else {
		for _, f := range readCorpus(t, "notmuch-corpora", "mu") {
			raws = append(raws, f.raw)
		}
	}
	docs := make([]Doc, len(raws))
	var mail int64
	for i, raw := range raws {
		docs[i] = Doc{ID: sealmail.MessageID(i + 1), Raw: raw, Seq: uint64(i + 1),
			Records: []Record{{SHA256: strings.Repeat("ab", 32), Entry: i + 1}}}
		if envs {
			docs[i].Envelopes = []sealmail.Envelope{benchmail.Envelope(raw)}
		}
		mail += int64(len(raw))
	}
	build := func(omit string) (int64, []string) {
		dir := t.TempDir()
		x, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if omit != "" {
			x.omit = map[string]bool{omit: true}
		}
		if err := x.Add(context.Background(), docs); err != nil {
			t.Fatal(err)
		}
		var fields []string
		if omit == "" {
			for _, d := range docs {
				for _, f := range *buildDocument(&d, extractWith(context.Background(), d.Raw, nil)) {
					if !slices.Contains(fields, f.Name()) && f.Name() != fID {
						fields = append(fields, f.Name())
					}
				}
			}
		}
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		return dirSize(t, dir), fields
	}
	full, fields := build("")
	if full == 0 {
		t.Fatal("the full index takes no space")
	}
	slices.Sort(fields)
	if only := os.Getenv("SEALMAIL_FIELD_SHARES_ONLY"); only != "" {
		fields = strings.Split(only, ",")
	}
	type share struct {
		field string
		saved int64
	}
	var shares []share
	for _, f := range fields {
		size, _ := build(f)
		// A field left out can save nothing (a rare field) but never
		// cost more: allow Bluge's file rounding.
		if size > full+512 {
			t.Errorf("without field %s the index is %d bytes, with it %d", f, size, full)
		}
		shares = append(shares, share{f, full - size})
	}
	slices.SortFunc(shares, func(a, b share) int { return int(b.saved - a.saved) })
	var b strings.Builder
	fmt.Fprintf(&b, "index of %d messages (%.1f MB of mail): %.1f MB = %.1f %% of the mail\n\n",
		len(docs), float64(mail)/1e6, float64(full)/1e6, 100*float64(full)/float64(mail))
	b.WriteString("| field | MB saved without it | % of the index | % of the mail |\n|---|---|---|---|\n")
	var sum int64
	for _, s := range shares {
		sum += s.saved
		fmt.Fprintf(&b, "| %s | %.2f | %.1f | %.2f |\n", s.field, float64(s.saved)/1e6,
			100*float64(s.saved)/float64(full), 100*float64(s.saved)/float64(mail))
	}
	fmt.Fprintf(&b, "| (rest: ids, segment overhead) | %.2f | %.1f | %.2f |\n", float64(full-sum)/1e6,
		100*float64(full-sum)/float64(full), 100*float64(full-sum)/float64(mail))
	t.Log("\n" + b.String())
	if out := os.Getenv("SEALMAIL_FIELD_SHARES_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// dirSize is the size of the files under dir.
func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
