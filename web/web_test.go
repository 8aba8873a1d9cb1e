// SPDX-License-Identifier: Apache-2.0

package web

import (
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sealmail/sealmail/access"
)

// get fetches path with c and returns the answer and its body.
func (e *env) get(t *testing.T, c *http.Client, path string) (*http.Response, string) {
	t.Helper()
	return e.do(t, c, "GET", path, nil)
}

func (e *env) do(t *testing.T, c *http.Client, method, path string, form url.Values, hdr ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(data)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token is the first csrf field of a page.
func token(t *testing.T, page string) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%s", page)
	}
	return m[1]
}

// signInHTTP signs in through the sign-in form with the client c.
func (e *env) signInHTTP(t *testing.T, c *http.Client, user, password, code string) {
	t.Helper()
	_, page := e.get(t, c, pathSignIn)
	resp, body := e.do(t, c, "POST", pathSignIn, url.Values{"csrf": {token(t, page)}, "user": {user}, "password": {password}, "code": {code}, "next": {"/"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in %s: %s\n%s", user, resp.Status, body)
	}
}

// TestPagesByRole: every page of the navigation answers each role as its
// permission says (and the navigation shows exactly those), every page
// carries the security headers, and the start page lists what the role
// may open.
func TestPagesByRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{reader: true})
	creds := map[access.Role]access.Credentials{}
	for _, r := range access.Roles() {
		var addrs []string
		if r == access.RoleUser {
			addrs = []string{"u@example.com"}
		}
		creds[r] = e.add(t, "x"+string(r), r, addrs...)
	}
	for _, r := range access.Roles() {
		c := e.client(t)
		e.signInHTTP(t, c, creds[r].User.Name, creds[r].Password, e.clk.code(t, creds[r].TOTPSecret))
		_, home := e.get(t, c, "/")
		for _, s := range sections() {
			resp, _ := e.get(t, c, s.path)
			want := http.StatusOK
			if r.Grant(s.perm) == access.GrantNone {
				want = http.StatusForbidden
			}
			if resp.StatusCode != want {
				t.Errorf("%s GET %s: %s, want %d", r, s.path, resp.Status, want)
			}
			checkHeaders(t, s.path, resp.Header)
			if shown := strings.Contains(home, `href="`+s.path+`"`); shown != (want == http.StatusOK) {
				t.Errorf("%s: start page links %s: %v, want %v", r, s.path, shown, want == http.StatusOK)
			}
		}
	}
	// Without a session: pages send to sign-in, which carries the headers.
	c := e.client(t)
	for _, p := range []string{"/", pathUsers, pathAccount, "/search"} {
		resp, _ := e.get(t, c, p)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != pathSignIn+"?next="+url.QueryEscape(p) {
			t.Errorf("GET %s without a session: %s to %q", p, resp.Status, resp.Header.Get("Location"))
		}
	}
	resp, _ := e.get(t, c, pathSignIn)
	checkHeaders(t, pathSignIn, resp.Header)
}

func checkHeaders(t *testing.T, path string, h http.Header) {
	t.Helper()
	for k, want := range map[string]string{"Content-Security-Policy": pageCSP, "Cache-Control": "no-store",
		"Strict-Transport-Security": "max-age=31536000", "X-Frame-Options": "DENY", "Content-Type": "text/html; charset=utf-8"} {
		if got := h.Get(k); got != want {
			t.Errorf("GET %s: %s = %q, want %q", path, k, got, want)
		}
	}
}

// TestCrossOriginPostRefused: a state-changing request that the browser
// marks as cross-site is refused even with the right cookie and token.
func TestCrossOriginPostRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.add(t, "root", access.RoleAdmin)
	e.add(t, "jane", access.RoleUser, "jane@example.com")
	cl := e.client(t)
	e.signInHTTP(t, cl, "root", c.Password, e.clk.code(t, c.TOTPSecret))
	_, page := e.get(t, cl, pathUsers)
	tok := token(t, page)
	resp, _ := e.do(t, cl, "POST", pathUsers+"/jane/disable", url.Values{"csrf": {tok}}, "Sec-Fetch-Site", "cross-site")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site disable: %s, want 403", resp.Status)
	}
	if u, _ := e.st.User(t.Context(), "jane"); u.Disabled {
		t.Fatal("a cross-site request disabled jane")
	}
	resp, _ = e.do(t, cl, "POST", pathUsers+"/jane/disable", url.Values{"csrf": {tok}}, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin disable with the token: %s, want 303", resp.Status)
	}
}

// TestUsersFormErrors: a refused add shows why, keeps what was typed
// (escaped) and adds nobody; the last admin cannot be disabled.
func TestUsersFormErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.add(t, "root", access.RoleAdmin)
	cl := e.client(t)
	e.signInHTTP(t, cl, "root", c.Password, e.clk.code(t, c.TOTPSecret))
	_, page := e.get(t, cl, pathUsers)
	tok := token(t, page)
	for _, tc := range []struct {
		form   url.Values
		status int
		want   string
	}{
		{url.Values{"name": {`<script>alert(1)</script>`}, "role": {"user"}, "addresses": {"a@example.com"}}, 400, `value="&lt;script&gt;alert(1)&lt;/script&gt;"`},
		{url.Values{"name": {"jane"}, "role": {"user"}}, 400, "at least one"},
		{url.Values{"name": {"tax"}, "role": {"auditor"}, "expires": {"31.12.2031"}}, 400, "expiry date"},
		{url.Values{"name": {"tax"}, "role": {"auditor"}, "scope": {`from:"<b>x"`}, "expires": {"2001-01-01"}}, 400, "not in the future"},
		{url.Values{"name": {"root"}, "role": {"admin"}}, 409, "exists"},
	} {
		tc.form.Set("csrf", tok)
		resp, body := e.do(t, cl, "POST", pathUsers, tc.form)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("add %v: %s, want %d with %q", tc.form, resp.Status, tc.status, tc.want)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<b>x") {
			t.Errorf("add %v: the page reflects the input unescaped", tc.form)
		}
	}
	if list, _ := e.st.Users(t.Context()); len(list) != 1 {
		t.Errorf("users after refused adds: %d, want 1", len(list))
	}
	resp, body := e.do(t, cl, "POST", pathUsers+"/root/disable", url.Values{"csrf": {tok}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "last enabled admin") {
		t.Errorf("disable the last admin: %s", resp.Status)
	}
	// A notice names only a user that exists.
	if _, body := e.get(t, cl, pathUsers+"?done=disabled&user=%3Cb%3Emallory"); strings.Contains(body, "mallory") {
		t.Error("the users page shows a notice about a user that does not exist")
	}
	if resp, _ := e.get(t, cl, pathUsers+"/nobody/reset"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("reset page of an unknown user: %s, want 404", resp.Status)
	}
}

// TestStatic: the style sheet and script are served with their type and
// cached for good (their URL changes with their content).
func TestStatic(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.client(t)
	_, page := e.get(t, c, pathSignIn)
	m := regexp.MustCompile(`href="(/static/style\.css\?v=[0-9a-f]{12})"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no versioned style sheet link in the sign-in page")
	}
	resp, body := e.get(t, c, m[1])
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/css; charset=utf-8" ||
		resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || !strings.Contains(body, ":focus-visible") {
		t.Errorf("GET %s: %s %q %q", m[1], resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
	if resp, _ := e.get(t, c, "/static/webauthn.js"); resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("webauthn.js: %q", resp.Header.Get("Content-Type"))
	}
	if resp, _ := e.get(t, c, "/static/nothing.js"); resp.StatusCode != 404 {
		t.Errorf("unknown static file: %s", resp.Status)
	}
}

// templateKeys finds the literal message keys the templates use.
var templateKeys = regexp.MustCompile(`\.T "([^"]+)"`)

// TestCatalogue: every key the templates and the code use has an English
// and a German text with the same format verbs, and every text is used.
func TestCatalogue(t *testing.T) {
	t.Parallel()
	cat := newCatalogue()
	used := map[string]bool{}
	err := fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := templateFS.ReadFile(p)
		for _, m := range templateKeys.FindAllStringSubmatch(string(data), -1) {
			used[m[1]] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Keys made at run time: roles, sections, methods, errors, notices.
	for _, r := range access.Roles() {
		used["role."+string(r)], used["role."+string(r)+".about"] = true, true
	}
	for _, s := range sections() {
		used[s.key], used[s.key+".about"] = true, true
	}
	for _, m := range []string{access.MethodTOTP, access.MethodRecovery, access.MethodWebAuthn, access.MethodEnrol} {
		used["method."+m] = true
	}
	for _, k := range []string{"forbidden", "csrf", "invalid", "notfound", "lastadmin", "internal"} {
		used["error."+k], used["error."+k+".text"] = true, true
	}
	for _, n := range accountNotices {
		used["account.done."+n] = true
	}
	for _, k := range []string{"format.time", "users.done.disabled", "users.done.enabled", "users.add.failed",
		"users.add.exists", "signin.failed", "signin.throttled", "enrol.wrong", "enrol.qr"} {
		used[k] = true
	}
	for _, k := range opsKeys() {
		used[k] = true
	}
	verbs := regexp.MustCompile(`%(\[\d\])?[sdv]`)
	for _, m := range messages() {
		if !used[m.key] {
			t.Errorf("message %q is not used", m.key)
		}
		if m.en == "" || m.de == "" {
			t.Errorf("message %q lacks a text: en %q de %q", m.key, m.en, m.de)
		}
		if en, de := len(verbs.FindAllString(m.en, -1)), len(verbs.FindAllString(m.de, -1)); en != de {
			t.Errorf("message %q: %d format verbs in English, %d in German", m.key, en, de)
		}
	}
	for k := range used {
		for _, l := range cat.codes {
			if _, ok := cat.byLang[l][k]; !ok {
				t.Errorf("key %q has no %s text", k, l)
			}
		}
	}
}

func TestLang(t *testing.T) {
	t.Parallel()
	u := &ui{cat: newCatalogue()}
	for _, tc := range []struct{ header, cookie, want string }{
		{"", "", "en"},
		{"de-DE,de;q=0.9,en;q=0.8", "", "de"},
		{"de-AT", "", "de"},
		{"fr-FR, de;q=0.5", "", "de"},
		{"fr-FR", "", "en"},
		{"en-GB,en;q=0.9,de;q=0.8", "", "en"},
		{";;;q=x,,", "", "en"},
		{"de", "en", "en"},
		{"en", "de", "de"},
		{"de", "xx", "de"},
		{strings.Repeat("de-DE-x-abcdefgh,", 1000), "", "de"},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Language", tc.header)
		if tc.cookie != "" {
			r.AddCookie(&http.Cookie{Name: langCookie, Value: tc.cookie})
		}
		if got := u.lang(r); got != tc.want {
			t.Errorf("lang(Accept-Language %.40q, cookie %q) = %q, want %q", tc.header, tc.cookie, got, tc.want)
		}
	}
}

func FuzzLang(f *testing.F) {
	for _, s := range []string{"", "de", "de-DE,de;q=0.9", "en;q=0.1,de;q=0.2", "*", "x-klingon;q=1.5", ";;"} {
		f.Add(s)
	}
	u := &ui{cat: newCatalogue()}
	f.Fuzz(func(t *testing.T, header string) {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Language", header)
		if got := u.lang(r); got != "en" && got != "de" {
			t.Errorf("lang(%q) = %q", header, got)
		}
	})
}

func TestLocalPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": "/", "/": "/", "/users": "/users", "/users?done=x": "/users?done=x", "//evil.example/": "/",
		`/\evil.example`: "/", "https://evil.example/": "/", "users": "/", "/a\nb": "/", "/a\\b": "/",
		"javascript:alert(1)": "/", "/%2F%2Fevil": "/%2F%2Fevil", strings.Repeat("/a", 2000): "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/", "/users", "//x", `/\x`, "http://x/", "/a?b=c#d", "/\t/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got := localPath(p)
		if got != "/" && got != p {
			t.Fatalf("localPath(%q) = %q: neither the path nor /", p, got)
		}
		// What it lets through resolves, in a browser's reading, to this
		// server (the URL parser treats \ as / for http(s)).
		u, err := url.Parse("https://reader.example" + strings.ReplaceAll(got, `\`, "/"))
		if err != nil {
			return // not a URL a browser could be sent to elsewhere either
		}
		if u.Host != "reader.example" {
			t.Fatalf("localPath(%q) = %q leads to host %q", p, got, u.Host)
		}
	})
}

// TestQRSVG: the QR code is well-formed SVG with an accessible name, a
// quiet zone and only what its label and geometry put in it.
func TestQRSVG(t *testing.T) {
	t.Parallel()
	svg, err := qrSVG("otpauth://totp/sealmail:jane?secret=ABC", `a "label" <b>`)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName xml.Name `xml:"svg"`
		ViewBox string   `xml:"viewBox,attr"`
		Label   string   `xml:"aria-label,attr"`
		Role    string   `xml:"role,attr"`
		Path    struct {
			D string `xml:"d,attr"`
		} `xml:"path"`
	}
	if err := xml.Unmarshal([]byte(svg), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, svg)
	}
	var n int
	if _, err := fmt.Sscanf(doc.ViewBox, "0 0 %d", &n); err != nil || (n-2*qrQuiet-17)%4 != 0 {
		t.Errorf("viewBox %q: not a QR code's size with its quiet zone", doc.ViewBox)
	}
	if doc.Role != "img" || doc.Label != `a "label" <b>` || !strings.HasPrefix(doc.Path.D, "M4 4h7v1h-7z") {
		t.Errorf("svg role %q label %q path %.20q", doc.Role, doc.Label, doc.Path.D)
	}
	if strings.Contains(string(svg), "<b>") {
		t.Error("the label is not escaped")
	}
}

// TestSignInThrottled: after the lockout threshold of failures, the
// sign-in page says how long to wait, with Retry-After, and does not check
// the password (the right one is refused too).
func TestSignInThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.add(t, "jane", access.RoleUser, "jane@example.com")
	cl := e.client(t)
	_, page := e.get(t, cl, pathSignIn)
	form := url.Values{"csrf": {token(t, page)}, "user": {"jane"}, "password": {"not her password"}, "code": {"123456"}}
	for range 10 { // access's default UserThreshold
		if resp, _ := e.do(t, cl, "POST", pathSignIn, form); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password: %s, want 401", resp.Status)
		}
	}
	form.Set("password", c.Password)
	form.Set("code", e.clk.code(t, c.TOTPSecret))
	resp, body := e.do(t, cl, "POST", pathSignIn, form)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		!regexp.MustCompile(`Too many failed sign-ins. Try again in \d+ seconds.`).MatchString(body) {
		t.Errorf("sign-in during lockout: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	if list, _ := e.st.Sessions(t.Context(), "jane"); len(list) != 0 {
		t.Errorf("a sign-in during lockout made a session")
	}
}
