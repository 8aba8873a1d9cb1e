// SPDX-License-Identifier: Apache-2.0

// Command indexbench indexes a Maildir (or any directory of message files)
// with package index and times queries, for bench/index.sh and
// bench/index-large.sh.
//
//	indexbench -mail DIR -index DIR [-batch 500] [-runs 5] [-repeat K] [-reuse] 'query' ...
//	indexbench -mail DIR -index DIR -scale -user ADDR[,ADDR] [-runs 20] 'query' ...
//
// Every message is indexed with the SMTP envelope it would have arrived
// with (MAIL FROM the From address, RCPT TO every To and Cc address), as the
// reader indexes received mail. -repeat K indexes the Maildir K times under
// distinct ids (a corpus K times as large with the same vocabulary); -reuse
// keeps the index dir already holds if it has as many documents, else
// builds it again.
//
// It prints one line "indexed N messages BYTES bytes in SECONDS s" and then,
// per query, "query<TAB>hits<TAB>median ms<TAB>min ms<TAB>open+query ms": the
// in-process latency on an open index (warm), and the latency of opening the
// index and running the query once (what a CLI process pays besides its own
// start). A query prefixed "search:" is a Search for the newest 50 hits;
// others are a Count.
//
// With -scale every query runs as the reader runs a search (the newest 50
// hits and the total), once as given and once narrowed as the reader
// narrows a user's search (AND one of the -user addresses involved), each
// -runs times on one open index, interleaved; it prints per query
// "scale<TAB>query<TAB>total<TAB>median ms<TAB>max ms", then
// "all<TAB>SAMPLES<TAB>median ms<TAB>p99 ms" over every run of every query
// and "vmhwm KB" (the process's peak resident set).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/index"
	"github.com/sealmail/sealmail/index/internal/benchmail"
)

func main() {
	mail := flag.String("mail", "", "directory of message files (walked recursively)")
	dir := flag.String("index", "", "index directory (created)")
	batch := flag.Int("batch", 500, "messages per Add batch")
	runs := flag.Int("runs", 5, "timed runs per query")
	repeat := flag.Int("repeat", 1, "index the mail this many times under distinct ids")
	reuse := flag.Bool("reuse", false, "keep the index dir already holds")
	scale := flag.Bool("scale", false, "time every query as the reader's newest-50 search, plain and user-scoped")
	user := flag.String("user", "", "comma-separated addresses of the user whose scope -scale adds")
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
	if *mail == "" || *dir == "" || (*scale && *user == "") {
		flag.Usage()
		os.Exit(2)
	}
	ctx := context.Background()
	err := build(ctx, *mail, *dir, *batch, *repeat, *reuse)
	if err == nil && *scale {
		err = scaleQueries(ctx, *dir, *runs, strings.Split(*user, ","), flag.Args())
	} else if err == nil {
		err = queries(ctx, *dir, *runs, flag.Args())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "indexbench:", err)
		os.Exit(1)
	}
}

// stopProfile ends CPU profiling after indexing (a no-op without -cpuprofile).
var stopProfile = func() {}

func build(ctx context.Context, mail, dir string, batch, repeat int, reuse bool) error {
	paths, err := benchmail.Files(mail)
	if err != nil {
		return err
	}
	n := len(paths) * repeat
	if reuse {
		if have, err := count(ctx, dir); err == nil && have == n {
			fmt.Printf("indexed 0 messages 0 bytes in 0 s (reused %s: %d documents)\n", dir, have)
			return nil
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	t0 := time.Now()
	x, err := index.Open(dir, index.Options{})
	if err != nil {
		return err
	}
	var total int64
	for i := 0; i < n; i += batch {
		var docs []index.Doc
		for j := i; j < n && j < i+batch; j++ {
			raw, err := os.ReadFile(paths[j%len(paths)])
			if err != nil {
				return err
			}
			total += int64(len(raw))
			docs = append(docs, index.Doc{ID: sealmail.MessageID(j + 1), Raw: raw, Seq: uint64(j + 1),
				Envelopes: []sealmail.Envelope{benchmail.Envelope(raw)}})
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
	fmt.Printf("indexed %d messages %d bytes in %.2f s\n", n, total, el.Seconds())
	return nil
}

// count returns the number of documents of the index in dir.
func count(ctx context.Context, dir string) (int, error) {
	if _, err := os.Stat(dir); err != nil {
		return 0, err
	}
	x, err := index.Open(dir, index.Options{})
	if err != nil {
		return 0, err
	}
	n, err := x.Count(ctx, "*")
	if cerr := x.Close(); err == nil {
		err = cerr
	}
	return n, err
}

func queries(ctx context.Context, dir string, runs int, qs []string) error {
	for _, q := range qs {
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

// scaleQueries times qs and their user-scoped variants as the reader runs
// them: newest 50 hits with the total, on one open index.
func scaleQueries(ctx context.Context, dir string, runs int, user, qs []string) error {
	x, err := index.Open(dir, index.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = x.Close() }()
	var scope []string
	for _, a := range user {
		scope = append(scope, "involved:"+a)
	}
	var all []string
	for _, q := range qs {
		q = strings.TrimPrefix(q, "search:")
		all = append(all, q, "("+q+") AND ("+strings.Join(scope, " OR ")+")")
	}
	parsed := make([]index.Query, len(all))
	for i, q := range all {
		if parsed[i], err = index.Parse(q); err != nil {
			return fmt.Errorf("query %q: %w", q, err)
		}
	}
	times := make([][]time.Duration, len(all))
	totals := make([]int, len(all))
	for range runs {
		for i, q := range parsed {
			t := time.Now()
			r, err := x.Find(ctx, q, index.SearchOptions{Limit: 50})
			if err != nil {
				return fmt.Errorf("query %q: %w", all[i], err)
			}
			times[i] = append(times[i], time.Since(t))
			totals[i] = r.Total
		}
	}
	var samples []time.Duration
	for i, q := range all {
		ds := times[i]
		samples = append(samples, ds...)
		slices.Sort(ds)
		fmt.Printf("scale\t%s\t%d\t%.2f\t%.2f\n", q, totals[i], ms(ds[len(ds)/2]), ms(ds[len(ds)-1]))
	}
	slices.Sort(samples)
	p99 := samples[min(len(samples)-1, len(samples)*99/100)]
	fmt.Printf("all\t%d\t%.2f\t%.2f\n", len(samples), ms(samples[len(samples)/2]), ms(p99))
	st, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				fmt.Printf("vmhwm %s\n", strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			}
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
