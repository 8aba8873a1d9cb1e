// SPDX-License-Identifier: Apache-2.0

package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sealmail/sealmail/access"
)

// TestSignInTOTP: an admin signs in with a TOTP code computed from the
// secret, lands on the start page with the admin's navigation, under the
// security headers and a __Host- session cookie, and nothing on the page
// breaks its CSP.
func TestSignInTOTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.add(t, "root", access.RoleAdmin)
	b := e.tab(t)
	resp := b.open("/users")
	if !strings.HasPrefix(b.path(), pathSignIn+"?next=") {
		t.Fatalf("a page without a session: at %s, want the sign-in page", b.path())
	}
	checkPageHeaders(t, resp)
	resp = b.signInHere("root", c.Password, e.clk.code(t, c.TOTPSecret))
	if resp.Status != 200 || b.path() != pathUsers {
		t.Fatalf("after sign-in: %d at %s, want 200 at %s (the page asked for)", resp.Status, b.path(), pathUsers)
	}
	checkPageHeaders(t, resp)
	b.open("/")
	if got := b.text("h1"); got != "Welcome, root" {
		t.Errorf("start page heading = %q", got)
	}
	wantNav := []string{"Users", "Status", "Audit log", "Sessions and keys"}
	if got := eval[[]string](b, `[...document.querySelectorAll("nav a")].map(a => a.innerText)`); !slices.Equal(got, wantNav) {
		t.Errorf("admin navigation = %q, want %q", got, wantNav)
	}
	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{e.url}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ck := range cookies.Cookies {
		if ck.Name == access.CookieName {
			found = true
			if !ck.HTTPOnly || !ck.Secure || ck.SameSite != network.CookieSameSiteStrict || ck.Path != "/" || ck.Domain != "localhost" {
				t.Errorf("session cookie = %+v, want HttpOnly, Secure, SameSite=Strict, Path=/, host-only", ck)
			}
		}
	}
	if !found {
		t.Errorf("no %s cookie after sign-in", access.CookieName)
	}
	if v := b.violations(); len(v) != 0 {
		t.Errorf("CSP violations on the start page: %q", v)
	}
}

// checkPageHeaders checks the security headers every page carries.
func checkPageHeaders(t *testing.T, r *network.Response) {
	t.Helper()
	csp := header(r, "Content-Security-Policy")
	if csp != pageCSP || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("%s: Content-Security-Policy = %q", r.URL, csp)
	}
	for k, want := range map[string]string{"Cache-Control": "no-store", "Strict-Transport-Security": "max-age=31536000",
		"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		"Content-Type": "text/html; charset=utf-8", "Cross-Origin-Opener-Policy": "same-origin"} {
		if got := header(r, k); got != want {
			t.Errorf("%s: %s = %q, want %q", r.URL, k, got, want)
		}
	}
}

// TestSignInRefused: a wrong code, a wrong password and a replayed code
// are refused alike, with the name kept and no session; then the right
// code signs in.
func TestSignInRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.add(t, "olga", access.RoleOfficer)
	b := e.tab(t)
	code := e.clk.code(t, c.TOTPSecret)
	wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1000000)
	for _, try := range [][2]string{{c.Password, wrong}, {"not the password", code}} {
		resp := b.signIn("olga", try[0], try[1])
		if resp.Status != 401 || b.path() != pathSignIn || !strings.Contains(b.text("#signin-error"), "Sign-in failed") {
			t.Errorf("sign-in with a wrong factor: %d at %s, error %q", resp.Status, b.path(), b.text("#signin-error"))
		}
		if v := eval[string](b, `document.getElementById("user").value`); v != "olga" {
			t.Errorf("user name after a failed sign-in = %q, want it kept", v)
		}
		if eval[string](b, `document.getElementById("password").value`) != "" {
			t.Error("the password is in the page after a failed sign-in")
		}
	}
	if s, _ := e.st.Sessions(context.Background(), "olga"); len(s) != 0 {
		t.Fatalf("sessions after failed sign-ins: %+v", s)
	}
	if resp := b.signIn("olga", c.Password, code); resp.Status != 200 || b.path() != "/" {
		t.Fatalf("sign-in with the right code: %d at %s", resp.Status, b.path())
	}
	// The same code again (a replay, in another browser) is refused.
	b2 := e.tab(t)
	if resp := b2.signIn("olga", c.Password, code); resp.Status != 401 {
		t.Errorf("replayed code: %d, want 401", resp.Status)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestSignInRecoveryCodeAndSignOut: a recovery code signs in once; signing
// out ends the session, and the pages send the browser to sign-in again.
func TestSignInRecoveryCodeAndSignOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.add(t, "jane", access.RoleUser, "jane@example.com")
	b := e.tab(t)
	rc := strings.ToLower(c.RecoveryCodes[2]) // case and dashes do not matter
	if resp := b.signIn("jane", c.Password, rc); resp.Status != 200 || b.path() != "/" {
		t.Fatalf("recovery-code sign-in: %d at %s", resp.Status, b.path())
	}
	b.open(pathAccount)
	if got := b.text("#sessions tbody"); !strings.Contains(got, "password and recovery code") {
		t.Errorf("sessions list = %q, want the method", got)
	}
	resp := b.submit(`.me button[type=submit]`)
	if resp.Status != 200 || b.path() != pathSignIn {
		t.Fatalf("sign out: %d at %s", resp.Status, b.path())
	}
	if s, _ := e.st.Sessions(context.Background(), "jane"); len(s) != 0 {
		t.Errorf("sessions after sign-out: %+v", s)
	}
	b.open(pathAccount)
	if !strings.HasPrefix(b.path(), pathSignIn) {
		t.Errorf("account page after sign-out: at %s, want sign-in", b.path())
	}
	if resp := b.signIn("jane", c.Password, c.RecoveryCodes[2]); resp.Status != 401 {
		t.Errorf("the same recovery code again: %d, want 401", resp.Status)
	}
}

// TestRevokeSession: of two browsers signed in as one user, one signs the
// other out from the sessions page.
func TestRevokeSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.add(t, "tax", access.RoleAuditor)
	a, other := e.tab(t), e.tab(t)
	other.signIn("tax", c.Password, e.clk.code(t, c.TOTPSecret))
	a.signIn("tax", c.Password, e.clk.code(t, c.TOTPSecret))
	a.open(pathAccount)
	rows := eval[[]string](a, `[...document.querySelectorAll("#sessions tbody tr")].map(r => r.id)`)
	if len(rows) != 2 {
		t.Fatalf("sessions listed: %q, want 2", rows)
	}
	this := eval[string](a, `document.querySelector("#sessions .badge").closest("tr").id`)
	var victim string
	for _, id := range rows {
		if id != this {
			victim = id
		}
	}
	resp := a.submit("#" + victim + " button")
	if resp.Status != 200 || a.path() != pathAccount+"?done=revoked" || a.has("#"+victim) {
		t.Fatalf("revoke: %d at %s, row still there: %v", resp.Status, a.path(), a.has("#"+victim))
	}
	other.open(pathAccount)
	if !strings.HasPrefix(other.path(), pathSignIn) {
		t.Errorf("the revoked browser: at %s, want sign-in", other.path())
	}
	a.open(pathAccount)
	if a.path() != pathAccount {
		t.Errorf("the revoking browser was signed out too: at %s", a.path())
	}
}

// TestAdminAddsUser: an admin adds a user for handover and sees the
// credentials once, with a QR code that a QR reader decodes to the TOTP
// URI; the new user signs in with them and sees no admin page (403).
func TestAdminAddsUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{reader: true})
	c := e.add(t, "root", access.RoleAdmin)
	b := e.tab(t)
	b.signIn("root", c.Password, e.clk.code(t, c.TOTPSecret))
	b.open(pathUsers)
	b.do(chromedp.SendKeys(chromedp.ID("name"), "jane"), chromedp.SetValue(chromedp.ID("role"), "user"),
		chromedp.SendKeys(chromedp.ID("addresses"), "jane@example.com"), chromedp.Click(chromedp.ID("factor-handover")))
	resp := b.submit(`#add-user button[type=submit]`)
	if resp.Status != 201 {
		t.Fatalf("add user: %d %s", resp.Status, b.text("main"))
	}
	password, secret := b.text("#cred-password"), strings.ReplaceAll(b.text("#totp-secret"), " ", "")
	codes := eval[[]string](b, `[...document.querySelectorAll("#recovery-codes code")].map(c => c.innerText)`)
	if len(password) < 24 || len(secret) != 32 || len(codes) != access.RecoveryCodes {
		t.Fatalf("credentials page: password %q, secret %q, %d codes", password, secret, len(codes))
	}
	uri := scanQR(t, b, "svg.qr")
	if !strings.HasPrefix(uri, "otpauth://totp/") || !strings.Contains(uri, "secret="+secret) || !strings.Contains(uri, "jane") {
		t.Errorf("QR code reads %q, want the otpauth URI of jane with secret %s", uri, secret)
	}
	if v := b.violations(); len(v) != 0 {
		t.Errorf("CSP violations on the credentials page: %q", v)
	}
	// Shown once: the users page lists jane, but none of her secrets.
	b.open(pathUsers)
	html := eval[string](b, `document.documentElement.outerHTML`)
	if !b.has("#user-jane") || strings.Contains(html, password) || strings.Contains(html, secret) || strings.Contains(html, codes[0]) {
		t.Errorf("users page after adding jane: listed %v; shows her credentials: %v", b.has("#user-jane"),
			strings.Contains(html, password) || strings.Contains(html, secret))
	}

	// Jane signs in with what she was handed (the QR's secret).
	j := e.tab(t)
	if resp := j.signIn("jane", password, e.clk.code(t, secret)); resp.Status != 200 || j.path() != "/" {
		t.Fatalf("jane's sign-in: %d at %s", resp.Status, j.path())
	}
	wantNav := []string{"Search", "Sessions and keys"}
	if got := eval[[]string](j, `[...document.querySelectorAll("nav a")].map(a => a.innerText)`); !slices.Equal(got, wantNav) {
		t.Errorf("user navigation = %q, want %q", got, wantNav)
	}
	for _, p := range []string{pathUsers, "/audit", "/status"} {
		resp := j.open(p)
		if resp.Status != 403 || j.text("h1") != "Not for your role" {
			t.Errorf("user at %s: %d %q, want 403", p, resp.Status, j.text("h1"))
		}
	}
	if resp := j.open("/search"); resp.Status != 200 || !j.has("form#search") {
		t.Errorf("user at /search: %d, want the search page", resp.Status)
	}
}

// scanQR screenshots the element sel and decodes it with zbarimg (Debian's
// zbar-tools), a QR reader of its own.
func scanQR(t *testing.T, b *tab, sel string) string {
	t.Helper()
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("zbarimg missing (apt-get install zbar-tools), and CI is set")
		}
		t.Skip("zbarimg missing (apt-get install zbar-tools)")
	}
	png, err := chromedp.Run(b.ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(f, png, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(zbar, "--raw", "-q", f).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v (the QR code does not decode)", err)
	}
	return strings.TrimSpace(string(out))
}

// TestEnrolment: a user added for enrolment signs in with the password
// alone, is kept on the enrolment page, scans its QR code, confirms a code
// and sees the recovery codes once; then the password alone fails and a
// recovery code works.
func TestEnrolment(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.add(t, "root", access.RoleAdmin)
	admin := e.tab(t)
	admin.signIn("root", c.Password, e.clk.code(t, c.TOTPSecret))
	admin.open(pathUsers)
	admin.do(chromedp.SendKeys(chromedp.ID("name"), "olga"), chromedp.SetValue(chromedp.ID("role"), "officer"))
	if resp := admin.submit(`#add-user button[type=submit]`); resp.Status != 201 {
		t.Fatalf("add olga for enrolment: %d %s", resp.Status, admin.text("main"))
	}
	password := admin.text("#cred-password")
	if admin.has("svg.qr") || admin.has("#recovery-codes") || !admin.has("#cred-enrol") {
		t.Error("credentials for enrolment show a second factor")
	}

	b := e.tab(t)
	if resp := b.signIn("olga", password, ""); resp.Status != 200 || b.path() != pathEnrol {
		t.Fatalf("password-only first sign-in: %d at %s, want the enrolment page", resp.Status, b.path())
	}
	for _, p := range []string{"/", pathAccount, "/holds"} {
		b.open(p)
		if b.path() != pathEnrol {
			t.Errorf("enrolment session at %s: sent to %s, want %s", p, b.path(), pathEnrol)
		}
	}
	if b.has("nav") {
		t.Error("the enrolment page shows the navigation")
	}
	secret := strings.ReplaceAll(b.text("#totp-secret"), " ", "")
	uri := scanQR(t, b, "svg.qr")
	if !strings.Contains(uri, "secret="+secret) || !strings.Contains(uri, "olga") {
		t.Fatalf("enrolment QR code reads %q, want olga's URI with secret %s", uri, secret)
	}
	if href := eval[string](b, `document.querySelector(".qr-box a").getAttribute("href")`); href != uri {
		t.Errorf("open-in-app link = %q, want the URI %q", href, uri)
	}
	b.do(chromedp.SendKeys(chromedp.ID("code"), "000000"))
	if resp := b.submit(`main form.stack button`); resp.Status != 400 || !strings.Contains(b.text("main"), "does not match") {
		t.Errorf("wrong enrolment code: %d %q", resp.Status, b.text("[role=alert]"))
	}
	if secret2 := strings.ReplaceAll(b.text("#totp-secret"), " ", ""); secret2 != secret {
		t.Errorf("the secret changed after a wrong code: %s, was %s", secret2, secret)
	}
	b.do(chromedp.SendKeys(chromedp.ID("code"), e.clk.code(t, secret)))
	if resp := b.submit(`main form.stack button`); resp.Status != 200 {
		t.Fatalf("enrolment: %d %s", resp.Status, b.text("main"))
	}
	codes := eval[[]string](b, `[...document.querySelectorAll("#recovery-codes code")].map(c => c.innerText)`)
	if len(codes) != access.RecoveryCodes {
		t.Fatalf("recovery codes shown: %q", codes)
	}
	b.open("/")
	if b.path() != "/" || b.text("h1") != "Welcome, olga" {
		t.Errorf("after enrolment: at %s %q, want the start page", b.path(), b.text("h1"))
	}
	b.submit(`.me button[type=submit]`)
	if resp := b.signIn("olga", password, ""); resp.Status != 401 {
		t.Errorf("password-only sign-in after enrolment: %d, want 401", resp.Status)
	}
	if resp := b.signIn("olga", password, codes[0]); resp.Status != 200 || b.path() != "/" {
		t.Errorf("recovery-code sign-in after enrolment: %d at %s", resp.Status, b.path())
	}
	b.submit(`.me button[type=submit]`)
	if resp := b.signIn("olga", password, e.clk.code(t, secret)); resp.Status != 200 {
		t.Errorf("TOTP sign-in after enrolment: %d", resp.Status)
	}
}

// TestCSPBlocksInlineScript: an inline script and an inline style put into
// a page do not run, and the browser reports the violations.
func TestCSPBlocksInlineScript(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	b := e.tab(t)
	b.open(pathSignIn)
	if v := b.violations(); len(v) != 0 {
		t.Fatalf("the sign-in page itself violates its CSP: %q", v)
	}
	// DevTools scripts are exempt from the CSP; the elements they insert
	// are not.
	eval[bool](b, `(() => {
		const s = document.createElement("script");
		s.textContent = "window.__ran = true";
		document.body.appendChild(s);
		const st = document.createElement("style");
		st.textContent = "body { display: none }";
		document.head.appendChild(st);
		document.querySelector("h1").setAttribute("style", "color: red");
		return true;
	})()`)
	b.do(chromedp.Sleep(100 * 1e6)) // violation events are queued
	if eval[bool](b, `window.__ran === true`) {
		t.Error("an inline script ran")
	}
	if d := eval[string](b, `getComputedStyle(document.body).display`); d == "none" {
		t.Error("an inline style sheet applied")
	}
	if c := eval[string](b, `getComputedStyle(document.querySelector("h1")).color`); c == "rgb(255, 0, 0)" {
		t.Error("an inline style attribute applied")
	}
	v := strings.Join(b.violations(), "; ")
	for _, want := range []string{"script-src-elem", "style-src-elem", "style-src-attr"} {
		if !strings.Contains(v, want) {
			t.Errorf("CSP violations %q: none of %s", v, want)
		}
	}
}

// TestCSRF: a form post without the session's token is refused and
// changes nothing, in the sign-in form too; and a form on another site
// that posts to the reader cannot disable a user.
func TestCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.add(t, "root", access.RoleAdmin)
	e.add(t, "jane", access.RoleUser, "jane@example.com")
	b := e.tab(t)
	b.signIn("root", c.Password, e.clk.code(t, c.TOTPSecret))
	b.open(pathUsers)
	eval[bool](b, `(() => { document.querySelector("#user-jane input[name=csrf]").remove(); return true })()`)
	resp := b.submit("#user-jane .danger")
	if resp.Status != 403 || b.text("h1") != "Form expired" {
		t.Errorf("disable without the CSRF token: %d %q, want 403", resp.Status, b.text("h1"))
	}
	b.open(pathUsers)
	eval[bool](b, `(() => { document.querySelector("#user-jane input[name=csrf]").value = "forged"; return true })()`)
	if resp := b.submit("#user-jane .danger"); resp.Status != 403 {
		t.Errorf("disable with a wrong CSRF token: %d, want 403", resp.Status)
	}
	if u, _ := e.st.User(context.Background(), "jane"); u.Disabled {
		t.Fatal("a form post without the CSRF token disabled jane")
	}

	// Another site's form, posted from the signed-in browser.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/users/jane/disable"><input type="hidden" name="csrf" value="guess"><button id="go">win a prize</button></form>`, e.url)
	}))
	defer evil.Close()
	if _, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(evil.URL)); err != nil {
		t.Fatal(err)
	}
	resp = b.submit("#go")
	if resp.Status == 200 && b.path() == pathUsers+"?done=disabled&user=jane" {
		t.Error("a cross-site form disabled jane")
	}
	if u, _ := e.st.User(context.Background(), "jane"); u.Disabled {
		t.Errorf("a cross-site form post disabled jane (answer %d at %s)", resp.Status, b.path())
	}

	// The sign-in form needs the browser's form token.
	s := e.tab(t)
	s.open(pathSignIn)
	eval[bool](s, `(() => { document.querySelector("#signin input[name=csrf]").value = "forged"; return true })()`)
	s.do(chromedp.SendKeys(chromedp.ID("user"), "root"), chromedp.SendKeys(chromedp.ID("password"), c.Password),
		chromedp.SendKeys(chromedp.ID("code"), e.clk.code(t, c.TOTPSecret)))
	if resp := s.submit(`#signin button[type=submit]`); resp.Status != 403 {
		t.Errorf("sign-in with a forged form token: %d, want 403", resp.Status)
	}
	if list, _ := e.st.Sessions(context.Background(), "root"); len(list) != 1 {
		t.Errorf("sessions of root: %d, want 1 (the forged sign-in made none)", len(list))
	}
}

// TestLanguage: German for a browser that asks for it, switched to English
// with the switch, which is remembered.
func TestLanguage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	b := e.tab(t)
	if _, err := chromedp.Call(b.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}}); err != nil {
		t.Fatal(err)
	}
	resp := b.open(pathSignIn)
	if l := eval[string](b, `document.documentElement.lang`); l != "de" || b.text("h1") != "Anmelden" || header(resp, "Content-Language") != "de" {
		t.Fatalf("German browser: lang %q, heading %q", l, b.text("h1"))
	}
	if got := b.text("label[for=password]"); got != "Passwort" {
		t.Errorf("password label = %q", got)
	}
	b.submit(`button[name=lang][value=en]`)
	if l := eval[string](b, `document.documentElement.lang`); l != "en" || b.text("h1") != "Sign in" || b.path() != pathSignIn {
		t.Errorf("after the switch: lang %q, heading %q, at %s", l, b.text("h1"), b.path())
	}
	b.open(pathSignIn + "?next=/users")
	if b.text("h1") != "Sign in" {
		t.Errorf("the switch was not remembered: %q", b.text("h1"))
	}
	if p := eval[string](b, `document.querySelector("button[name=lang][value=en]").getAttribute("aria-pressed")`); p != "true" {
		t.Errorf("English button aria-pressed = %q", p)
	}
}

// TestWebAuthn: with a virtual authenticator in the browser, a user adds a
// security key on the account page and signs in with it.
func TestWebAuthn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{webauthn: true})
	c := e.add(t, "olga", access.RoleOfficer)
	b := e.tab(t)
	addAuthenticator(t, b)
	b.signIn("olga", c.Password, e.clk.code(t, c.TOTPSecret))
	b.open(pathAccount)
	if !b.has("#keys-none") {
		t.Fatalf("account page: %q", b.text("main"))
	}
	b.do(chromedp.WaitVisible(chromedp.ID("webauthn-register")), chromedp.SendKeys(chromedp.ID("key-name"), "test key"))
	b.submit(`#webauthn-register button`)
	b.do(chromedp.WaitVisible(chromedp.CSS(".notice")))
	if b.path() != pathAccount+"?done=key-added" || !strings.Contains(b.text("#keys"), "test key") {
		t.Fatalf("after adding a key: at %s, keys %q, error shown %v", b.path(), b.text("#keys"), !eval[bool](b, `document.getElementById("webauthn-error").hidden`))
	}
	b.submit(`.me button[type=submit]`)

	b.open(pathSignIn)
	b.do(chromedp.WaitVisible(chromedp.ID("webauthn-signin")),
		chromedp.SendKeys(chromedp.ID("user"), "olga"), chromedp.SendKeys(chromedp.ID("password"), c.Password))
	resp := b.submit("#webauthn-signin")
	if resp.Status != 200 || b.path() != "/" {
		t.Fatalf("security-key sign-in: %d at %s %q", resp.Status, b.path(), b.text("main"))
	}
	b.open(pathAccount)
	if !strings.Contains(b.text("#sessions"), "password and security key") {
		t.Errorf("sessions = %q, want the security-key method", b.text("#sessions"))
	}
	resp = b.submit(`#keys button`)
	if resp.Status != 200 || !b.has("#keys-none") {
		t.Errorf("remove the key: %d %q", resp.Status, b.text("main"))
	}
}

// TestSignInWithProvider: configured external providers get a link each.
func TestSignInWithProvider(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{web: Options{SignInWith: []Provider{{Name: "Keycloak", Path: "/oidc/start?p=kc"}}}})
	b := e.tab(t)
	b.open(pathSignIn)
	if href := eval[string](b, `document.querySelector(".providers a").getAttribute("href")`); href != "/oidc/start?p=kc" || b.text(".providers a") != "Sign in with Keycloak" {
		t.Errorf("provider link: %q %q", href, b.text(".providers a"))
	}
	if err := Register(e.srv, Options{SignInWith: []Provider{{Name: "evil", Path: "https://evil.example/"}}}); err == nil {
		t.Error("Register took a provider that is not a local path")
	}
}
