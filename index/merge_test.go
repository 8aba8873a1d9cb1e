// SPDX-License-Identifier: Apache-2.0

package index

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sealmail/sealmail"
)

// mergeDoc is document i of the merge tests: a small message with a word
// of its own.
func mergeDoc(i int) Doc {
	raw := fmt.Sprintf("From: u%d@example.com\r\nTo: archive@example.com\r\nSubject: batch note %d\r\n"+
		"Date: Mon, 2 Dec 2024 10:00:00 +0000\r\n\r\nword%d common text of the merge test\r\n", i%7, i, i)
	return Doc{ID: sealmail.MessageID(i), Raw: []byte(raw), Seq: uint64(i)}
}

// TestQueriesDuringMerge: with a background merge held in the middle of
// writing its segment, searches keep answering from the segments it
// merges, completely and correctly.
func TestQueriesDuringMerge(t *testing.T) {
	ctx := context.Background()
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	x, err := Open(t.TempDir(), Options{merging: func() {
		once.Do(func() { close(started) })
		<-release
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(release)
		if err := x.Close(); err != nil {
			t.Error(err)
		}
	}()
	// Many small batches: one segment each, which Bluge merges.
	n := 0
	for n < 2000 {
		var docs []Doc
		for range 10 {
			n++
			docs = append(docs, mergeDoc(n))
		}
		if err := x.Add(ctx, docs); err != nil {
			t.Fatal(err)
		}
		select {
		case <-started:
		default:
			continue
		}
		break
	}
	select {
	case <-started:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no merge started after %d documents in batches of 10", n)
	}
	// The merge now waits in the middle of writing its segment.
	for i := range 50 {
		id := 1 + i*n/50
		if c, err := x.Count(ctx, fmt.Sprintf("word%d", id)); err != nil || c != 1 {
			t.Fatalf("during a merge: word%d: %d, %v", id, c, err)
		}
	}
	res, err := x.Search(ctx, "common", SearchOptions{Limit: 50})
	if err != nil || res.Total != n || len(res.Hits) != min(n, 50) {
		t.Fatalf("during a merge: common: %v, %v; want %d matches", res, err, n)
	}
}

// TestKillDuringMerge kills (SIGKILL) a child process that indexes small
// batches, each with its cursor as the state, while Bluge merges them in
// the background, at random points and right after merges start, for
// several cycles. After each kill the index opens, the cursor is at or
// past every batch the child reported committed, and every document up to
// the cursor is there: the cursor never runs ahead of the documents, and
// nothing committed is lost.
func TestKillDuringMerge(t *testing.T) {
	if os.Getenv("SEALMAIL_INDEX_KILL_CHILD") != "" {
		killChild()
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	merges := 0
	for cycle := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringMerge$")
		cmd.Env = append(os.Environ(), "SEALMAIL_INDEX_KILL_CHILD="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a random number of commits, or (odd cycles) as the
		// first merge after 10 commits starts writing.
		killAt := 20 + rng.IntN(200)
		mergeKill := cycle%2 == 1
		committed, seen := 0, 0
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 2 && f[0] == "committed" {
				committed, _ = strconv.Atoi(f[1])
				seen++
			}
			if len(f) == 1 && f[0] == "merging" {
				merges++
				if mergeKill && seen >= 10 {
					time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
					break
				}
			}
			if seen >= killAt && !mergeKill {
				break
			}
			if seen >= 5000 {
				t.Fatalf("cycle %d: the child committed %d batches and no merge started", cycle, seen)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		cur, ids := killCheck(t, dir)
		if cur < committed {
			t.Fatalf("cycle %d: the cursor is at %d, the child had committed through %d", cycle, cur, committed)
		}
		if len(ids) != cur {
			t.Fatalf("cycle %d: cursor %d but %d documents", cycle, cur, len(ids))
		}
		for i := 1; i <= cur; i++ {
			if !ids[sealmail.MessageID(i)] {
				t.Fatalf("cycle %d: document %d (≤ cursor %d) missing", cycle, i, cur)
			}
		}
		t.Logf("cycle %d: killed after %d committed batches (cursor %d, %d documents)", cycle, seen, cur, len(ids))
	}
	if merges == 0 {
		t.Fatal("no merge started in any cycle")
	}
}

// killState is the child's cursor: every document up to Last is indexed.
type killState struct{ Last int }

// killCheck opens the index in dir and returns the cursor and the ids of
// the documents.
func killCheck(t *testing.T, dir string) (int, map[sealmail.MessageID]bool) {
	t.Helper()
	ctx := context.Background()
	x, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer x.Close()
	var st killState
	if b, err := x.State(ctx); err != nil {
		t.Fatal(err)
	} else if b != nil {
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[sealmail.MessageID]bool{}
	if err := x.Each(ctx, Query{}, func(s Stored) error { ids[s.ID] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	return st.Last, ids
}

// killChild indexes batches of 5 documents after the cursor, each batch
// with its new cursor, and reports each commit and each merge start on
// stdout, until killed.
func killChild() {
	ctx := context.Background()
	var mu sync.Mutex
	say := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Println(s)
	}
	x, err := Open(os.Getenv("SEALMAIL_INDEX_KILL_CHILD"), Options{merging: func() { say("merging") }})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var st killState
	if b, err := x.State(ctx); err == nil && b != nil {
		_ = json.Unmarshal(b, &st)
	}
	for {
		var docs []Doc
		for range 5 {
			st.Last++
			docs = append(docs, mergeDoc(st.Last))
		}
		b, _ := json.Marshal(st)
		if err := x.Apply(ctx, Batch{Docs: docs, State: b}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		say(fmt.Sprintf("committed %d", st.Last))
	}
}
