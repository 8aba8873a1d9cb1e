// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAppendVerifyClean(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{ArchiveID: "arch-1", CheckpointEvery: 10})
	es := appendN(t, l, 25)
	for i, e := range es {
		if want := uint64(i + 1 + i/10); e.Seq != want {
			t.Errorf("entry %d: Seq = %d, want %d", i, e.Seq, want)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	r := verifyClean(t, dir)
	// 25 events, checkpoints after 10 and 20, and a final one on Close.
	if r.Entries != 28 || r.LastSeq != 28 || r.Checkpoints != 3 || r.Unsigned != 0 || r.Archive != "arch-1" {
		t.Errorf("Verify = entries %d last %d checkpoints %d unsigned %d archive %q, want 28 28 3 0 arch-1",
			r.Entries, r.LastSeq, r.Checkpoints, r.Unsigned, r.Archive)
	}
	if r.LastCheckpoint == nil || r.LastCheckpoint.Seq != 27 {
		t.Errorf("LastCheckpoint = %v, want seq 27", r.LastCheckpoint)
	}
	cp, err := latestCheckpoint(dir)
	if err != nil || cp.Seq != 27 {
		t.Errorf("LatestCheckpoint = %v, %v, want seq 27", cp.Seq, err)
	}
	if r.Torn != nil {
		t.Errorf("Torn = %+v, want nil", r.Torn)
	}
	fi, err := os.Stat(filepath.Join(dir, keyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("signing.key mode = %v, %v, want 0600", fi.Mode(), err)
	}
}

func TestLineFormat(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{ArchiveID: "x", CheckpointEvery: -1})
	e, err := l.Append(context.Background(), Event{Type: TypeHoldCreate, Actor: "alice", Fields: map[string]any{"hold": "h1", "n": 3}})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	lines := readLines(t, dir, 1)
	genesis := hashLine([]byte(lines[0]))
	want := `{"seq":1,"time":"2026-01-02T03:04:07Z","type":"hold.create","actor":"alice","fields":{"hold":"h1","n":3},"prev":"` + genesis.String() + `"}`
	if lines[1] != want {
		t.Errorf("line 2 = %s\nwant     %s", lines[1], want)
	}
	if e.Hash != hashLine([]byte(want)) || e.Prev != genesis {
		t.Errorf("Append() hash/prev = %s/%s, want %s/%s", e.Hash, e.Prev, hashLine([]byte(want)), genesis)
	}
	if !strings.HasPrefix(lines[0], `{"magic":"sealmail-audit","version":1,"archive":"x","file":1,"created":"2026-01-02T03:04:06Z"}`) {
		t.Errorf("header = %s", lines[0])
	}
}

func TestAppendInvalid(t *testing.T) {
	t.Parallel()
	_, l := newLog(t, Options{})
	ctx := context.Background()
	tests := []struct {
		name string
		ev   Event
	}{
		{"empty type", Event{}},
		{"upper case type", Event{Type: "Ingest"}},
		{"reserved type", Event{Type: TypeCheckpoint}},
		{"unencodable field", Event{Type: TypeIngest, Fields: map[string]any{"c": make(chan int)}}},
		{"too large", Event{Type: TypeIngest, Fields: map[string]any{"x": strings.Repeat("a", MaxLineBytes)}}},
		{"long actor", Event{Type: TypeIngest, Actor: strings.Repeat("a", 300)}},
	}
	for _, tt := range tests {
		if _, err := l.Append(ctx, tt.ev); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("Append(%s) = %v, want ErrInvalidEvent", tt.name, err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Append(cancelled, Event{Type: TypeIngest}); !errors.Is(err, context.Canceled) {
		t.Errorf("Append(cancelled ctx) = %v, want context.Canceled", err)
	}
	if seq, _ := l.Head(); seq != 0 {
		t.Errorf("Head() seq = %d after invalid appends, want 0", seq)
	}
	l.Close()
	if _, err := l.Append(ctx, Event{Type: TypeIngest}); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if _, err := l.Checkpoint(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Checkpoint after Close = %v, want ErrClosed", err)
	}
}

func TestCreateExistingAndLocked(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{})
	if _, err := Create(dir, Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrExist) && !errors.Is(err, ErrLocked) {
		t.Errorf("Create on existing log = %v, want ErrExist or ErrLocked", err)
	}
	if _, err := Open(dir, Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
	l.Close()
	if _, err := Create(dir, Options{}); !errors.Is(err, ErrExist) {
		t.Errorf("Create on closed log = %v, want ErrExist", err)
	}
	if _, err := Open(dir, Options{ArchiveID: "other"}); !errors.Is(err, ErrArchiveMismatch) {
		t.Errorf("Open with other archive id = %v, want ErrArchiveMismatch", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "none"), Options{}); !errors.Is(err, ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
	l2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close = %v", err)
	}
	l2.Close()
}

func TestReopenContinuesChain(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{CheckpointEvery: 4})
	appendN(t, l, 6)
	l.Close()
	for round := range 3 {
		l, err := Open(dir, Options{CheckpointEvery: 4, Now: testClock()})
		if err != nil {
			t.Fatalf("Open round %d = %v", round, err)
		}
		seq, head := l.Head()
		e, err := l.Append(context.Background(), Event{Type: TypeDaemonStart})
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != seq+1 || e.Prev != head {
			t.Errorf("round %d: first append seq %d prev %s, want %d %s", round, e.Seq, e.Prev, seq+1, head)
		}
		if l.TornBytes() != 0 {
			t.Errorf("TornBytes() = %d, want 0", l.TornBytes())
		}
		l.Close()
	}
	r := verifyClean(t, dir)
	if r.Unsigned != 0 {
		t.Errorf("Unsigned = %d after Close, want 0", r.Unsigned)
	}
}

func TestCloseWritesFinalCheckpointOnlyIfNeeded(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{CheckpointEvery: -1, CheckpointInterval: -1})
	appendN(t, l, 3)
	if _, ok := l.LatestCheckpoint(); ok {
		t.Errorf("LatestCheckpoint() before Close found one, want none")
	}
	l.Close()
	cp, err := latestCheckpoint(dir)
	if err != nil || cp.Seq != 3 {
		t.Fatalf("LatestCheckpoint = seq %d, %v, want 3", cp.Seq, err)
	}
	l, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := l.LatestCheckpoint(); !ok || got.Seq != 3 {
		t.Errorf("Log.LatestCheckpoint after Open = %d %v, want 3 true", got.Seq, ok)
	}
	l.Close()
	if r := verifyClean(t, dir); r.LastSeq != 4 {
		t.Errorf("LastSeq = %d after an empty reopen, want 4 (no second checkpoint)", r.LastSeq)
	}
}

func TestCheckpointOnEmptyLog(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{})
	cp, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cp.Seq != 0 {
		t.Errorf("Checkpoint().Seq = %d, want 0", cp.Seq)
	}
	l.Close()
	verifyClean(t, dir, cp)
	if _, err := latestCheckpoint(t.TempDir()); !errors.Is(err, ErrNotExist) {
		t.Errorf("LatestCheckpoint(empty dir) = %v, want ErrNotExist", err)
	}
}

func TestCheckpointInterval(t *testing.T) {
	t.Parallel()
	_, l := newLog(t, Options{CheckpointEvery: -1, CheckpointInterval: 5 * time.Millisecond})
	appendN(t, l, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if cp, ok := l.LatestCheckpoint(); ok {
			if cp.Seq != 1 {
				t.Errorf("timed checkpoint Seq = %d, want 1", cp.Seq)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no timed checkpoint within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRotationKeepsChain(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{MaxFileBytes: 1024, CheckpointEvery: 7})
	appendN(t, l, 60)
	l.Close()
	ns, err := listFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) < 5 {
		t.Fatalf("%d files, want rotation into at least 5", len(ns))
	}
	for i, n := range ns {
		if n != i+1 {
			t.Fatalf("files %v, want 1..%d", ns, len(ns))
		}
		fi, err := os.Stat(filepath.Join(dir, fileName(n)))
		if err != nil {
			t.Fatal(err)
		}
		if i < len(ns)-1 && (fi.Size() > 1024 || fi.Mode().Perm() != 0o440) {
			t.Errorf("%s: size %d mode %v, want <= 1024 and 0440", fileName(n), fi.Size(), fi.Mode().Perm())
		}
	}
	// The first entry of file 2 chains to the last line of file 1.
	l1, l2 := readLines(t, dir, 1), readLines(t, dir, 2)
	e, err := ParseEntry([]byte(l2[1]))
	if err != nil {
		t.Fatal(err)
	}
	if want := hashLine([]byte(l1[len(l1)-1])); e.Prev != want {
		t.Errorf("file 2 first prev = %s, want %s", e.Prev, want)
	}
	r := verifyClean(t, dir)
	if r.Files != len(ns) {
		t.Errorf("Report.Files = %d, want %d", r.Files, len(ns))
	}
	var seqs []uint64
	err = Read(context.Background(), dir, Filter{}, func(e Entry) error {
		seqs = append(seqs, e.Seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(seqs)) != r.LastSeq || seqs[0] != 1 || !slices.IsSorted(seqs) {
		t.Errorf("Read saw %d entries, want %d in order", len(seqs), r.LastSeq)
	}
}

func TestConcurrentAppend(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{MaxFileBytes: 8 << 10, CheckpointEvery: 50, Now: time.Now})
	const workers, each = 8, 60
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seqs []uint64
	)
	ctx := context.Background()
	stop := make(chan struct{})
	verified := make(chan int)
	go func() { // Verify while appending: every pass must be clean.
		n := 0
		defer func() { verified <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			r, err := Verify(ctx, dir, nil)
			if err != nil || !r.OK() {
				t.Errorf("Verify during appends = %v\n%s", err, problems(r))
				return
			}
			n++
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e, err := l.Append(ctx, Event{Type: TypeAPICall, Actor: "worker", Fields: map[string]any{"w": w, "i": i}})
				if err != nil {
					t.Errorf("Append = %v", err)
					return
				}
				mu.Lock()
				seqs = append(seqs, e.Seq)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	passes := <-verified
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(seqs)
	if len(slices.Compact(seqs)) != workers*each {
		t.Errorf("got %d distinct seqs, want %d", len(slices.Compact(seqs)), workers*each)
	}
	r := verifyClean(t, dir)
	if got := r.Entries - uint64(r.Checkpoints); got != workers*each {
		t.Errorf("Verify: %d non-checkpoint entries, want %d", got, workers*each)
	}
	if l.syncs >= workers*each {
		t.Logf("no group commit observed: %d fsyncs for %d entries", l.syncs, workers*each)
	}
	t.Logf("%d entries, %d fsyncs, %d concurrent verify passes", r.Entries, l.syncs, passes)
}

func TestTornTailRepaired(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{CheckpointEvery: 5})
	appendN(t, l, 8)
	l.Close()
	lines := readLines(t, dir, 1)
	torn := `{"seq":11,"time":"2026-01-`
	writeRaw(t, dir, 1, []byte(strings.Join(lines, "\n")+"\n"+torn))

	r := verify(t, dir)
	if !r.OK() {
		t.Errorf("Verify with torn tail: problems\n%s", problems(r))
	}
	if r.Torn == nil || r.Torn.File != fileName(1) || r.Torn.Line != len(lines)+1 || r.Torn.Bytes != int64(len(torn)) {
		t.Errorf("Torn = %+v, want line %d of %d bytes", r.Torn, len(lines)+1, len(torn))
	}
	if err := Read(context.Background(), dir, Filter{}, func(Entry) error { return nil }); err != nil {
		t.Errorf("Read with torn tail = %v", err)
	}

	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open with torn tail = %v", err)
	}
	if l.TornBytes() != int64(len(torn)) {
		t.Errorf("TornBytes() = %d, want %d", l.TornBytes(), len(torn))
	}
	e, err := l.Append(context.Background(), Event{Type: TypeDaemonStart})
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 11 {
		t.Errorf("Append after repair Seq = %d, want 11", e.Seq)
	}
	l.Close()
	if r := verifyClean(t, dir); r.Torn != nil {
		t.Errorf("Torn after repair = %+v", r.Torn)
	}
}

func TestUnsupportedVersion(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{})
	appendN(t, l, 2)
	l.Close()
	lines := readLines(t, dir, 1)
	lines[0] = strings.Replace(lines[0], `"version":1`, `"version":2`, 1)
	writeLines(t, dir, 1, lines)
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("Open = %v, want ErrUnsupportedVersion", err)
	}
	if _, err := Verify(context.Background(), dir, nil); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("Verify = %v, want ErrUnsupportedVersion", err)
	}
	if err := Read(context.Background(), dir, Filter{}, func(Entry) error { return nil }); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("Read = %v, want ErrUnsupportedVersion", err)
	}
}

func TestReadFilter(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{CheckpointEvery: -1}) // clock: header 03:04:06, entry n at 03:04:06+n s
	ctx := context.Background()
	for i, typ := range []string{TypeIngest, TypeAuthFail, TypeIngest, TypeExport, TypeIngest} {
		if _, err := l.Append(ctx, Event{Type: typ, Fields: map[string]any{"i": i, "big": uint64(1) << 60}}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close() // final checkpoint = seq 6
	base := time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)
	tests := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"all", Filter{}, []uint64{1, 2, 3, 4, 5, 6}},
		{"type", Filter{Types: []string{TypeIngest}}, []uint64{1, 3, 5}},
		{"types", Filter{Types: []string{TypeAuthFail, TypeCheckpoint}}, []uint64{2, 6}},
		{"since", Filter{Since: base.Add(4 * time.Second)}, []uint64{4, 5, 6}},
		{"until", Filter{Until: base.Add(3 * time.Second)}, []uint64{1, 2}},
		{"from seq", Filter{FromSeq: 5}, []uint64{5, 6}},
	}
	for _, tt := range tests {
		var got []uint64
		err := Read(ctx, dir, tt.f, func(e Entry) error {
			got = append(got, e.Seq)
			return nil
		})
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Read(%s) = %v, %v, want %v", tt.name, got, err, tt.want)
		}
	}
	errStop := errors.New("stop")
	var first Entry
	err := Read(ctx, dir, Filter{}, func(e Entry) error { first = e; return errStop })
	if err != errStop {
		t.Errorf("Read with stopping fn = %v, want errStop unwrapped", err)
	}
	if got := first.Fields["big"]; got != "1152921504606846976" && got.(interface{ String() string }).String() != "1152921504606846976" {
		t.Errorf("Fields[big] = %v, want exact 1152921504606846976", got)
	}
}

func TestVerifyEmptyAndMissing(t *testing.T) {
	t.Parallel()
	if _, err := Verify(context.Background(), t.TempDir(), nil); !errors.Is(err, ErrNotExist) {
		t.Errorf("Verify(empty dir) = %v, want ErrNotExist", err)
	}
	dir, l := newLog(t, Options{})
	l.Close()
	r := verifyClean(t, dir)
	if r.LastSeq != 0 || r.Entries != 0 {
		t.Errorf("empty log: LastSeq %d Entries %d, want 0 0", r.LastSeq, r.Entries)
	}
}

func TestKeyFiles(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{})
	pub, err := ReadPublicKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(l.PublicKey()) {
		t.Errorf("ReadPublicKey = %x, want %x", pub, l.PublicKey())
	}
	l.Close()
	b, _ := os.ReadFile(filepath.Join(dir, keyFile))
	if !bytes.HasPrefix(b, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("signing.key does not start with a PKCS #8 PEM block: %q", b[:min(len(b), 30)])
	}
	other := t.TempDir()
	l2, err := Create(other, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	otherPub, _ := os.ReadFile(filepath.Join(other, pubFile))
	if err := os.WriteFile(filepath.Join(dir, pubFile), otherPub, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("Open with foreign signing.pub = %v, want mismatch error", err)
	}
}

// TestOpenAfterCrashDuringRotation: a crash right after a rotation leaves a
// last file holding only its header; Open must chain from the previous file.
func TestOpenAfterCrashDuringRotation(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{MaxFileBytes: 1024, CheckpointEvery: -1, CheckpointInterval: -1})
	appendN(t, l, 12)
	l.Close()
	seq, head := l.Head()
	ns, _ := listFiles(dir)
	last := ns[len(ns)-1]
	hdr := header{Magic: Magic, Version: Version, Archive: l.ArchiveID(), File: last + 1, Created: "2026-01-02T00:00:00Z"}
	if err := os.WriteFile(filepath.Join(dir, fileName(last+1)), append(hdr.marshal(), '\n'), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fileName(last+1)+".tmp"), []byte("partial"), 0o640); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if s, h := l2.Head(); s != seq || h != head {
		t.Errorf("Head() after Open = %d %s, want %d %s", s, h, seq, head)
	}
	if _, err := os.Stat(filepath.Join(dir, fileName(last+1)+".tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover temporary file not removed: %v", err)
	}
	appendN(t, l2, 3)
	l2.Close()
	verifyClean(t, dir)
}

func TestOpenCorruptLastLine(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{})
	appendN(t, l, 3)
	l.Close()
	lines := readLines(t, dir, 1)
	lines[len(lines)-1] = "garbage"
	writeLines(t, dir, 1, lines)
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "line 5") {
		t.Errorf("Open with corrupt last line = %v, want ErrCorrupt naming line 5", err)
	}
}

func TestAppendAllKeepsOrderAndSharesSyncs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := Create(dir, Options{ArchiveID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for i := range 50 {
		evs = append(evs, Event{Type: TypeIngest, Actor: "smtp", Fields: map[string]any{"id": i + 1}})
	}
	es, err := l.AppendAll(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range es {
		if i > 0 && e.Seq != es[i-1].Seq+1 {
			t.Errorf("entry %d has seq %d after %d: not consecutive", i, e.Seq, es[i-1].Seq)
		}
	}
	syncs := l.syncs
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if syncs > 5 {
		t.Errorf("AppendAll of 50 events took %d fsyncs, want a few", syncs)
	}
	rep, err := Verify(context.Background(), dir, nil)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}
