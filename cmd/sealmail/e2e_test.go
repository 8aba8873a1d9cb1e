// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// testMessage makes message i of a deterministic mixed load: mostly
// ordinary mail of 1–64 KB, some up to 1 MB, a few up to 10 MB; some with
// 8-bit binary bytes, some with bare LF, some malformed MIME. Every message is
// distinct and ends with CRLF, as SMTP requires.
func testMessage(i int, rng *rand.Rand) []byte {
	var size int
	switch {
	case i%100 == 99:
		size = 1<<20 + rng.IntN(9<<20) // 1–10 MB
	case i%10 == 9:
		size = 64<<10 + rng.IntN(960<<10)
	default:
		size = 1<<10 + rng.IntN(63<<10)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Sender %d <sender%d@example.com>\r\nTo: rcpt@example.org\r\nSubject: test message %d\r\nMessage-ID: <%d.e2e@example.com>\r\n", i, i%7, i, i)
	kind := i % 5
	switch kind {
	case 1: // binary 8-bit body, declared as such
		b.WriteString("MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n")
		for b.Len() < size {
			line := make([]byte, 1+rng.IntN(2000)) // lines up to 2000 octets, beyond RFC 5321's 1000
			for j := range line {
				line[j] = byte(rng.IntN(256))
				if line[j] == '\r' || line[j] == '\n' {
					line[j] = 0
				}
			}
			b.Write(line)
			b.WriteString("\r\n")
		}
		return b.Bytes()
	case 2: // bare LF inside the body
		b.WriteString("\r\n")
		for b.Len() < size {
			fmt.Fprintf(&b, "bare lf line %d\n", rng.IntN(1e9))
		}
	case 3: // malformed MIME: a boundary that never comes, a broken header
		b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"never\r\nBroken header without colon\r\n\r\n--nope\r\n")
		for b.Len() < size {
			fmt.Fprintf(&b, "=?broken?Q?%d?= .leading dot follows\r\n.%d\r\n", rng.IntN(1e9), i)
		}
	default:
		b.WriteString("\r\n")
		for b.Len() < size {
			fmt.Fprintf(&b, "Line %d of message %d, some text to archive.\r\n", rng.IntN(1e9), i)
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// TestEndToEnd sends 1,000 messages of mixed sizes and kinds over STARTTLS
// from 8 concurrent clients (every fourth by BDAT), restarts the daemon, and
// reads every message back through `sealmail get`.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 1,000 messages")
	}
	t.Parallel()
	dir, identity := initArchive(t)
	d := startDaemon(t, dir)

	const n, clients = 1000, 8
	msgs := make([][]byte, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range msgs {
		msgs[i] = testMessage(i, rng)
	}
	ids := make([]uint64, n)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := dialSMTP(d.addr, true)
			if err != nil {
				t.Errorf("client %d: %v", c, err)
				return
			}
			defer conn.close()
			for i := c; i < n; i += clients {
				code, msg, err := conn.send("journal@example.com", []string{"archive@example.org"}, msgs[i], i%4 == 0)
				if err != nil || code != 250 {
					t.Errorf("message %d: %d %s %v", i, code, msg, err)
					return
				}
				if ids[i], err = queuedID(msg); err != nil {
					t.Errorf("message %d: reply %q: %v", i, msg, err)
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.Fatalf("sending failed; daemon log:\n%s", d.stderr)
	}
	d.stop()
	startDaemon(t, dir)

	out, _, code := cli(t, nil, "list", "--json", "--data", dir)
	if code != 0 || bytes.Count(out, []byte("\n")) != n {
		t.Fatalf("list after restart: exit %d, %d lines, want %d", code, bytes.Count(out, []byte("\n")), n)
	}
	var gw sync.WaitGroup
	work := make(chan int)
	for range 4 {
		gw.Add(1)
		go func() {
			defer gw.Done()
			for i := range work {
				got, errOut, code := cli(t, nil, "get", fmt.Sprint(ids[i]), "--data", dir, "--identity", identity)
				if code != 0 || !bytes.Equal(got, msgs[i]) {
					t.Errorf("get %d (message %d, %d bytes): exit %d, %d bytes back, equal=%v: %s",
						ids[i], i, len(msgs[i]), code, len(got), bytes.Equal(got, msgs[i]), errOut)
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	gw.Wait()
}

// TestDedup sends the same message twice with different envelopes: one
// message is stored, with two receipts.
func TestDedup(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	d := startDaemon(t, dir)
	msg := []byte("From: a@example.com\r\nSubject: twice\r\n\r\nsame bytes\r\n")
	var ids []uint64
	for _, rcpt := range []string{"first@example.org", "second@example.org"} {
		c, err := dialSMTP(d.addr, true)
		if err != nil {
			t.Fatal(err)
		}
		code, reply, err := c.send("a@example.com", []string{rcpt}, msg, false)
		c.close()
		if err != nil || code != 250 {
			t.Fatalf("send: %d %s %v", code, reply, err)
		}
		id, _ := queuedID(reply)
		ids = append(ids, id)
	}
	if ids[0] != ids[1] {
		t.Errorf("ids %v: the second copy got a new id", ids)
	}
	out, _, _ := cli(t, nil, "list", "--json", "--data", dir)
	if !bytes.Contains(out, []byte(`"receipts":2`)) || bytes.Count(out, []byte("\n")) != 1 {
		t.Errorf("list = %s, want one message with 2 receipts", out)
	}
	env, errOut, code := cli(t, nil, "get", fmt.Sprint(ids[0]), "--envelope", "--data", dir, "--identity", identity)
	lines := strings.Split(strings.TrimSpace(string(env)), "\n")
	if code != 0 || len(lines) != 2 || !strings.Contains(lines[0], "first@example.org") || !strings.Contains(lines[1], "second@example.org") {
		t.Errorf("get --envelope: exit %d: %q %s", code, env, errOut)
	}
}
