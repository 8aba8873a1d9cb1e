// SPDX-License-Identifier: Apache-2.0

package pst

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkWrite2GB writes an export of a little over 2 GB (beyond the
// first FPMap at AMap interval 8192), then checks the file's structure.
// Run it alone:
//
//	go test -run '^$' -bench Write2GB -benchtime 1x ./export/pst/
//
// and measure peak RSS with /usr/bin/time -v.
func BenchmarkWrite2GB(b *testing.B) {
	target := int64(2200 << 20)
	if mb, err := strconv.Atoi(os.Getenv("PST_BENCH_MB")); err == nil && mb > 0 {
		target = int64(mb) << 20 // for profiling; the FPMap assertion needs the default
	}
	// A pool of distinct 200 KB messages: 30 KB of text, a 170 KB attachment.
	var pool [][]byte
	for i := range 16 {
		body := strings.Repeat(fmt.Sprintf("line %d of a long text body, äöü 日本\n", i), 700)
		pool = append(pool, genMessage(i, fmt.Sprintf("benchmark message %d", i), body,
			map[string][]byte{fmt.Sprintf("report-%d.pdf", i): randBytes(uint64(i), 170<<10)}))
	}
	dir := b.TempDir()
	for b.Loop() {
		out := filepath.Join(dir, "bench.pst")
		w, err := CreateFile(out, Options{TempDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		folders := make([]FolderID, 10)
		for i := range folders {
			if folders[i], err = w.Folder(RootFolder, fmt.Sprintf("Custodian %d", i)); err != nil {
				b.Fatal(err)
			}
		}
		var in int64
		n := 0
		for w.d.written < target {
			raw := pool[n%len(pool)]
			if err := w.AddMessage(folders[n%len(folders)], raw, nil); err != nil {
				b.Fatal(err)
			}
			in += int64(len(raw))
			n++
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		st, err := os.Stat(out)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(st.Size())
		b.ReportMetric(float64(n), "messages")
		b.ReportMetric(float64(st.Size())/(1<<20), "MB-written")
		b.StopTimer()
		if _, err := checkFile(out); err != nil {
			b.Fatalf("structure check: %v", err)
		}
		if target >= 2200<<20 && (st.Size()-amapFirst)/intervalSize <= fpmapFirst {
			b.Fatalf("file of %d bytes does not reach the first FPMap", st.Size())
		}
		if keep := os.Getenv("PST_BENCH_KEEP"); keep != "" {
			// keep the file for the Debian tools: mv within one file system
			if err := os.Rename(out, keep); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
}
