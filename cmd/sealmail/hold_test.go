// SPDX-License-Identifier: Apache-2.0

package main

import (
	"strings"
	"testing"
)

// TestHolds places, lists and releases a hold through the reader (four
// eyes off for releases); the reader evaluates it and the receiver records
// what it covers; changes are audited and mistakes answered with the fix.
func TestHolds(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	d := startDaemon(t, dir)
	r := startReader(t, dir, "", "--identity", identity, "--config", writeConfig(t, "[access.four_eyes]\nhold_release = false\n"))
	for _, subj := range []string{"case 4711 contract", "lunch", "case 4711 invoice"} {
		if code, reply := sendOne(t, d.addr, []byte("From: a@example.com\r\nSubject: "+subj+"\r\n\r\nx\r\n")); code != 250 {
			t.Fatalf("send: %d %s", code, reply)
		}
	}
	r.caughtUp()
	out, errOut, code := r.cli("hold", "create", "case-4711", "--query", "subject:4711", "--reason", "litigation 4711")
	if code != 0 || !strings.Contains(string(out), "2 messages match") {
		t.Fatalf("hold create: exit %d: %s%s", code, out, errOut)
	}
	if _, errOut, code := r.cli("hold", "create", "case-4711", "--query", "x", "--reason", "again"); code == 0 || !strings.Contains(errOut, "case-4711") {
		t.Errorf("duplicate hold: exit %d: %s", code, errOut)
	}
	if _, errOut, code := r.cli("hold", "create", "bad", "--query", "subject:(", "--reason", "r"); code != exitUsage || !strings.Contains(errOut, "query: at") {
		t.Errorf("hold with a bad query: exit %d: %s", code, errOut)
	}
	out, _, _ = r.cli("hold", "list")
	if !strings.Contains(string(out), "case-4711") || !strings.Contains(string(out), "active") {
		t.Errorf("hold list:\n%s", out)
	}
	if _, errOut, code := r.cli("hold", "release", "case-4711"); code != exitUsage {
		t.Errorf("release without --reason: exit %d: %s", code, errOut)
	}
	if out, errOut, code := r.cli("hold", "release", "case-4711", "--reason", "settled"); code != 0 {
		t.Fatalf("hold release: %s%s", out, errOut)
	}
	out, _, _ = r.cli("hold", "show", "case-4711")
	if !strings.Contains(string(out), `"release_reason":"settled"`) || !strings.Contains(string(out), `"active":false`) {
		t.Errorf("hold show after release: %s", out)
	}
	r.stop()
	d.stop()
	audit, _, _ := cli(t, nil, "audit", "show", "--type", "hold.create", "--type", "hold.release", "--type", "hold.members", "--data", dir)
	if !strings.Contains(string(audit), "litigation 4711") || !strings.Contains(string(audit), "settled") || !strings.Contains(string(audit), `"ids":[1,3]`) {
		t.Errorf("audit log lacks the hold changes and members:\n%s", audit)
	}
}
