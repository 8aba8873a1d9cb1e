// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func searchCount(t *testing.T, r *readerProc, q string) int {
	t.Helper()
	out, errOut, code := r.cli("search", "--count", q)
	if code != 0 {
		t.Fatalf("search --count %q: exit %d: %s", q, code, errOut)
	}
	var n int
	fmt.Sscan(string(out), &n)
	return n
}

// sendMany sends messages over one SMTP connection; it returns their ids.
func sendMany(t *testing.T, addr, from string, to []string, msgs [][]byte) []uint64 {
	t.Helper()
	c, err := dialSMTP(addr, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	var ids []uint64
	for _, m := range msgs {
		code, reply, err := c.send(from, to, m, false)
		if code != 250 {
			t.Fatalf("send: %d %s %v", code, reply, err)
		}
		id, _ := queuedID(reply)
		ids = append(ids, id)
	}
	return ids
}

// readerStatus is what `sealmail access status --json` says.
type readerStatus struct {
	Locked   bool `json:"locked"`
	Coverage struct {
		IndexedSeq uint64 `json:"indexed_seq"`
		Indexed    int    `json:"indexed"`
		NotIndexed int    `json:"not_indexed"`
	} `json:"coverage"`
	Problems []string `json:"problems"`
}

func (r *readerProc) status() readerStatus {
	r.t.Helper()
	out, errOut, code := r.cli("access", "status", "--json")
	var st readerStatus
	if code != 0 || json.Unmarshal(out, &st) != nil {
		r.t.Fatalf("access status: exit %d: %s%s", code, out, errOut)
	}
	return st
}

// TestSearch runs the receiver and a reader as real processes: mail sent
// over SMTP is searchable through the reader's socket, with the envelope
// recipients of every receipt. The reader is killed (kill -9) while it
// indexes a backlog and started again on its state: it loses nothing and
// indexes what it had not committed. `reindex --all` rebuilds the index,
// and a reader started on an empty state builds its own from the log. The
// receiver runs without an index and without an identity all along.
func TestSearch(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	identity = outOfArchive(t, identity)
	d := startDaemon(t, dir)
	r := startReader(t, dir, "", "--identity", identity)
	send := func(from, to, subject, body string) uint64 {
		msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Mon, 3 Mar 2025 10:00:00 +0000\r\n\r\n%s\r\n", from, to, subject, body)
		envFrom := from
		if i := strings.Index(from, "<"); i >= 0 {
			envFrom = strings.Trim(from[i:], "<>")
		}
		return sendMany(t, d.addr, envFrom, []string{to, "hidden-bcc@example.org"}, [][]byte{[]byte(msg)})[0]
	}
	send("Alice Example <alice@contoso.com>", "bob@example.org", "Quarterly invoice", "please find the numbers attached")
	send("carol@fabrikam.com", "bob@example.org", "Lunch", "shall we meet at noon")
	send("alice@contoso.com", "dave@example.org", "Re: Quarterly invoice", "numbers look fine")
	r.caughtUp()
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
		if got := searchCount(t, r, q); got != want {
			t.Errorf("search --count %q = %d, want %d", q, got, want)
		}
	}
	out, _, _ := r.cli("search", "--json", "invoice")
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 2 || !strings.Contains(lines[0], `"subject":"`) || !strings.Contains(lines[0], `"id":`) {
		t.Errorf("search --json = %s", out)
	}
	if _, errOut, code := r.cli("search", "from:(alice"); code != exitUsage || !strings.Contains(errOut, "query: at") {
		t.Errorf("bad query: exit %d, %s; want a positioned syntax error", code, errOut)
	}

	// A backlog, then kill -9 while the reader indexes it.
	r.stop()
	var backlog [][]byte
	for i := range 300 {
		backlog = append(backlog, fmt.Appendf(nil, "From: erin@example.net\r\nSubject: late %d\r\n\r\nxylophone %s\r\n", i, strings.Repeat("filler words ", 1500)))
	}
	sendMany(t, d.addr, "erin@example.net", []string{"bob@example.org"}, backlog)
	r = startReader(t, dir, r.state, "--identity", identity)
	killedAt := r.status().Coverage.Indexed
	r.cmd.Process.Kill()
	<-r.done
	t.Logf("killed the reader with %d of %d messages indexed", killedAt, 303)
	restarted := func(when string) *readerProc {
		r := startReader(t, dir, r.state, "--identity", identity)
		r.caughtUp()
		if got := searchCount(t, r, "xylophone"); got != 300 {
			t.Errorf("after kill -9 %s and restart: %d matches, want 300", when, got)
		}
		if st := r.status(); st.Coverage.Indexed != 303 || st.Coverage.NotIndexed != 0 || len(st.Problems) != 0 {
			t.Errorf("after kill -9 %s and restart: %+v, want all 303 indexed", when, st)
		}
		return r
	}
	r = restarted("during the tail")

	// The index is the reader's: rebuilt from the audit log on demand, or
	// from nothing on an empty state.
	if _, errOut, code := r.cli("reindex", "--all"); code != 0 {
		t.Fatalf("reindex --all: %s", errOut)
	}
	if got := searchCount(t, r, "invoice OR xylophone"); got != 302 {
		t.Errorf("after reindex --all: %d matches, want 302", got)
	}

	// kill -9 in the middle of a rebuild: started again, the reader
	// finishes it from its cursor, every message indexed once.
	seq := r.status().Coverage.IndexedSeq
	rebuild := exec.Command(sealmailBinary(t), "reindex", "--all", "--reader", r.sock)
	if err := rebuild.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); r.status().Coverage.IndexedSeq >= seq; {
		if time.Now().After(deadline) {
			t.Fatal("reindex --all did not start in 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	killedAt = r.status().Coverage.Indexed
	r.kill()
	rebuild.Wait() // it fails: the reader went away
	t.Logf("killed the reader during reindex --all with %d of 303 messages indexed", killedAt)
	r = restarted("during reindex --all")
	r.stop()
	if err := os.RemoveAll(filepath.Join(r.state, "index")); err != nil {
		t.Fatal(err)
	}
	r = startReader(t, dir, r.state, "--identity", identity)
	r.caughtUp()
	if got := searchCount(t, r, "invoice"); got != 2 {
		t.Errorf("rebuilt from nothing: %d matches, want 2", got)
	}
	noSecretsIn(t, dir)
	r.stop()
	d.stop()
}

// outOfArchive moves the development identity that init left in the
// archive directory elsewhere, as an operator must: the receiver then runs
// without it.
func outOfArchive(t *testing.T, identity string) string {
	t.Helper()
	moved := filepath.Join(t.TempDir(), "identity.txt")
	if err := os.Rename(identity, moved); err != nil {
		t.Fatal(err)
	}
	return moved
}

// noSecretsIn checks that the receiver's directory holds no index and no
// age identity.
func noSecretsIn(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "index")); !os.IsNotExist(err) {
		t.Errorf("the receiver's directory has an index: %v", err)
	}
	filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "AGE-SECRET-KEY") {
				t.Errorf("the receiver's directory holds an identity: %s", p)
			}
		}
		return nil
	})
}
