// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/store"
)

// TestForgedRecordNotIndexed: someone who holds the archive's public
// recipient (a compromised receiver, root on its host) replaces a stored
// record with a valid one of their own. The audit log's ingest entry names
// the record that was stored, so the reader refuses the substitute: the
// forged message is never indexed, the reader says why, and the rest is.
func TestForgedRecordNotIndexed(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	d := startDaemon(t, dir)
	for i := range 3 {
		if code, reply := sendOne(t, d.addr, []byte(fmt.Sprintf("Subject: genuine %d\r\n\r\nbody %d\r\n", i, i))); code != 250 {
			t.Fatalf("send: %d %s", code, reply)
		}
	}
	d.stop()
	seg := segments0(t, dir)
	last := lastRecord(t, seg)
	entries := append([]store.Entry(nil), last.Header.Entries...)
	var plain [][]byte
	var pad []int64
	for _, e := range entries {
		plain = append(plain, forgedPlain("quokka"))
		pad = append(pad, e.PlainLen)
	}
	rec := forgeRecord(t, dir, entries, plain, pad)
	if int64(len(rec)) != last.Length {
		t.Fatalf("forged record is %d bytes, the original %d", len(rec), last.Length)
	}
	f, _ := os.OpenFile(seg, os.O_WRONLY, 0)
	f.WriteAt(rec, last.Offset)
	f.Close()

	d = startDaemon(t, dir)
	r := startReader(t, dir, "", "--identity", identity)
	r.caughtUp()
	if n := searchCount(t, r, "quokka OR subject:forged"); n != 0 {
		t.Errorf("the forged record's content is found %d times", n)
	}
	if n := searchCount(t, r, "genuine"); n != 3-len(entries) {
		t.Errorf("genuine messages found: %d, want %d (those in other records)", n, 3-len(entries))
	}
	st := r.status()
	if len(st.Problems) != len(entries) || !strings.Contains(strings.Join(st.Problems, "\n"), "vouches for is not among its stored records") {
		t.Errorf("reader problems = %q, want one per forged entry naming the unvouched record", st.Problems)
	}
	r.stop()
	d.stop()
}

// segments0 returns the archive's only (active) segment.
func segments0(t *testing.T, dir string) string {
	t.Helper()
	s, _ := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
	if len(s) != 1 {
		t.Fatalf("%d segments, want 1", len(s))
	}
	return s[0]
}

// person is a user of the reader signed in over HTTPS.
type person struct {
	name, role, token string
}

// addUser adds a user with `sealmail user add --json` (the reader must
// not run) and returns the password and TOTP secret.
func addUser(t *testing.T, state, name, role string, extra ...string) (string, string) {
	t.Helper()
	out, errOut, code := cli(t, nil, append([]string{"user", "add", name, "--state", state, "--role", role, "--json"}, extra...)...)
	if code != 0 {
		t.Fatalf("user add %s: %s", name, errOut)
	}
	var cred struct {
		Password   string `json:"password"`
		TOTPSecret string `json:"totp_secret"`
		TOTPURI    string `json:"totp_uri"`
	}
	if err := json.Unmarshal(out, &cred); err != nil || !strings.HasPrefix(cred.TOTPURI, "otpauth://totp/") {
		t.Fatalf("user add --json: %v %s", err, out)
	}
	return cred.Password, cred.TOTPSecret
}

// httpsClient trusts anything: the test compares no fingerprint.
var httpsClient = &http.Client{Timeout: 30 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}}

// call makes one HTTPS request; it returns the status and body.
func call(t *testing.T, method, url, token string, body any) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpsClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// TestReaderHTTPS signs people of every role in to a real reader over
// HTTPS (password and TOTP) and checks what each may do: officers search
// and read everything, an auditor what its scope matches, a user the
// messages of their addresses, an admin the status and no content; no
// session is 401, a role without the right 403, a message out of reach 404.
// An officer locks the reader (content 503, ingest goes on) and unlocks it
// with the identity. Searches and reads are audited with the person.
func TestReaderHTTPS(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	d := startDaemon(t, dir)
	state := filepath.Join(t.TempDir(), "state")
	people := map[string]*person{}
	secrets := map[string][2]string{}
	for _, u := range []struct {
		name, role string
		extra      []string
	}{
		{"root", "admin", nil}, {"olga", "officer", nil},
		{"tax", "auditor", []string{"--scope", "from:@acme.example"}},
		{"jane", "user", []string{"--address", "jane@corp.example"}},
	} {
		pw, secret := addUser(t, state, u.name, u.role, u.extra...)
		people[u.name] = &person{name: u.name, role: u.role}
		secrets[u.name] = [2]string{pw, secret}
	}
	var ids []uint64
	for _, m := range []struct{ from, to string }{
		{"a@acme.example", "x@corp.example"}, {"b@other.example", "jane@corp.example"}, {"c@other.example", "y@corp.example"},
	} {
		ids = append(ids, sendMany(t, d.addr, m.from, []string{m.to}, [][]byte{
			fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: quarterly report\r\n\r\nfigures\r\n", m.from, m.to)})...)
	}
	r := startReader(t, dir, state, "--identity", identity)
	r.caughtUp()
	api := "https://" + r.https + "/api/v1"
	if code, _, _ := call(t, "GET", api+"/search?q=report", "", nil); code != http.StatusUnauthorized {
		t.Errorf("search without a session: %d, want 401", code)
	}
	for _, p := range people {
		code, b, _ := call(t, "POST", api+"/session", "", map[string]string{"user": p.name, "password": secrets[p.name][0], "totp": totp(t, secrets[p.name][1])})
		var s struct {
			Token string `json:"token"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &s) != nil || s.Token == "" {
			t.Fatalf("sign in %s: %d %s", p.name, code, b)
		}
		p.token = s.Token
	}
	search := func(p *person) (int, string) {
		code, b, _ := call(t, "GET", api+"/search?q=report&limit=10", p.token, nil)
		var res struct {
			Hits []struct {
				ID uint64 `json:"id"`
			} `json:"hits"`
			Coverage *struct {
				IndexedSeq uint64 `json:"indexed_seq"`
			} `json:"coverage"`
		}
		json.Unmarshal(b, &res)
		var got []uint64
		for _, h := range res.Hits {
			got = append(got, h.ID)
		}
		if code == http.StatusOK && (res.Coverage == nil || res.Coverage.IndexedSeq == 0) {
			t.Errorf("search by %s without coverage: %s", p.name, b)
		}
		return code, fmt.Sprint(got)
	}
	for _, tc := range []struct {
		who  string
		code int
		hits string
	}{
		{"root", 403, "[]"}, {"olga", 200, fmt.Sprint([]uint64{ids[2], ids[1], ids[0]})},
		{"tax", 200, fmt.Sprint(ids[:1])}, {"jane", 200, fmt.Sprint(ids[1:2])},
	} {
		if code, hits := search(people[tc.who]); code != tc.code || hits != tc.hits {
			t.Errorf("search by %s (%s): %d %s, want %d %s", tc.who, people[tc.who].role, code, hits, tc.code, tc.hits)
		}
	}
	for _, tc := range []struct {
		who  string
		id   uint64
		code int
	}{
		{"olga", ids[0], 200}, {"tax", ids[0], 200}, {"tax", ids[1], 404}, {"jane", ids[1], 200}, {"jane", ids[0], 404}, {"root", ids[0], 403},
	} {
		code, b, h := call(t, "GET", fmt.Sprintf("%s/messages/%d/raw", api, tc.id), people[tc.who].token, nil)
		if code != tc.code {
			t.Errorf("raw %d by %s: %d %s, want %d", tc.id, tc.who, code, b, tc.code)
		}
		if code == 200 && (h.Get("Content-Type") != "message/rfc822" || !bytes.HasPrefix(b, []byte("From: "))) {
			t.Errorf("raw %d by %s: %s %q", tc.id, tc.who, h.Get("Content-Type"), b)
		}
	}
	code, b, _ := call(t, "GET", fmt.Sprintf("%s/messages/%d/envelope", api, ids[1]), people["jane"].token, nil)
	if code != 200 || !strings.Contains(string(b), "jane@corp.example") {
		t.Errorf("envelope by jane: %d %s", code, b)
	}
	if code, b, _ := call(t, "GET", api+"/status", people["root"].token, nil); code != 200 || !strings.Contains(string(b), `"coverage"`) {
		t.Errorf("status by the admin: %d %s", code, b)
	}
	if code, _, _ := call(t, "GET", api+"/status", people["olga"].token, nil); code != 403 {
		t.Errorf("status by an officer: %d, want 403", code)
	}

	// Lock, ingest, unlock over HTTPS.
	if code, b, _ := call(t, "POST", api+"/lock", people["tax"].token, struct{}{}); code != 403 {
		t.Errorf("lock by an auditor: %d %s, want 403", code, b)
	}
	if code, b, _ := call(t, "POST", api+"/lock", people["olga"].token, struct{}{}); code != 200 {
		t.Fatalf("lock by the officer: %d %s", code, b)
	}
	if code, b, _ := call(t, "GET", api+"/search?q=report", people["olga"].token, nil); code != 503 || !strings.Contains(string(b), "locked") {
		t.Errorf("search while locked: %d %s, want 503", code, b)
	}
	late := sendMany(t, d.addr, "c@other.example", []string{"y@corp.example"}, [][]byte{[]byte("Subject: late report\r\n\r\nx\r\n")})[0]
	text, err := os.ReadFile(identity)
	if err != nil {
		t.Fatal(err)
	}
	if code, b, _ := call(t, "POST", api+"/unlock", people["olga"].token, map[string]string{"identity": string(text)}); code != 200 {
		t.Fatalf("unlock by the officer: %d %s", code, b)
	}
	r.caughtUp()
	if _, hits := search(people["olga"]); !strings.Contains(hits, fmt.Sprint(late)) {
		t.Errorf("after unlock, the officer's search = %s, want the message sent while locked (%d)", hits, late)
	}
	r.stop()
	d.stop()
	audit, _, _ := cli(t, nil, "audit", "show", "--json", "--data", dir)
	for _, want := range []string{`"type":"search","actor":"olga (officer)"`, `"type":"search","actor":"jane (user)"`,
		`"type":"access.login","actor":"tax (auditor)"`, `"type":"reader.lock","actor":"olga (officer)"`,
		`"type":"reader.unlock","actor":"olga (officer)"`, `"actor":"jane (user)"`} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	if !strings.Contains(string(audit), `"op":"get"`) || !strings.Contains(string(audit), `"via":"socket:`) {
		t.Errorf("the reads are not audited as the person's, via the reader")
	}
}

func totp(t *testing.T, secret string) string {
	t.Helper()
	code, err := access.TOTPCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}
