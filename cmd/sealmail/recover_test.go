// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecoverCommand: `sealmail recover --data DIR` with the catalog
// deleted, then corrupted, rebuilds it so that `list` prints the same and
// `verify` finds no problem; with the daemon running it refuses.
func TestRecoverCommand(t *testing.T) {
	t.Parallel()
	dir, _ := initArchive(t)
	d := startDaemon(t, dir)
	conn, err := dialSMTP(d.addr, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		msg := fmt.Appendf(nil, "Subject: recover %d\r\n\r\nbody %d\r\n", i, i)
		for _, rcpt := range []string{"b@example.org", "c@example.org"}[:1+i%2] { // odd ones twice: two receipts
			if code, reply, err := conn.send("a@example.com", []string{rcpt}, msg, false); err != nil || code != 250 {
				t.Fatalf("send %d: %d %s %v", i, code, reply, err)
			}
		}
	}
	conn.close()
	if _, errOut, code := cli(t, nil, "recover", "--data", dir); code == 0 || !strings.Contains(errOut, "locked") {
		t.Errorf("recover with the daemon running: exit %d, %s; want a refusal (locked)", code, errOut)
	}
	d.stop()

	list := func() []byte {
		t.Helper()
		out, errOut, code := cli(t, nil, "list", "--data", dir)
		if code != 0 {
			t.Fatalf("list: exit %d: %s", code, errOut)
		}
		return out
	}
	verify := func(when string) {
		t.Helper()
		if out, errOut, code := cli(t, nil, "verify", "--data", dir); code != 0 {
			t.Errorf("verify %s: exit %d: %s%s", when, code, out, errOut)
		}
	}
	before := list()
	if bytes.Count(before, []byte("\n")) < 6 {
		t.Fatalf("list before: %s", before)
	}
	verify("before")
	catalog := filepath.Join(dir, "catalog.db")
	for _, damage := range []struct {
		name string
		do   func() error
	}{
		{"deleted", func() error { return os.Remove(catalog) }},
		{"corrupt", func() error { return os.WriteFile(catalog, bytes.Repeat([]byte{0xee}, 32<<10), 0o600) }},
	} {
		if err := damage.do(); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := cli(t, nil, "recover", "--data", dir)
		if code != 0 {
			t.Fatalf("%s catalog: recover: exit %d: %s%s", damage.name, code, out, errOut)
		}
		if !strings.Contains(string(out), "catalog rebuilt: 6 messages (0 deleted), 9 receipts") {
			t.Errorf("%s catalog: recover said %s", damage.name, out)
		}
		if after := list(); !bytes.Equal(after, before) {
			t.Errorf("%s catalog: list after recover:\n%s\nbefore:\n%s", damage.name, after, before)
		}
		verify("after recover of a " + damage.name + " catalog")
	}
	// The daemon starts on the recovered catalog and ingests.
	d = startDaemon(t, dir)
	conn, err = dialSMTP(d.addr, true)
	if err != nil {
		t.Fatal(err)
	}
	if code, reply, err := conn.send("a@example.com", []string{"b@example.org"}, []byte("Subject: later\r\n\r\nx\r\n"), false); err != nil || code != 250 {
		t.Fatalf("send after recover: %d %s %v", code, reply, err)
	}
	conn.close()
	d.stop()
	verify("after ingesting on the recovered catalog")
}
