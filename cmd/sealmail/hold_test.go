// SPDX-License-Identifier: Apache-2.0

package main

import (
	"strings"
	"testing"
)

// TestHolds places, lists and releases a hold through the daemon; changes
// are audited and mistakes answered with the fix.
func TestHolds(t *testing.T) {
	t.Parallel()
	dir, _ := initArchive(t)
	d := startDaemon(t, dir)
	var last uint64
	for _, subj := range []string{"case 4711 contract", "lunch", "case 4711 invoice"} {
		code, reply := sendOne(t, d.addr, []byte("From: a@example.com\r\nSubject: "+subj+"\r\n\r\nx\r\n"))
		if code != 250 {
			t.Fatalf("send: %d %s", code, reply)
		}
		last, _ = queuedID(reply)
	}
	waitIndexed(t, dir, last)
	out, errOut, code := cli(t, nil, "hold", "create", "case-4711", "--query", "subject:4711", "--reason", "litigation 4711", "--data", dir)
	if code != 0 || !strings.Contains(string(out), "2 messages match") {
		t.Fatalf("hold create: exit %d: %s%s", code, out, errOut)
	}
	if _, errOut, code := cli(t, nil, "hold", "create", "case-4711", "--query", "x", "--reason", "again", "--data", dir); code == 0 || !strings.Contains(errOut, "case-4711") {
		t.Errorf("duplicate hold: exit %d: %s", code, errOut)
	}
	if _, errOut, code := cli(t, nil, "hold", "create", "bad", "--query", "subject:(", "--reason", "r", "--data", dir); code == 0 || !strings.Contains(errOut, "query: at") {
		t.Errorf("hold with a bad query: exit %d: %s", code, errOut)
	}
	out, _, _ = cli(t, nil, "hold", "list", "--data", dir)
	if !strings.Contains(string(out), "case-4711") || !strings.Contains(string(out), "active") {
		t.Errorf("hold list:\n%s", out)
	}
	if _, errOut, code := cli(t, nil, "hold", "release", "case-4711", "--data", dir); code != exitUsage {
		t.Errorf("release without --reason: exit %d: %s", code, errOut)
	}
	if out, errOut, code := cli(t, nil, "hold", "release", "case-4711", "--reason", "settled", "--data", dir); code != 0 {
		t.Fatalf("hold release: %s%s", out, errOut)
	}
	out, _, _ = cli(t, nil, "hold", "show", "case-4711", "--data", dir)
	if !strings.Contains(string(out), `"release_reason":"settled"`) || !strings.Contains(string(out), `"active":false`) {
		t.Errorf("hold show after release: %s", out)
	}
	d.stop()
	audit, _, _ := cli(t, nil, "audit", "show", "--type", "hold.create", "--type", "hold.release", "--data", dir)
	if !strings.Contains(string(audit), "litigation 4711") || !strings.Contains(string(audit), "settled") {
		t.Errorf("audit log lacks the hold changes:\n%s", audit)
	}
}
