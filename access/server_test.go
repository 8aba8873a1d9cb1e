// SPDX-License-Identifier: Apache-2.0

package access

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// server is a Server on 127.0.0.1:0 and an HTTPS client that trusts its
// self-signed certificate.
type server struct {
	*fixture
	srv    *Server
	url    string
	client *http.Client
	pool   *x509.CertPool
}

func newServer(t *testing.T, opts Options) *server {
	t.Helper()
	f := &fixture{clk: newClock(), rec: &recorder{}, dir: filepath.Join(t.TempDir(), "state")}
	opts.StateDir, opts.Now, opts.Audit = f.dir, f.clk.Now, f.rec.Audit
	if opts.Password == (PasswordParams{}) {
		opts.Password = cheap
	}
	if opts.Lockout == (LockoutOptions{}) {
		opts.Lockout = fastRetry
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.st = srv.State()
	s := &server{fixture: f, srv: srv}
	return s
}

// start serves s (after the test has registered its handlers).
func (s *server) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.serve(t, l)
}

// serve serves s on l.
func (s *server) serve(t *testing.T, l net.Listener) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown = %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	pem, err := os.ReadFile(filepath.Join(s.dir, certFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in cert.pem")
	}
	s.url = "https://" + l.Addr().String()
	s.pool = pool
	s.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(s.client.CloseIdleConnections)
}

// call is one request; token "" sends none; hdr adds headers (a "Cookie"
// entry sends the session cookie).
func (s *server) call(t *testing.T, method, path, token string, body any, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		if k == "Cookie" {
			req.AddCookie(&http.Cookie{Name: CookieName, Value: v})
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// signIn signs c in over HTTPS and returns the bearer token.
func (s *server) signIn(t *testing.T, c Credentials) string {
	t.Helper()
	s.clk.Add(totpPeriod * time.Second) // a fresh TOTP step
	resp, data := s.call(t, "POST", "/api/v1/session", "", LoginBody{User: c.User.Name, Password: c.Password, TOTP: s.code(t, c)}, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("sign in %s: %s %s", c.User.Name, resp.Status, data)
	}
	var r LoginReply
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r.Token
}

func TestHTTPSLoginMeLogout(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	s.start(t)
	c := s.add(t, "jane", RoleUser, "jane@example.com")
	s.rec.take()

	// Wrong factors: 401 with one generic message.
	for _, b := range []LoginBody{
		{User: "jane", Password: c.Password, TOTP: "000000"},
		{User: "jane", Password: "wrong password", TOTP: s.code(t, c)},
		{User: "nobody", Password: c.Password, TOTP: s.code(t, c)},
		{User: "jane", Password: c.Password},
	} {
		resp, data := s.call(t, "POST", "/api/v1/session", "", b, nil)
		if resp.StatusCode != 401 || strings.TrimSpace(string(data)) != `{"error":"sign-in failed"}` {
			t.Errorf("login %+v: %s %s, want 401 sign-in failed", b, resp.Status, data)
		}
	}
	// Malformed bodies: 400.
	for _, body := range []string{`{"user":"jane"`, `{"user":"jane","pass":"x"}`, `{"user":""}`, `{"user":"jane"} {}`, `[]`} {
		req, _ := http.NewRequest("POST", s.url+"/api/v1/session", strings.NewReader(body))
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("login body %s: %s, want 400", body, resp.Status)
		}
	}

	tok := s.signIn(t, c)
	if _, err := ParseToken(tok); err != nil {
		t.Fatalf("token %q: %v", tok, err)
	}
	resp, data := s.call(t, "GET", "/api/v1/me", tok, nil, nil)
	var me MeReply
	if resp.StatusCode != 200 || json.Unmarshal(data, &me) != nil {
		t.Fatalf("me: %s %s", resp.Status, data)
	}
	if me.User != "jane" || me.Role != RoleUser || len(me.Addresses) != 1 || me.Addresses[0] != "jane@example.com" ||
		me.Permissions[PermSearch] != "own" || me.Permissions[PermUsers] != "" || me.CSRF != "" {
		t.Errorf("me = %+v", me)
	}
	for k, want := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
		"Strict-Transport-Security": "max-age=31536000", "Content-Type": "application/json"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}

	resp, _ = s.call(t, "DELETE", "/api/v1/session", tok, nil, nil)
	if resp.StatusCode != 204 {
		t.Errorf("sign out: %s", resp.Status)
	}
	resp, _ = s.call(t, "GET", "/api/v1/me", tok, nil, nil)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("me after sign out: %s, want 401 with WWW-Authenticate", resp.Status)
	}

	ev := s.rec.take()
	var actions []string
	for _, e := range ev {
		actions = append(actions, fmt.Sprintf("%s/%s/%s/%s", e.Action, e.Outcome, e.User, e.Reason))
		if e.Remote != "127.0.0.1" {
			t.Errorf("event %+v: remote %q, want 127.0.0.1", e, e.Remote)
		}
	}
	want := "login/fail/jane/totp login/fail/jane/password login/fail//unknown-user login/fail/jane/no-second-factor login/ok/jane/ logout/ok/jane/"
	if got := strings.Join(actions, " "); got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
	noSecrets(t, ev, c.Password, tok, c.TOTPSecret)
}

func TestHTTPSLoginRecoveryCode(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	s.start(t)
	c := s.add(t, "root", RoleAdmin)
	b := LoginBody{User: "root", Password: c.Password, RecoveryCode: c.RecoveryCodes[9]}
	resp, data := s.call(t, "POST", "/api/v1/session", "", b, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(data), `"token":"sm1_`) {
		t.Fatalf("login with recovery code: %s %s", resp.Status, data)
	}
	resp, _ = s.call(t, "POST", "/api/v1/session", "", b, nil)
	if resp.StatusCode != 401 {
		t.Errorf("second use of the recovery code: %s, want 401", resp.Status)
	}
}

// TestHTTPSRoleChecks is the role check per endpoint class: for every
// permission, an endpoint registered with it answers 401 without a session,
// 403 to a role without it and 200 to a role with it; and the built-in
// endpoints do the same for their classes.
func TestHTTPSRoleChecks(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	for _, row := range Matrix() {
		s.srv.Handle("GET /test/"+string(row.Permission), row.Permission, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				t.Errorf("handler for %s ran without a principal", row.Permission)
			}
			fmt.Fprintf(w, "%s %s", p.User, p.Role.Grant(row.Permission))
		}))
	}
	s.start(t)
	tokens := map[Role]string{}
	for _, r := range Roles() {
		c := s.add(t, string(r)+"1", r, string(r)+"@example.com")
		tokens[r] = s.signIn(t, c)
	}
	for _, row := range Matrix() {
		path := "/test/" + string(row.Permission)
		if resp, _ := s.call(t, "GET", path, "", nil, nil); resp.StatusCode != 401 {
			t.Errorf("%s without a session: %s, want 401", path, resp.Status)
		}
		if resp, _ := s.call(t, "GET", path, "sm1_"+strings.Repeat("A", 43), nil, nil); resp.StatusCode != 401 {
			t.Errorf("%s with an unknown token: %s, want 401", path, resp.Status)
		}
		for _, r := range Roles() {
			resp, data := s.call(t, "GET", path, tokens[r], nil, nil)
			g := r.Grant(row.Permission)
			switch {
			case g == GrantNone && resp.StatusCode != 403:
				t.Errorf("%s as %s: %s, want 403", path, r, resp.Status)
			case g != GrantNone && (resp.StatusCode != 200 || string(data) != fmt.Sprintf("%s1 %s", r, g)):
				t.Errorf("%s as %s: %s %q, want 200", path, r, resp.Status, data)
			}
		}
	}
	// The built-in endpoints.
	for _, e := range []struct {
		method, path string
		perm         Permission
		body         any
	}{
		{"GET", "/api/v1/me", PermSession, nil},
		{"GET", "/api/v1/sessions", PermSession, nil},
		{"GET", "/api/v1/sessions?all=1", PermUsers, nil},
		{"GET", "/api/v1/users", PermUsers, nil},
		{"POST", "/api/v1/users", PermUsers, AddUserBody{Name: "x", Role: "nonsense"}},
		{"POST", "/api/v1/users/nobody/disable", PermUsers, nil},
		{"POST", "/api/v1/users/nobody/enable", PermUsers, nil},
		{"POST", "/api/v1/users/nobody/reset", PermUsers, nil},
	} {
		if resp, _ := s.call(t, e.method, e.path, "", e.body, nil); resp.StatusCode != 401 {
			t.Errorf("%s %s without a session: %s, want 401", e.method, e.path, resp.Status)
		}
		for _, r := range Roles() {
			resp, data := s.call(t, e.method, e.path, tokens[r], e.body, nil)
			if r.Grant(e.perm) == GrantNone {
				if resp.StatusCode != 403 {
					t.Errorf("%s %s as %s: %s %s, want 403", e.method, e.path, r, resp.Status, data)
				}
			} else if resp.StatusCode == 401 || resp.StatusCode == 403 {
				t.Errorf("%s %s as %s: %s %s, want admitted", e.method, e.path, r, resp.Status, data)
			}
		}
	}
}

func TestHTTPSUserManagement(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	s.start(t)
	root := s.add(t, "root", RoleAdmin)
	admin := s.signIn(t, root)
	s.rec.take()

	resp, data := s.call(t, "POST", "/api/v1/users", admin, AddUserBody{Name: "olga", Role: RoleOfficer, Addresses: []string{"olga@example.com"}}, nil)
	var c Credentials
	if resp.StatusCode != 201 || json.Unmarshal(data, &c) != nil || !c.Generated || !strings.HasPrefix(c.TOTPURI, "otpauth://totp/") {
		t.Fatalf("add user: %s %s", resp.Status, data)
	}
	if resp, _ := s.call(t, "POST", "/api/v1/users", admin, AddUserBody{Name: "olga", Role: RoleOfficer}, nil); resp.StatusCode != 409 {
		t.Errorf("add existing user: %s, want 409", resp.Status)
	}
	if resp, _ := s.call(t, "POST", "/api/v1/users", admin, map[string]any{"name": "x", "role": "admin", "password": "chosen by admin"}, nil); resp.StatusCode != 400 {
		t.Errorf("add user with a password field: %s, want 400", resp.Status)
	}
	olga := s.signIn(t, c)
	resp, data = s.call(t, "GET", "/api/v1/users", admin, nil, nil)
	var ur UsersReply
	if resp.StatusCode != 200 || json.Unmarshal(data, &ur) != nil || len(ur.Users) != 2 || strings.Contains(string(data), "totp") {
		t.Errorf("list users: %s %s", resp.Status, data)
	}

	// Admin sees and revokes olga's session.
	resp, data = s.call(t, "GET", "/api/v1/sessions?user=olga", admin, nil, nil)
	var sr SessionsReply
	if resp.StatusCode != 200 || json.Unmarshal(data, &sr) != nil || len(sr.Sessions) != 1 || sr.Sessions[0].User != "olga" {
		t.Fatalf("olga's sessions: %s %s", resp.Status, data)
	}
	if resp, _ := s.call(t, "DELETE", "/api/v1/sessions/"+sr.Sessions[0].ID, admin, nil, nil); resp.StatusCode != 204 {
		t.Errorf("revoke olga's session: %s", resp.Status)
	}
	if resp, _ := s.call(t, "GET", "/api/v1/me", olga, nil, nil); resp.StatusCode != 401 {
		t.Errorf("olga after revoke: %s, want 401", resp.Status)
	}

	// Disable ends sessions; reset issues new factors.
	olga = s.signIn(t, c)
	if resp, data := s.call(t, "POST", "/api/v1/users/olga/disable", admin, nil, nil); resp.StatusCode != 200 || !strings.Contains(string(data), `"disabled":true`) {
		t.Errorf("disable: %s %s", resp.Status, data)
	}
	if resp, _ := s.call(t, "GET", "/api/v1/me", olga, nil, nil); resp.StatusCode != 401 {
		t.Errorf("disabled olga: %s, want 401", resp.Status)
	}
	if resp, _ := s.call(t, "POST", "/api/v1/users/olga/enable", admin, nil, nil); resp.StatusCode != 200 {
		t.Errorf("enable: %s", resp.Status)
	}
	resp, data = s.call(t, "POST", "/api/v1/users/olga/reset", admin, nil, nil)
	var c2 Credentials
	if resp.StatusCode != 200 || json.Unmarshal(data, &c2) != nil || c2.Password == c.Password {
		t.Fatalf("reset: %s %s", resp.Status, data)
	}
	s.signIn(t, c2)
	if resp, _ := s.call(t, "POST", "/api/v1/users/root/disable", admin, nil, nil); resp.StatusCode != 409 {
		t.Errorf("disable the last admin: %s, want 409", resp.Status)
	}
	if resp, _ := s.call(t, "POST", "/api/v1/users/ghost/reset", admin, nil, nil); resp.StatusCode != 404 {
		t.Errorf("reset unknown user: %s, want 404", resp.Status)
	}

	var got []string
	for _, e := range s.rec.take() {
		if e.Action != ActionLogin {
			got = append(got, fmt.Sprintf("%s:%s>%s", e.Action, e.User, e.Target))
		}
	}
	want := "user.add:root>olga session.revoke:root>olga user.disable:root>olga user.enable:root>olga user.reset:root>olga"
	if strings.Join(got, " ") != want {
		t.Errorf("events:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}

// TestHTTPSOwnSessions: a user lists and revokes only their own sessions.
func TestHTTPSOwnSessions(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	s.start(t)
	a := s.add(t, "amy", RoleAuditor)
	b := s.add(t, "ben", RoleAuditor)
	a1, a2, b1 := s.signIn(t, a), s.signIn(t, a), s.signIn(t, b)
	resp, data := s.call(t, "GET", "/api/v1/sessions", a1, nil, nil)
	var sr SessionsReply
	if resp.StatusCode != 200 || json.Unmarshal(data, &sr) != nil || len(sr.Sessions) != 2 {
		t.Fatalf("amy's sessions: %s %s", resp.Status, data)
	}
	_, data = s.call(t, "GET", "/api/v1/sessions", b1, nil, nil)
	var bs SessionsReply
	json.Unmarshal(data, &bs)
	if len(bs.Sessions) != 1 {
		t.Fatalf("ben's sessions: %s", data)
	}
	if resp, _ := s.call(t, "DELETE", "/api/v1/sessions/"+bs.Sessions[0].ID, a1, nil, nil); resp.StatusCode != 404 {
		t.Errorf("amy revokes ben's session: %s, want 404", resp.Status)
	}
	other := sr.Sessions[0].ID
	if other == sr.Current {
		other = sr.Sessions[1].ID
	}
	if resp, _ := s.call(t, "DELETE", "/api/v1/sessions/"+other, a1, nil, nil); resp.StatusCode != 204 {
		t.Errorf("amy revokes her other session: %s", resp.Status)
	}
	if resp, _ := s.call(t, "GET", "/api/v1/me", a2, nil, nil); resp.StatusCode != 401 {
		t.Errorf("revoked session: %s, want 401", resp.Status)
	}
	if resp, _ := s.call(t, "GET", "/api/v1/me", b1, nil, nil); resp.StatusCode != 200 {
		t.Errorf("ben's session: %s", resp.Status)
	}
}

func TestHTTPSCookieAndCSRF(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	s.start(t)
	c := s.add(t, "olga", RoleOfficer)
	resp, data := s.call(t, "POST", "/api/v1/session", "", LoginBody{User: "olga", Password: c.Password, TOTP: s.code(t, c), Cookie: true}, nil)
	var lr LoginReply
	if resp.StatusCode != 200 || json.Unmarshal(data, &lr) != nil || lr.Token != "" || lr.CSRF == "" {
		t.Fatalf("cookie login: %s %s", resp.Status, data)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies = %v", cookies)
	}
	ck := cookies[0]
	raw := resp.Header.Get("Set-Cookie")
	if ck.Name != "__Host-sealmail-session" || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode ||
		ck.Path != "/" || ck.Domain != "" || !strings.Contains(raw, "SameSite=Strict") {
		t.Errorf("cookie = %q", raw)
	}
	cookie := map[string]string{"Cookie": ck.Value}

	resp, data = s.call(t, "GET", "/api/v1/me", "", nil, cookie)
	var me MeReply
	if resp.StatusCode != 200 || json.Unmarshal(data, &me) != nil || me.CSRF != lr.CSRF || !me.Session.Cookie {
		t.Fatalf("me with cookie: %s %s", resp.Status, data)
	}
	// A state-changing request with the cookie needs the CSRF token.
	for _, h := range []map[string]string{cookie, {"Cookie": ck.Value, CSRFHeader: "wrong"}, {"Cookie": ck.Value, CSRFHeader: ""}} {
		if resp, data := s.call(t, "DELETE", "/api/v1/session", "", nil, h); resp.StatusCode != 403 || !strings.Contains(string(data), "CSRF") {
			t.Errorf("sign out with cookie and CSRF %q: %s %s, want 403", h[CSRFHeader], resp.Status, data)
		}
	}
	if resp, _ := s.call(t, "GET", "/api/v1/me", "", nil, cookie); resp.StatusCode != 200 {
		t.Fatalf("refused CSRF requests ended the session: %s", resp.Status)
	}
	resp, _ = s.call(t, "DELETE", "/api/v1/session", "", nil, map[string]string{"Cookie": ck.Value, CSRFHeader: lr.CSRF})
	if resp.StatusCode != 204 {
		t.Fatalf("sign out with CSRF: %s", resp.Status)
	}
	if cl := resp.Cookies(); len(cl) != 1 || cl[0].MaxAge >= 0 || cl[0].Name != CookieName {
		t.Errorf("sign out did not clear the cookie: %v", resp.Header.Get("Set-Cookie"))
	}
	if resp, _ := s.call(t, "GET", "/api/v1/me", "", nil, cookie); resp.StatusCode != 401 {
		t.Errorf("me after sign out: %s, want 401", resp.Status)
	}

	// A bearer session's token put in the cookie is refused: cookie sessions
	// are only those made for browsers.
	bearer := s.signIn(t, c)
	if resp, _ := s.call(t, "GET", "/api/v1/me", "", nil, map[string]string{"Cookie": bearer}); resp.StatusCode != 401 {
		t.Errorf("bearer token as a cookie: %s, want 401", resp.Status)
	}
	// A bearer request needs no CSRF token.
	if resp, _ := s.call(t, "DELETE", "/api/v1/session", bearer, nil, nil); resp.StatusCode != 204 {
		t.Errorf("bearer sign out: %s, want 204", resp.Status)
	}
}

func TestHTTPSThrottleAndLockout(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{Lockout: LockoutOptions{BaseDelay: 10 * time.Second, MaxDelay: 10 * time.Second, UserThreshold: 2, Period: time.Hour}})
	s.start(t)
	c := s.add(t, "root", RoleAdmin)
	s.rec.take()
	bad := LoginBody{User: "root", Password: "wrong password", TOTP: "000000"}
	if resp, _ := s.call(t, "POST", "/api/v1/session", "", bad, nil); resp.StatusCode != 401 {
		t.Fatalf("first failure: %s", resp.Status)
	}
	resp, data := s.call(t, "POST", "/api/v1/session", "", LoginBody{User: "root", Password: c.Password, TOTP: s.code(t, c)}, nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "10" {
		t.Errorf("right factors during backoff: %s Retry-After %q %s, want 429 after 10", resp.Status, resp.Header.Get("Retry-After"), data)
	}
	s.clk.Add(10 * time.Second)
	if resp, _ := s.call(t, "POST", "/api/v1/session", "", bad, nil); resp.StatusCode != 401 {
		t.Fatalf("second failure: %s", resp.Status)
	}
	s.clk.Add(10 * time.Second)
	resp, _ = s.call(t, "POST", "/api/v1/session", "", LoginBody{User: "root", Password: c.Password, TOTP: s.code(t, c)}, nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3590" {
		t.Errorf("right factors during lockout: %s Retry-After %q, want 429 after 3590", resp.Status, resp.Header.Get("Retry-After"))
	}
	var got []string
	for _, e := range s.rec.take() {
		got = append(got, fmt.Sprintf("%s/%s", e.Action, e.Outcome))
	}
	want := "login/fail login/throttled login/fail lockout/locked login/locked"
	if strings.Join(got, " ") != want {
		t.Errorf("events:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	s.clk.Add(time.Hour)
	s.signIn(t, c)
}

// TestHTTPSTLSPolicy: TLS 1.2+ with AEAD suites only, on the self-signed
// certificate made under STATEDIR/tls.
func TestHTTPSTLSPolicy(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{Hostnames: []string{"reader.example.org", "192.0.2.10"}})
	s.start(t)
	cfg := s.client.Transport.(*http.Transport).TLSClientConfig
	addr := strings.TrimPrefix(s.url, "https://")
	for _, tc := range []struct {
		name   string
		min    uint16
		max    uint16
		suites []uint16
		ok     bool
	}{
		{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, nil, true},
		{"TLS 1.2 AES-GCM", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, true},
		{"TLS 1.2 ChaCha20", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}, true},
		{"TLS 1.2 CBC", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}, false},
		{"TLS 1.2 CBC-SHA256", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}, false},
		{"TLS 1.1", tls.VersionTLS10, tls.VersionTLS11, nil, false},
	} {
		c := cfg.Clone()
		c.MinVersion, c.MaxVersion, c.CipherSuites = tc.min, tc.max, tc.suites
		conn, err := tls.Dial("tcp", addr, c)
		if err == nil {
			conn.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: handshake error %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(s.dir, certFile), filepath.Join(s.dir, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	for _, h := range []string{"localhost", "reader.example.org", "127.0.0.1", "::1", "192.0.2.10"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("self-signed certificate: %v", err)
		}
	}
	if fi, err := os.Stat(filepath.Join(s.dir, keyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v mode %v, want 0600", err, fi.Mode())
	}
	if s.srv.Fingerprint() != Fingerprint(cert) || len(s.srv.Fingerprint()) != 64 {
		t.Errorf("fingerprint %q", s.srv.Fingerprint())
	}
}

// TestServerCertificate: a configured certificate is served instead of a
// self-signed one; a self-signed one is kept across restarts.
func TestServerCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cp, kp := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := makeSelfSigned(cp, kp, []string{"archive.example.org"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	want, err := tls.LoadX509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Options{StateDir: filepath.Join(dir, "state"), CertFile: cp, KeyFile: kp, Password: cheap})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Fingerprint() != Fingerprint(want) {
		t.Errorf("configured certificate not used")
	}
	if _, err := os.Stat(filepath.Join(dir, "state", certFile)); err == nil {
		t.Errorf("a self-signed certificate was made although one is configured")
	}
	srv.Shutdown(context.Background())

	state := filepath.Join(dir, "state2")
	a, err := NewServer(Options{StateDir: state, Password: cheap})
	if err != nil {
		t.Fatal(err)
	}
	fp := a.Fingerprint()
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := NewServer(Options{StateDir: state, Password: cheap})
	if err != nil {
		t.Fatalf("NewServer after Shutdown (state closed?): %v", err)
	}
	defer b.Shutdown(context.Background())
	if b.Fingerprint() != fp {
		t.Errorf("self-signed certificate changed across restarts")
	}
	if _, err := NewServer(Options{StateDir: filepath.Join(dir, "state3"), CertFile: cp}); err == nil {
		t.Errorf("NewServer with a certificate but no key succeeded")
	}
}

// TestHTTPSLoginBodyLimit: an oversized sign-in body is refused before it is
// parsed.
func TestHTTPSLoginBodyLimit(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	s.start(t)
	resp, _ := s.call(t, "POST", "/api/v1/session", "", LoginBody{User: "x", Password: strings.Repeat("p", maxBody)}, nil)
	if resp.StatusCode != 413 {
		t.Errorf("oversized body: %s, want 413", resp.Status)
	}
}
