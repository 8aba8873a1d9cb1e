// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReaderOperationsHTTPS drives the reader's operations over HTTPS with
// a real client, each role against the matrix: holds (place from a query,
// list with members and coverage, members), purge (a dry run and a run),
// export jobs (an auditor's, narrowed to its scope; list, progress,
// download of the output and its manifests, checked with their SHA-256
// and unzip; cancel; delete), policy apply (a dry run), reindex and the
// status (admins), each refused to the roles without the permission;
// downloads, holds, purges and reindexing are audited with the person.
func TestReaderOperationsHTTPS(t *testing.T) {
	t.Parallel()
	unzip := needTool(t, "unzip", "unzip")
	dir, identity := initArchive(t)
	d := startDaemon(t, dir, "--config", writeConfig(t, "[retention.default]\nname = \"year\"\nkeep = \"1y\"\n"))
	state := filepath.Join(t.TempDir(), "state")
	tokens := map[string]string{}
	users := []struct{ name, role, extra string }{{"ada", "admin", ""}, {"olga", "officer", ""}, {"tax", "auditor", "from:@acme.example"}, {"jane", "user", "jane@corp.example"}}
	secrets := map[string][2]string{}
	for _, u := range users {
		var extra []string
		switch u.role {
		case "auditor":
			extra = []string{"--scope", u.extra}
		case "user":
			extra = []string{"--address", u.extra}
		}
		p, s := addUser(t, state, u.name, u.role, extra...)
		secrets[u.name] = [2]string{p, s}
	}
	ids := sendMany(t, d.addr, "a@acme.example", []string{"jane@corp.example"}, [][]byte{[]byte("From: a@acme.example\r\nSubject: acme report\r\n\r\nfigures\r\n")})
	ids = append(ids, sendMany(t, d.addr, "b@other.example", []string{"y@corp.example"}, [][]byte{[]byte("From: b@other.example\r\nSubject: other report\r\n\r\nmore\r\n")})...)
	r := startReader(t, dir, state, "--identity", identity)
	r.caughtUp()
	api := "https://" + r.https + "/api/v1"
	for _, u := range users {
		tokens[u.name] = signIn(t, api, u.name, secrets[u.name][0], secrets[u.name][1])
	}
	refused := func(who, method, path string, body any) {
		t.Helper()
		if code, b, _ := call(t, method, api+path, tokens[who], body); code != http.StatusForbidden {
			t.Errorf("%s %s by %s: %d %s, want 403", method, path, who, code, b)
		}
	}

	// Holds.
	for _, who := range []string{"ada", "tax", "jane"} {
		refused(who, "GET", "/holds", nil)
	}
	code, b, _ := call(t, "POST", api+"/holds", tokens["olga"], map[string]string{"name": "acme", "query": "from:acme.example", "reason": "case 1"})
	if code != http.StatusCreated || !strings.Contains(string(b), `"members":1`) || !strings.Contains(string(b), `"coverage"`) {
		t.Fatalf("place a hold: %d %s", code, b)
	}
	if code, b, _ := call(t, "POST", api+"/holds", tokens["olga"], map[string]string{"name": "bad", "query": "subject:(", "reason": "x"}); code != http.StatusBadRequest {
		t.Errorf("a hold whose query does not parse: %d %s, want 400", code, b)
	}
	if code, b, _ := call(t, "GET", api+"/holds", tokens["olga"], nil); code != 200 || !strings.Contains(string(b), `"name":"acme"`) || !strings.Contains(string(b), `"members":1`) {
		t.Errorf("holds: %d %s", code, b)
	}
	if code, b, _ := call(t, "GET", api+"/holds/acme/members", tokens["olga"], nil); code != 200 || !strings.Contains(string(b), fmt.Sprintf(`"members":[%d]`, ids[0])) {
		t.Errorf("members: %d %s", code, b)
	}

	// Purge: officers only.
	refused("ada", "POST", "/purge", map[string]bool{"dry_run": true})
	refused("tax", "POST", "/purge", map[string]bool{"dry_run": true})
	if code, b, _ := call(t, "POST", api+"/purge", tokens["olga"], map[string]bool{"dry_run": true}); code != 200 || !strings.Contains(string(b), `"dry_run":true`) ||
		!strings.Contains(string(b), `"retained":2`) {
		t.Errorf("purge dry run: %d %s", code, b)
	}
	if code, b, _ := call(t, "POST", api+"/purge", tokens["olga"], nil); code != 200 || !strings.Contains(string(b), `"deleted":[]`) {
		t.Errorf("purge: %d %s", code, b)
	}

	// Export jobs: the auditor's is narrowed to its scope.
	refused("jane", "POST", "/exports", map[string]string{"query": "*", "format": "mbox"})
	refused("ada", "GET", "/exports", nil)
	job := func(who string, req map[string]string) map[string]any {
		t.Helper()
		code, b, _ := call(t, "POST", api+"/exports", tokens[who], req)
		var j map[string]any
		if code != http.StatusAccepted || json.Unmarshal(b, &j) != nil {
			t.Fatalf("export by %s: %d %s", who, code, b)
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			code, b, _ := call(t, "GET", fmt.Sprintf("%s/exports/%s", api, j["id"]), tokens[who], nil)
			if code != 200 || json.Unmarshal(b, &j) != nil {
				t.Fatalf("job: %d %s", code, b)
			}
			if j["state"] != "waiting" && j["state"] != "exporting" {
				return j
			}
		}
		t.Fatalf("export job %v did not finish", j["id"])
		return nil
	}
	download := func(who, path string) []byte {
		t.Helper()
		code, b, h := call(t, "GET", api+path, tokens[who], nil)
		if code != 200 || h.Get("Content-Disposition") == "" {
			t.Fatalf("GET %s by %s: %d %s", path, who, code, b)
		}
		return b
	}
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	j := job("tax", map[string]string{"query": "report", "format": "mbox"})
	if j["state"] != "done" || j["total"] != float64(1) {
		t.Fatalf("the auditor's export: %v, want done with the one message of its scope", j)
	}
	mbox := download("tax", fmt.Sprintf("/exports/%s/output", j["id"]))
	if sum(mbox) != j["output_sha256"] || !strings.Contains(string(mbox), "Subject: acme report") || strings.Contains(string(mbox), "other report") {
		t.Errorf("the auditor's mbox (SHA-256 %s, job says %s):\n%s", sum(mbox), j["output_sha256"], mbox)
	}
	man := download("tax", fmt.Sprintf("/exports/%s/manifest?file=manifest.sha256", j["id"]))
	if sum(man) != j["manifest_sha256"] || !strings.Contains(string(man), sum(mbox)) {
		t.Errorf("manifest.sha256 (SHA-256 %s, job says %s):\n%s", sum(man), j["manifest_sha256"], man)
	}
	if code, b, _ := call(t, "GET", fmt.Sprintf("%s/exports/%s", api, j["id"]), tokens["olga"], nil); code != http.StatusNotFound {
		t.Errorf("another's job: %d %s, want 404", code, b)
	}
	if code, b, _ := call(t, "POST", fmt.Sprintf("%s/exports/%s/cancel", api, j["id"]), tokens["tax"], nil); code != http.StatusBadRequest {
		t.Errorf("cancel a done job: %d %s, want 400", code, b)
	}
	if code, b, _ := call(t, "GET", api+"/exports", tokens["tax"], nil); code != 200 || !strings.Contains(string(b), fmt.Sprint(j["id"])) {
		t.Errorf("the auditor's jobs: %d %s", code, b)
	}
	if code, b, _ := call(t, "DELETE", fmt.Sprintf("%s/exports/%s", api, j["id"]), tokens["tax"], nil); code != http.StatusNoContent {
		t.Errorf("delete a job: %d %s", code, b)
	}
	if code, b, _ := call(t, "POST", api+"/exports", tokens["olga"], map[string]string{"query": "*", "format": "eml", "name": "dir"}); code != http.StatusBadRequest {
		t.Errorf("an EML directory over HTTPS: %d %s, want 400", code, b)
	}
	j = job("olga", map[string]string{"query": "*", "format": "eml"})
	zipPath := filepath.Join(t.TempDir(), "export.zip")
	if err := os.WriteFile(zipPath, download("olga", fmt.Sprintf("/exports/%s/output", j["id"])), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(unzip, "-t", zipPath).CombinedOutput(); err != nil || !strings.Contains(string(out), "No errors detected") ||
		strings.Count(string(out), ".eml") != 2 {
		t.Errorf("unzip -t of the downloaded export: %v\n%s", err, out)
	}
	if man := download("olga", fmt.Sprintf("/exports/%s/manifest", j["id"])); !json.Valid(man) || !strings.Contains(string(man), `"count": 2`) {
		t.Errorf("manifest.json of the zip:\n%s", man)
	}

	// Policy apply: officers; reindex and status: admins.
	refused("ada", "POST", "/policy/apply", map[string]bool{"dry_run": true})
	if code, b, _ := call(t, "POST", api+"/policy/apply", tokens["olga"], map[string]bool{"dry_run": true}); code != 200 ||
		!strings.Contains(string(b), `"evaluated":2`) || !strings.Contains(string(b), `"changed":[]`) {
		t.Errorf("policy apply dry run: %d %s", code, b)
	}
	refused("olga", "POST", "/reindex", nil)
	if code, b, _ := call(t, "POST", api+"/reindex", tokens["ada"], map[string]bool{"all": true}); code != 200 || !strings.Contains(string(b), `"all":true`) {
		t.Errorf("reindex by the admin: %d %s", code, b)
	}
	r.caughtUp()
	refused("olga", "GET", "/status", nil)
	code, b, _ = call(t, "GET", api+"/status", tokens["ada"], nil)
	var st struct {
		Locked     bool   `json:"locked"`
		IndexLag   uint64 `json:"index_lag"`
		Extraction struct {
			Sandbox string `json:"sandbox"`
		} `json:"extraction"`
		Receiver struct {
			Messages     int64     `json:"messages"`
			LastReceived time.Time `json:"last_received"`
			FreeBytes    int64     `json:"free_bytes"`
		} `json:"receiver"`
	}
	if code != 200 || json.Unmarshal(b, &st) != nil || st.Locked || st.Receiver.Messages != 2 || st.Receiver.FreeBytes <= 0 ||
		st.Receiver.LastReceived.IsZero() || st.Extraction.Sandbox == "" {
		t.Errorf("status by the admin: %d %s", code, b)
	}
	r.stop()
	d.stop()

	audit, _, _ := cli(t, nil, "audit", "show", "--json", "--data", dir)
	for _, want := range []string{`"type":"hold.create","actor":"olga (officer)"`, `"type":"purge","actor":"olga (officer)"`,
		`"type":"reader.reindex","actor":"ada (admin)"`, `"type":"export","actor":"tax (auditor)"`} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	if n := strings.Count(string(audit), `"op":"download"`); n != 4 {
		t.Errorf("%d downloads audited, want 4", n)
	}
}

// TestWebInterfaceServed: `sealmail access` serves the web interface on its
// HTTPS server: the start page sends a browser without a session to the
// sign-in page, which links to each configured OIDC provider's sign-in.
func TestWebInterfaceServed(t *testing.T) {
	t.Parallel()
	dir, _ := initArchive(t)
	d := startDaemon(t, dir)
	r := startReader(t, dir, "", "--config", writeConfig(t, "[[access.oidc.provider]]\nname = \"corp\"\ndisplay_name = \"Example Corp\"\n"+
		"issuer = \"https://id.example.org\"\nclient_id = \"sealmail\"\nredirect_url = \"https://127.0.0.1/api/v1/oidc/corp/callback\"\n"))
	noRedirect := *httpsClient
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Get("https://" + r.https + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
		t.Errorf("GET / without a session: %d to %q, want 303 to the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	code, b, h := call(t, "GET", "https://"+r.https+"/signin", "", nil)
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(string(b), `href="/api/v1/oidc/corp/start"`) ||
		!strings.Contains(string(b), "Example Corp") {
		t.Errorf("the sign-in page: %d %s\n%s", code, h.Get("Content-Type"), b)
	}
	r.stop()
	d.stop()
}
