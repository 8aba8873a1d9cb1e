// SPDX-License-Identifier: Apache-2.0

// Command indexbench indexes a Maildir (or any directory of message files)
// with package index and times queries, for bench/index.sh.
//
//	indexbench -mail DIR -index DIR [-batch 500] [-runs 5] 'query' ...
//
// It prints one line "indexed N messages BYTES bytes in SECONDS s" and then,
// per query, "query<TAB>hits<TAB>median ms<TAB>min ms<TAB>open+query ms": the
// in-process latency on an open index (warm), and the latency of opening the
// index and running the query once (what a CLI process pays besides its own
// start). A query prefixed "search:" is a Search for the newest 50 hits;
// others are a Count.
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/index"
)

func main() {
	mail := flag.String("mail", "", "directory of message files (walked recursively)")
	dir := flag.String("index", "", "index directory (created)")
	batch := flag.Int("batch", 500, "messages per Add batch")
	runs := flag.Int("runs", 5, "timed runs per query")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of indexing to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "indexbench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "indexbench:", err)
			os.Exit(1)
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	if *mail == "" || *dir == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*mail, *dir, *batch, *runs, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "indexbench:", err)
		os.Exit(1)
	}
}

// stopProfile ends CPU profiling after indexing (a no-op without -cpuprofile).
var stopProfile = func() {}

func run(mail, dir string, batch, runs int, queries []string) error {
	ctx := context.Background()
	var paths []string
	err := filepath.WalkDir(mail, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			paths = append(paths, p)
		} else if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != mail {
			return filepath.SkipDir // .notmuch
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(paths)

	t0 := time.Now()
	x, err := index.Open(dir, index.Options{})
	if err != nil {
		return err
	}
	var total int64
	for i := 0; i < len(paths); i += batch {
		var docs []index.Doc
		for j := i; j < len(paths) && j < i+batch; j++ {
			raw, err := os.ReadFile(paths[j])
			if err != nil {
				return err
			}
			total += int64(len(raw))
			docs = append(docs, index.Doc{ID: sealmail.MessageID(j + 1), Raw: raw})
		}
		ta := time.Now()
		if err := x.Add(ctx, docs); err != nil {
			return err
		}
		if os.Getenv("INDEXBENCH_VERBOSE") != "" {
			fmt.Fprintf(os.Stderr, "batch %d: %v\n", i/batch, time.Since(ta))
		}
	}
	if err := x.Close(); err != nil {
		return err
	}
	el := time.Since(t0)
	stopProfile()
	fmt.Printf("indexed %d messages %d bytes in %.2f s\n", len(paths), total, el.Seconds())

	for _, q := range queries {
		search := strings.HasPrefix(q, "search:")
		q = strings.TrimPrefix(q, "search:")
		one := func(x *index.Index) (int, error) {
			if search {
				r, err := x.Search(ctx, q, index.SearchOptions{Limit: 50})
				if err != nil {
					return 0, err
				}
				return len(r.Hits), nil
			}
			return x.Count(ctx, q)
		}
		// Open, query once, close: what a CLI process pays besides its start.
		t := time.Now()
		x, err := index.Open(dir, index.Options{})
		if err != nil {
			return err
		}
		hits, err := one(x)
		if err != nil {
			_ = x.Close()
			return fmt.Errorf("query %q: %w", q, err)
		}
		cold := time.Since(t)
		var ds []time.Duration
		for range runs {
			t := time.Now()
			if _, err := one(x); err != nil {
				_ = x.Close()
				return err
			}
			ds = append(ds, time.Since(t))
		}
		if err := x.Close(); err != nil {
			return err
		}
		slices.Sort(ds)
		fmt.Printf("%s\t%d\t%.2f\t%.2f\t%.2f\n", q, hits, ms(ds[len(ds)/2]), ms(ds[0]), ms(cold))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
