// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// benchDir returns where benchmark logs live: $AUDIT_BENCH_DIR if set (point
// it at the disk the appliance uses; a tmpfs makes fsync free), else a
// temporary directory.
func benchDir(b *testing.B) string {
	b.Helper()
	base := os.Getenv("AUDIT_BENCH_DIR")
	if base == "" {
		return filepath.Join(b.TempDir(), "audit")
	}
	dir, err := os.MkdirTemp(base, "audit-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "audit")
}

func benchEvent() Event {
	return Event{Type: TypeIngest, Actor: "smtpd", Fields: map[string]any{
		"id": 123456, "segment": 42, "offset": 987654321, "size": 48213,
		"digest": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"remote": "192.0.2.10:52114",
	}}
}

func benchAppend(b *testing.B, parallelism int) {
	l, err := Create(benchDir(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ev := benchEvent()
	b.ReportAllocs()
	b.ResetTimer()
	if parallelism == 0 {
		for b.Loop() {
			if _, err := l.Append(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.Append(ctx, ev); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.StopTimer()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(b.N)/float64(max(l.syncs, 1)), "entries/fsync")
}

// BenchmarkAppend measures group commit: many goroutines (GOMAXPROCS × 64)
// append at once, as ingest sessions do.
func BenchmarkAppend(b *testing.B) { benchAppend(b, 64) }

// BenchmarkAppendSerial measures one appender: one fsync per entry.
func BenchmarkAppendSerial(b *testing.B) { benchAppend(b, 0) }

// BenchmarkVerify measures Verify over a log of b.N entries per iteration
// batch (reported per entry).
func BenchmarkVerify(b *testing.B) {
	dir := benchDir(b)
	l, err := Create(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ev := benchEvent()
	const n = 20000
	errs := make(chan error, 64)
	for range 64 {
		go func() {
			for range n / 64 {
				if _, err := l.Append(ctx, ev); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 64 {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	b.ResetTimer()
	for b.Loop() {
		r, err := Verify(ctx, dir, nil)
		if err != nil || !r.OK() {
			b.Fatalf("Verify = %v %v", err, r.Problems)
		}
	}
	b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "entries/s")
}
