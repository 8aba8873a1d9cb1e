// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/api"
)

// TestKill9 kills the daemon with SIGKILL while 8 clients send, then adds a
// torn half record to the active segment (what a power cut in the middle of
// a write leaves). After a restart every message that got a 250 must be
// present and byte-exact, and the torn tail must be gone.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	t.Parallel()
	dir, identityFile := initArchive(t)
	d := startDaemon(t, dir)

	type acked struct {
		id   uint64
		data []byte
	}
	var (
		mu   sync.Mutex
		acks []acked
		wg   sync.WaitGroup
		stop = make(chan struct{})
	)
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			conn, err := dialSMTP(d.addr, true)
			if err != nil {
				t.Errorf("client %d: %v", c, err)
				return
			}
			defer conn.c.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				msg := []byte(fmt.Sprintf("Subject: crash %d/%d\r\n\r\n%s\r\n", c, i, bytes.Repeat([]byte("x"), rng.IntN(200<<10))))
				code, reply, err := conn.send("a@example.com", []string{"b@example.org"}, msg, i%3 == 0)
				if err != nil {
					return // the daemon died under us: not acknowledged
				}
				if code != 250 {
					t.Errorf("client %d: %d %s before the kill", c, code, reply)
					return
				}
				id, err := queuedID(reply)
				if err != nil {
					t.Errorf("reply %q: %v", reply, err)
					return
				}
				mu.Lock()
				acks = append(acks, acked{id, msg})
				mu.Unlock()
			}
		}()
	}
	// Bounded: kill after a second and a half of load.
	time.Sleep(1500 * time.Millisecond)
	d.kill()
	close(stop)
	wg.Wait()
	if len(acks) == 0 {
		t.Fatal("no message was acknowledged before the kill")
	}

	seg := activeSegment(t, dir)
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := append([]byte("SMRC\x01\x01\x00\x00"), bytes.Repeat([]byte{0xab}, 300)...)
	f.Write(torn)
	f.Close()
	before, _ := os.Stat(seg)

	d = startDaemon(t, dir)
	after, _ := os.Stat(seg)
	if after.Size() > before.Size()-int64(len(torn)) {
		t.Errorf("active segment %d bytes after restart, was %d with a %d-byte torn tail: tail not truncated", after.Size(), before.Size(), len(torn))
	}
	ids, err := loadIdentities(identityFile, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := api.Dial(filepath.Join(dir, api.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sort.Slice(acks, func(i, j int) bool { return acks[i].id < acks[j].id })
	for _, a := range acks {
		m, err := c.Get(contextT(t), sealmail.MessageID(a.id))
		if err != nil {
			t.Errorf("acknowledged message %d lost: %v", a.id, err)
			continue
		}
		original, _, err := m.DecryptRecord(0, ids)
		if err != nil || !bytes.Equal(original, a.data) {
			t.Errorf("acknowledged message %d: %v, byte-exact %v", a.id, err, err == nil && bytes.Equal(original, a.data))
		}
	}
	t.Logf("%d messages acknowledged before kill -9, all present after restart", len(acks))
	d.stop()
}

func activeSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no segment")
	}
	sort.Strings(segs)
	return segs[len(segs)-1]
}
