// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
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
// reader, which decrypts them. The change that lengthens a retention (to
// forever) is made at once; the one that gives a message without one six
// years shortens how long it is kept (it may then be deleted) and waits
// for a second officer: root's request, approved by an officer over
// HTTPS. A request made under rules that changed before its approval
// fails.
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
	rules := func(keep string) string {
		return writeConfig(t, "[retention.default]\nname = \"d\"\nkeep = \""+keep+"\"\n[[retention.rules]]\nname = \"inv\"\nheaders = { Subject = \"[invoice]\" }\nkeep = \"forever\"\n")
	}
	d = startDaemon(t, dir, "--config", rules("6y"))
	state := filepath.Join(t.TempDir(), "state")
	pw, secret := addUser(t, state, "olga", "officer")
	r := startReader(t, dir, state, "--identity", identity)
	out, errOut, code := r.cli("policy", "apply", "--dry-run")
	if code != 0 || !strings.Contains(string(out), "1 would change") || !strings.Contains(string(out), "1: (none) -> forever") ||
		!strings.Contains(string(out), "2: (none) -> ") || strings.Contains(string(out), "four eyes") {
		t.Fatalf("policy apply --dry-run: exit %d:\n%s%s", code, out, errOut)
	}
	request := func(out []byte) string {
		t.Helper()
		m := regexp.MustCompile(`four eyes: request (\d+) \(retention.shorten\) filed`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("no four-eyes request in:\n%s", out)
		}
		return string(m[1])
	}
	out, errOut, code = r.cli("policy", "apply")
	if code != 0 || !strings.Contains(string(out), "re-evaluated 2 messages, 1 changed") || !strings.Contains(string(out), "1: (none) -> forever") ||
		!strings.Contains(string(out), "(withheld)") {
		t.Fatalf("policy apply: exit %d:\n%s%s", code, out, errOut)
	}
	first := request(out)
	api := "https://" + r.https + "/api/v1"
	token := signIn(t, api, "olga", pw, secret)
	approve := func(id string) (string, string) {
		t.Helper()
		code, b, _ := call(t, "POST", api+"/approvals/"+id+"/approve", token, map[string]string{"comment": "rules reviewed"})
		var a struct {
			State string `json:"state"`
			Error string `json:"error"`
		}
		if code != 200 || json.Unmarshal(b, &a) != nil {
			t.Fatalf("approve %s: %d %s", id, code, b)
		}
		return a.State, a.Error
	}
	if st, e := approve(first); st != "executed" {
		t.Fatalf("approved shortening: %s %s, want executed", st, e)
	}
	out, _, _ = r.cli("policy", "apply")
	if !strings.Contains(string(out), "2 messages, 0 changed") || strings.Contains(string(out), "withheld") {
		t.Errorf("policy apply after the approval changed something:\n%s", out)
	}
	// Shorter rules: a request; other rules before its approval: it fails.
	d.stop()
	d = startDaemon(t, dir, "--config", rules("2y"))
	out, _, _ = r.cli("policy", "apply")
	second := request(out)
	d.stop()
	d = startDaemon(t, dir, "--config", rules("3y"))
	if st, e := approve(second); st != "failed" || !strings.Contains(e, "not those approved") {
		t.Errorf("approval under other rules: %s %q, want failed as the rules changed", st, e)
	}
	r.stop()
	d.stop()
	audit, _, _ := cli(t, nil, "audit", "show", "--type", "policy.change", "--data", dir)
	if n := strings.Count(string(audit), `"op":"apply"`); n != 4 || !strings.Contains(string(audit), `"withheld":1`) {
		t.Errorf("audit log: %d policy applications, want 4 (with a withheld change):\n%s", n, audit)
	}
}
