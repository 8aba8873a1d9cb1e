// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// signIn signs a user in over HTTPS with password and TOTP and returns the
// bearer token.
func signIn(t *testing.T, api, user, password, secret string) string {
	t.Helper()
	code, b, _ := call(t, "POST", api+"/session", "", map[string]string{"user": user, "password": password, "totp": totp(t, secret)})
	var s struct {
		Token string `json:"token"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &s) != nil || s.Token == "" {
		t.Fatalf("sign in %s: %d %s", user, code, b)
	}
	return s.Token
}

// filedRequest reads the four-eyes request of a 202 answer.
func filedRequest(t *testing.T, what string, code int, b []byte) uint64 {
	t.Helper()
	var rep struct {
		Approval *struct {
			ID    uint64 `json:"id"`
			State string `json:"state"`
		} `json:"approval"`
	}
	if code != http.StatusAccepted || json.Unmarshal(b, &rep) != nil || rep.Approval == nil || rep.Approval.State != "requested" {
		t.Fatalf("%s: %d %s, want 202 with a request", what, code, b)
	}
	return rep.Approval.ID
}

var cliRequest = regexp.MustCompile(`four eyes: request (\d+) \(([a-z.]+)\) filed`)

// TestFourEyes: erasure and hold release over HTTPS by two real officers
// and by root over the reader's socket, through real receiver and reader
// processes. A request erases or releases nothing; its requester cannot
// approve it (an officer: 403; root, one principal: exit 6); another
// approves it and the reader executes it at once, re-evaluated (a message
// that got a further receipt and one a new hold covers are kept), audited
// once with the request and its approver; a denial ends one; after a
// restart with a short expiry, a request not decided in time expires.
// The users' creation on the command line reaches the audit log through
// the outbox.
func TestFourEyes(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	d := startDaemon(t, dir)
	state := filepath.Join(t.TempDir(), "state")
	pw := map[string][2]string{}
	for _, u := range []string{"olga", "bob"} {
		p, s := addUser(t, state, u, "officer")
		pw[u] = [2]string{p, s}
	}
	ids := sendMany(t, d.addr, "hr@corp.example", []string{"x@corp.example"}, [][]byte{
		[]byte("Subject: jane doe one\r\n\r\nx\r\n"), []byte("Subject: jane doe two\r\n\r\ny\r\n"), []byte("Subject: jane doe held\r\n\r\nz\r\n")})
	r := startReader(t, dir, state, "--identity", identity)
	r.caughtUp()
	api := "https://" + r.https + "/api/v1"
	olga, bob := signIn(t, api, "olga", pw["olga"][0], pw["olga"][1]), signIn(t, api, "bob", pw["bob"][0], pw["bob"][1])

	// Olga asks to erase all three; nothing goes yet; she cannot approve.
	code, b, _ := call(t, "POST", api+"/erase", olga, map[string]any{"query": `"jane doe"`, "reason": "Art. 17 #12", "override_retention": true})
	erase := filedRequest(t, "erase by olga", code, b)
	if !strings.Contains(string(b), fmt.Sprintf(`"erased":[%d,%d,%d]`, ids[0], ids[1], ids[2])) {
		t.Errorf("the request's dry run: %s", b)
	}
	if code, b, _ := call(t, "POST", fmt.Sprintf("%s/approvals/%d/approve", api, erase), olga, nil); code != http.StatusForbidden {
		t.Errorf("olga approves her own request: %d %s, want 403", code, b)
	}
	// Meanwhile the second is journaled again and bob holds the third.
	if again := sendMany(t, d.addr, "hr@corp.example", []string{"y@corp.example"}, [][]byte{[]byte("Subject: jane doe two\r\n\r\ny\r\n")})[0]; again != ids[1] {
		t.Fatalf("the second copy got id %d, want %d", again, ids[1])
	}
	r.caughtUp()
	if code, b, _ := call(t, "POST", api+"/holds", bob, map[string]string{"name": "case", "query": "subject:held", "reason": "case 9"}); code != http.StatusCreated ||
		!strings.Contains(string(b), `"members":1`) {
		t.Fatalf("hold by bob: %d %s", code, b)
	}
	code, b, _ = call(t, "POST", fmt.Sprintf("%s/approvals/%d/approve", api, erase), bob, map[string]string{"comment": "checked"})
	if code != http.StatusOK || !strings.Contains(string(b), `"state":"executed"`) {
		t.Fatalf("bob approves: %d %s, want executed", code, b)
	}
	for i, want := range []int{http.StatusNotFound, http.StatusOK, http.StatusOK} {
		if code, _, _ := call(t, "GET", fmt.Sprintf("%s/messages/%d/raw", api, ids[i]), olga, nil); code != want {
			t.Errorf("after the erasure, message %d: %d, want %d", ids[i], code, want)
		}
	}
	if code, b, _ := call(t, "POST", fmt.Sprintf("%s/approvals/%d/approve", api, erase), bob, nil); code != http.StatusConflict {
		t.Errorf("a second approval: %d %s, want 409", code, b)
	}

	// Root asks to erase the second (now with both receipts): root cannot
	// approve root's request, olga can.
	out, errOut, code := r.cli("erase", "--query", "subject:two", "--reason", "Art. 17 #13", "--override-retention")
	m := cliRequest.FindSubmatch(out)
	if code != 0 || m == nil || string(m[2]) != "erase" || !strings.Contains(string(out), "would erase 1 messages (audit entry") {
		t.Fatalf("erase by root: exit %d:\n%s%s", code, out, errOut)
	}
	rootReq := string(m[1])
	if _, errOut, code := r.cli("approvals", "approve", rootReq); code != exitSameOfficer {
		t.Errorf("root approves root's request: exit %d, want %d: %s", code, exitSameOfficer, errOut)
	}
	if code, b, _ := call(t, "POST", api+"/approvals/"+rootReq+"/approve", olga, nil); code != http.StatusOK || !strings.Contains(string(b), `"state":"executed"`) {
		t.Errorf("olga approves root's request: %d %s", code, b)
	}
	if code, _, _ := call(t, "GET", fmt.Sprintf("%s/messages/%d/raw", api, ids[1]), olga, nil); code != http.StatusNotFound {
		t.Errorf("after root's approved erasure, message %d: %d, want 404", ids[1], code)
	}

	// Olga asks to release the hold; root denies it; it stays.
	code, b, _ = call(t, "POST", api+"/holds/case/release", olga, map[string]string{"reason": "settled"})
	release := filedRequest(t, "release by olga", code, b)
	if out, errOut, code := r.cli("approvals", "deny", fmt.Sprint(release), "--reason", "not settled"); code != 0 || !strings.Contains(string(out), "denied") {
		t.Errorf("root denies: exit %d: %s%s", code, out, errOut)
	}
	if code, b, _ := call(t, "GET", api+"/holds", bob, nil); code != http.StatusOK || !strings.Contains(string(b), `"active":true`) {
		t.Errorf("holds after the denial: %d %s", code, b)
	}
	code, b, _ = call(t, "GET", api+"/approvals", bob, nil)
	if code != http.StatusOK || strings.Count(string(b), `"state":"executed"`) != 2 || strings.Count(string(b), `"state":"denied"`) != 1 {
		t.Errorf("approvals: %d %s", code, b)
	}

	// Expiry: a reader whose requests stand one second.
	r.stop()
	r = startReader(t, dir, state, "--identity", identity, "--config", writeConfig(t, "[access.four_eyes]\nexpiry = \"1s\"\n"))
	out, errOut, code = r.cli("hold", "release", "case", "--reason", "settled now")
	if m = cliRequest.FindSubmatch(out); code != 0 || m == nil {
		t.Fatalf("hold release by root: exit %d:\n%s%s", code, out, errOut)
	}
	time.Sleep(1500 * time.Millisecond)
	if code, b, _ := call(t, "POST", "https://"+r.https+"/api/v1/approvals/"+string(m[1])+"/approve", olga, nil); code != http.StatusConflict ||
		!strings.Contains(string(b), "expired") {
		t.Errorf("approving an expired request: %d %s, want 409", code, b)
	}
	r.stop()
	d.stop()

	audit, _, _ := cli(t, nil, "audit", "show", "--json", "--data", dir)
	var erasures []string
	for _, line := range strings.Split(strings.TrimSpace(string(audit)), "\n") {
		var e struct {
			Type   string `json:"type"`
			Actor  string `json:"actor"`
			Fields struct {
				DryRun    bool     `json:"dry_run"`
				IDs       []uint64 `json:"ids"`
				Request   string   `json:"request"`
				Approvals []string `json:"approvals"`
			} `json:"fields"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Type == "erase" && !e.Fields.DryRun {
			erasures = append(erasures, fmt.Sprintf("%s %v request %s approved by %v", e.Actor, e.Fields.IDs, e.Fields.Request, e.Fields.Approvals))
		}
	}
	want := []string{fmt.Sprintf("olga (officer) [%d] request %d approved by [bob (officer)]", ids[0], erase),
		fmt.Sprintf("root [%d] request %s approved by [olga (officer)]", ids[1], rootReq)}
	if strings.Join(erasures, "\n") != strings.Join(want, "\n") {
		t.Errorf("erase entries:\n%s\nwant\n%s", strings.Join(erasures, "\n"), strings.Join(want, "\n"))
	}
	for typ, n := range map[string]int{`"type":"access.approval.execute"`: 2, `"type":"access.approval.deny"`: 1, `"type":"access.approval.expire"`: 1,
		`"type":"access.approval.request"`: 4, `"type":"access.user.add"`: 2} {
		if got := strings.Count(string(audit), typ); got != n {
			t.Errorf("audit log: %d entries %s, want %d", got, typ, n)
		}
	}
}
