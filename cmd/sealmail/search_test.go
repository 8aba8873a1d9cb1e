// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// waitIndexed waits until the index covers message last.
func waitIndexed(t *testing.T, dir string, last uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		out, _, code := cli(t, nil, "status", "--json", "--data", dir)
		var st struct {
			IndexWatermark uint64 `json:"index_watermark"`
		}
		if code == 0 && json.Unmarshal(out, &st) == nil && st.IndexWatermark >= last {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("index did not reach message %d within 60s", last)
}

func searchCount(t *testing.T, dir, q string) int {
	t.Helper()
	out, errOut, code := cli(t, nil, "search", "--count", "--data", dir, q)
	if code != 0 {
		t.Fatalf("search --count %q: exit %d: %s", q, code, errOut)
	}
	var n int
	fmt.Sscan(string(out), &n)
	return n
}

// TestSearch ingests messages over SMTP, waits for the asynchronous index,
// and searches through the daemon; then it kills the daemon before the
// index caught up, and `reindex` with the identity completes it.
func TestSearch(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	d := startDaemon(t, dir)
	send := func(from, to, subject, body string) uint64 {
		msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Mon, 3 Mar 2025 10:00:00 +0000\r\n\r\n%s\r\n", from, to, subject, body)
		c, err := dialSMTP(d.addr, true)
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		envFrom := from
		if i := strings.Index(from, "<"); i >= 0 {
			envFrom = strings.Trim(from[i:], "<>")
		}
		code, reply, _ := c.send(envFrom, []string{to, "hidden-bcc@example.org"}, []byte(msg), false)
		if code != 250 {
			t.Fatalf("send: %d %s", code, reply)
		}
		id, _ := queuedID(reply)
		return id
	}
	send("Alice Example <alice@contoso.com>", "bob@example.org", "Quarterly invoice", "please find the numbers attached")
	send("carol@fabrikam.com", "bob@example.org", "Lunch", "shall we meet at noon")
	last := send("alice@contoso.com", "dave@example.org", "Re: Quarterly invoice", "numbers look fine")
	waitIndexed(t, dir, last)

	for q, want := range map[string]int{
		"invoice":                   2,
		"from:@contoso.com":         2,
		"from:alice subject:lunch":  0,
		`"find the numbers"`:        1,
		"to:bob@example.org -lunch": 1,
		"to:hidden-bcc@example.org": 3, // the envelope recipient, in no header
		"after:2025-03-01 numbers":  2,
		"before:2025-03-01":         0,
		"(noon OR fine) from:carol": 1,
	} {
		if got := searchCount(t, dir, q); got != want {
			t.Errorf("search --count %q = %d, want %d", q, got, want)
		}
	}
	out, _, _ := cli(t, nil, "search", "--json", "--data", dir, "invoice")
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 2 || !strings.Contains(lines[0], `"subject":"`) || !strings.Contains(lines[0], `"id":`) {
		t.Errorf("search --json = %s", out)
	}
	if _, errOut, code := cli(t, nil, "search", "--data", dir, "from:(alice"); code == 0 || !strings.Contains(errOut, "query: at") {
		t.Errorf("bad query: exit %d, %s; want a positioned syntax error", code, errOut)
	}

	// Kill the daemon right after new messages, before the index commits
	// them (it waits up to 2 s for a batch).
	var ids []uint64
	for i := range 5 {
		ids = append(ids, send("erin@example.net", "bob@example.org", fmt.Sprintf("late %d", i), "xylophone"))
	}
	d.kill()
	d = startDaemon(t, dir)
	n := searchCount(t, dir, "xylophone")
	if n == 5 {
		t.Log("the index committed before the kill; reindex still runs")
	}
	out, errOut, code := cli(t, nil, "reindex", "--data", dir, "--identity", identity)
	if code != 0 {
		t.Fatalf("reindex: %s", errOut)
	}
	if got := searchCount(t, dir, "xylophone"); got != 5 {
		t.Errorf("after reindex: %d matches, want 5 (%s)", got, out)
	}
	waitIndexed(t, dir, ids[len(ids)-1])
	d.stop()

	// The index is derived data: delete it, rebuild it from the store.
	if err := os.RemoveAll(dir + "/index"); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cli(t, nil, "reindex", "--all", "--data", dir, "--identity", identity); code != 0 {
		t.Fatalf("reindex --all: %s", errOut)
	}
	if got := searchCount(t, dir, "invoice OR xylophone"); got != 7 {
		t.Errorf("after reindex --all: %d matches, want 7", got)
	}
}
