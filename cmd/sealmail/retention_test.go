// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRetentionAtIngest configures rules and checks that each message gets
// the retain-until of the first rule that matches, in the catalog and in
// the audit log.
func TestRetentionAtIngest(t *testing.T) {
	t.Parallel()
	dir, _ := initArchive(t)
	cfg := writeConfig(t, `
[retention]
internal_domains = ["contoso.com"]
[retention.default]
name = "letters"
keep = "6y"
from = "end-of-year"
[[retention.rules]]
name = "invoices"
headers = { Subject = "[invoice]" }
keep = "10y"
from = "end-of-year"
[[retention.rules]]
name = "board"
senders = ["@board.contoso.com"]
keep = "forever"
`)
	d := startDaemon(t, dir, "--config", cfg)
	for _, m := range []struct{ from, subject string }{
		{"a@contoso.com", "[invoice] 4711"}, {"b@example.org", "hello"}, {"chair@board.contoso.com", "minutes"},
	} {
		c, err := dialSMTP(d.addr, true)
		if err != nil {
			t.Fatal(err)
		}
		code, reply, _ := c.send(m.from, []string{"x@contoso.com"}, []byte(fmt.Sprintf("From: %s\r\nSubject: %s\r\n\r\nbody\r\n", m.from, m.subject)), false)
		c.close()
		if code != 250 {
			t.Fatalf("send: %d %s", code, reply)
		}
	}
	out, _, _ := cli(t, nil, "list", "--json", "--data", dir)
	year := time.Now().UTC().Year()
	want := []string{
		fmt.Sprintf("%d-01-01T00:00:00Z", year+1+10), // invoices: 10 years from the end of this year
		fmt.Sprintf("%d-01-01T00:00:00Z", year+1+6),  // default: 6 years from the end of this year
		"forever",
	}
	for i, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r struct {
			RetainUntil string `json:"retain_until"`
		}
		json.Unmarshal([]byte(line), &r)
		if r.RetainUntil != want[i] {
			t.Errorf("message %d retain_until %q, want %q", i+1, r.RetainUntil, want[i])
		}
	}
	d.stop()
	audit, _, _ := cli(t, nil, "audit", "show", "--type", "ingest", "--data", dir)
	if !strings.Contains(string(audit), `"retain_until":"forever"`) {
		t.Errorf("ingest audit entries lack retain_until:\n%s", audit)
	}
	// A rule with a bad period stops the daemon with the rule named.
	bad := writeConfig(t, "[retention.default]\nkeep = \"6 yrs\"\n")
	if _, errOut, code := cli(t, nil, "serve", "--data", dir, "--config", bad); code != exitUsage || !strings.Contains(errOut, "retention") {
		t.Errorf("serve with a bad retention period: exit %d, %s", code, errOut)
	}
}

// TestPolicyApply archives messages without retention rules, then restarts
// the daemon with rules and applies them to the stored messages through the
// reader, which decrypts them.
func TestPolicyApply(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	d := startDaemon(t, dir)
	for _, subj := range []string{"[invoice] 1", "note"} {
		if code, reply := sendOne(t, d.addr, []byte("From: a@example.com\r\nSubject: "+subj+"\r\n\r\nx\r\n")); code != 250 {
			t.Fatalf("send: %d %s", code, reply)
		}
	}
	d.stop()
	d = startDaemon(t, dir, "--config", writeConfig(t, "[retention.default]\nname = \"d\"\nkeep = \"6y\"\n[[retention.rules]]\nname = \"inv\"\nheaders = { Subject = \"[invoice]\" }\nkeep = \"forever\"\n"))
	r := startReader(t, dir, "", "--identity", identity)
	out, errOut, code := r.cli("policy", "apply")
	if code != 0 || !strings.Contains(string(out), "re-evaluated 2 messages, 2 changed") || !strings.Contains(string(out), "1: (none) -> forever") {
		t.Fatalf("policy apply: exit %d:\n%s%s", code, out, errOut)
	}
	out, _, _ = r.cli("policy", "apply")
	if !strings.Contains(string(out), "2 messages, 0 changed") {
		t.Errorf("second policy apply changed something:\n%s", out)
	}
	r.stop()
	d.stop()
	audit, _, _ := cli(t, nil, "audit", "show", "--type", "policy.change", "--data", dir)
	if strings.Count(string(audit), `"op":"apply"`) != 2 {
		t.Errorf("audit log lacks the policy applications:\n%s", audit)
	}
}
