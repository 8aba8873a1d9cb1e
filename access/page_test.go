// SPDX-License-Identifier: Apache-2.0

package access

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// pageServer is a server with pages: /p (users), /e (enrolment), /pub
// (public); each answers who called it, and refusals name their reason.
func pageServer(t *testing.T) *server {
	t.Helper()
	s := newServer(t, Options{})
	who := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		fmt.Fprintf(w, "%s %v %s", r.Method, ok, p.User)
	})
	o := PageOptions{SignIn: "/in", Enrol: "/e", Refused: func(w http.ResponseWriter, r *http.Request, why Refusal) {
		p, _ := PrincipalFrom(r.Context())
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "refused %d %s", why, p.User)
	}}
	s.srv.HandlePage("/p", PermUsers, o, who)
	s.srv.HandleEnrolment("/e", o, who)
	s.srv.HandlePublic("/pub", who)
	s.srv.HandlePublic("POST /in", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		ns, err := s.srv.SignInBrowser(w, r, LoginBody{User: r.PostForm.Get("user"), Password: r.PostForm.Get("password"), TOTP: r.PostForm.Get("totp")})
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, ns.CSRF)
	}))
	s.start(t)
	s.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return s
}

// form posts values to path with the session cookie ck (if not empty) and
// returns the status, Location and body.
func (s *server) form(t *testing.T, method, path, ck string, v url.Values) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if ck != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: ck})
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

// browserSignIn signs in through SignInBrowser and returns the cookie and
// the CSRF token.
func (s *server) browserSignIn(t *testing.T, c Credentials, totp string) (string, string) {
	t.Helper()
	req, err := http.NewRequest("POST", s.url+"/in", strings.NewReader(url.Values{"user": {c.User.Name}, "password": {c.Password}, "totp": {totp}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	csrf, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
		t.Fatalf("SignInBrowser %s: %s %s", c.User.Name, resp.Status, csrf)
	}
	ck := resp.Cookies()[0]
	if ck.Name != CookieName || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Errorf("SignInBrowser cookie = %q", resp.Header.Get("Set-Cookie"))
	}
	return ck.Value, string(csrf)
}

func TestPageRedirectsAndRefusals(t *testing.T) {
	t.Parallel()
	s := pageServer(t)
	admin := s.add(t, "root", RoleAdmin)
	user := s.add(t, "jane", RoleUser, "jane@example.com")

	// No session: pages redirect to sign-in (with the page to return to for
	// a GET), public pages run without a principal.
	if code, loc, _ := s.form(t, "GET", "/p?x=1", "", nil); code != 303 || loc != "/in?next="+url.QueryEscape("/p?x=1") {
		t.Errorf("GET /p without a session: %d %q, want 303 to /in?next=", code, loc)
	}
	if code, loc, _ := s.form(t, "POST", "/p", "", nil); code != 303 || loc != "/in" {
		t.Errorf("POST /p without a session: %d %q, want 303 to /in", code, loc)
	}
	if code, _, body := s.form(t, "GET", "/pub", "", nil); code != 200 || body != "GET false " {
		t.Errorf("GET /pub without a session: %d %q", code, body)
	}

	s.clk.Add(totpPeriod * time.Second)
	ck, csrf := s.browserSignIn(t, admin, s.code(t, admin))
	if code, _, body := s.form(t, "GET", "/p", ck, nil); code != 200 || body != "GET true root" {
		t.Errorf("GET /p as admin: %d %q", code, body)
	}
	if code, _, body := s.form(t, "GET", "/pub", ck, nil); code != 200 || body != "GET true root" {
		t.Errorf("GET /pub as admin: %d %q, want the principal", code, body)
	}
	// A form post needs the session's CSRF token, in the form or the header.
	for _, v := range []url.Values{nil, {CSRFField: {"wrong"}}, {CSRFField: {""}}} {
		if code, _, body := s.form(t, "POST", "/p", ck, v); code != 403 || body != fmt.Sprintf("refused %d root", RefusedCSRF) {
			t.Errorf("POST /p with csrf %v: %d %q, want the CSRF refusal", v, code, body)
		}
	}
	if code, _, body := s.form(t, "POST", "/p", ck, url.Values{CSRFField: {csrf}}); code != 200 || body != "POST true root" {
		t.Errorf("POST /p with the CSRF token: %d %q", code, body)
	}
	if code, _, _ := s.form(t, "POST", "/p", ck, url.Values{"filler": {strings.Repeat("x", maxBody)}, CSRFField: {csrf}}); code != 400 {
		t.Errorf("POST /p with a body over 16 KiB: %d, want 400", code)
	}
	// A multipart form (a file upload) carries the token as a field too,
	// within the same bound.
	upload := func(csrf, file string) int {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		_ = mw.WriteField(CSRFField, csrf)
		fw, _ := mw.CreateFormFile("file", "id.txt")
		_, _ = fw.Write([]byte(file))
		_ = mw.Close()
		req, _ := http.NewRequest("POST", s.url+"/p", &b)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.AddCookie(&http.Cookie{Name: CookieName, Value: ck})
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := upload(csrf, "AGE-SECRET-KEY-1"); code != 200 {
		t.Errorf("multipart POST /p with the CSRF token: %d, want 200", code)
	}
	if code := upload("wrong", "x"); code != 403 {
		t.Errorf("multipart POST /p with a wrong CSRF token: %d, want 403", code)
	}
	if code := upload(csrf, strings.Repeat("x", maxBody)); code != 400 {
		t.Errorf("multipart POST /p over 16 KiB: %d, want 400", code)
	}
	// A full session on the enrolment page: admitted (the page decides).
	if code, _, body := s.form(t, "GET", "/e", ck, nil); code != 200 || body != "GET true root" {
		t.Errorf("GET /e as a full session: %d %q", code, body)
	}

	// A role without the permission: the role refusal, after the CSRF check.
	s.clk.Add(totpPeriod * time.Second)
	uck, ucsrf := s.browserSignIn(t, user, s.code(t, user))
	if code, _, body := s.form(t, "GET", "/p", uck, nil); code != 403 || body != fmt.Sprintf("refused %d jane", RefusedRole) {
		t.Errorf("GET /p as user: %d %q, want the role refusal", code, body)
	}
	if code, _, body := s.form(t, "POST", "/p", uck, url.Values{CSRFField: {ucsrf}}); code != 403 || body != fmt.Sprintf("refused %d jane", RefusedRole) {
		t.Errorf("POST /p as user: %d %q, want the role refusal", code, body)
	}
	// A bearer token needs no CSRF token.
	tok := s.signIn(t, admin)
	resp, data := s.call(t, "POST", "/p", tok, nil, nil)
	if resp.StatusCode != 200 || string(data) != "POST true root" {
		t.Errorf("POST /p with a bearer token: %s %q", resp.Status, data)
	}
}

func TestPageEnrolmentSession(t *testing.T) {
	t.Parallel()
	s := pageServer(t)
	c, err := s.st.AddUser(bg, cli, NewUser{Name: "olga", Role: RoleOfficer, Enrol: true})
	if err != nil {
		t.Fatal(err)
	}
	ck, csrf := s.browserSignIn(t, c, "")
	// Every page but the enrolment page sends it to enrolment.
	if code, loc, _ := s.form(t, "GET", "/p", ck, nil); code != 303 || loc != "/e" {
		t.Errorf("GET /p with an enrolment session: %d %q, want 303 to /e", code, loc)
	}
	if code, _, body := s.form(t, "POST", "/e", ck, url.Values{CSRFField: {csrf}}); code != 200 || body != "POST true olga" {
		t.Errorf("POST /e with an enrolment session: %d %q", code, body)
	}
	if code, _, body := s.form(t, "POST", "/e", ck, nil); code != 403 || body != fmt.Sprintf("refused %d olga", RefusedCSRF) {
		t.Errorf("POST /e without CSRF: %d %q", code, body)
	}
	// SignInBrowser refuses a malformed body as the API does.
	if code, _, body := s.form(t, "POST", "/in", "", url.Values{"user": {""}, "password": {"x"}}); code != 401 || !strings.Contains(body, "no user") {
		t.Errorf("SignInBrowser without a user: %d %q", code, body)
	}
}
