// SPDX-License-Identifier: Apache-2.0

package access

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The OIDC tests sign in against a real provider: zitadel/oidc's example
// OpenID Provider (v3.52.0, pinned in testdata/oidcop/go.mod), built from
// the module proxy once per test binary and run on 127.0.0.1.

var (
	opOnce sync.Once
	opBin  string
	opErr  error
)

// opBinary builds testdata/oidcop and returns the binary's path.
func opBinary(t *testing.T) string {
	t.Helper()
	opOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sealmail-oidcop-")
		if err != nil {
			opErr = err
			return
		}
		opBin = filepath.Join(dir, "oidcop")
		cmd := exec.Command("go", "build", "-o", opBin, ".")
		cmd.Dir = filepath.Join("testdata", "oidcop")
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			opErr = fmt.Errorf("build the test OIDC provider (zitadel/oidc's example, from the module proxy): %v\n%s", err, out)
		}
	})
	if opErr != nil {
		if testing.Short() {
			t.Skip(opErr)
		}
		t.Fatal(opErr)
	}
	return opBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if opBin != "" {
		os.RemoveAll(filepath.Dir(opBin))
	}
	os.Exit(code)
}

// opUser is a user of the test provider: the example's fields, and AMR and
// Groups (see testdata/oidcop).
type opUser struct {
	ID, Username, Password, Email string
	EmailVerified                 bool
	AMR, Groups                   []string
}

// The provider's users: olga signs in with a second factor there (amr
// otp), jane with a password only, mallory claims boss's address
// unverified, newbie is in the group that provisioning maps to role user,
// stranger is known to nobody.
var opUsers = []opUser{
	{ID: "sub-olga", Username: "olga", Password: "op-pw-olga", Email: "olga@example.com", EmailVerified: true, AMR: []string{"pwd", "otp"}, Groups: []string{"officers"}},
	{ID: "sub-jane", Username: "jane", Password: "op-pw-jane", Email: "jane@example.com", EmailVerified: true},
	{ID: "sub-mallory", Username: "mallory", Password: "op-pw-mallory", Email: "boss@example.com", EmailVerified: false},
	{ID: "sub-newbie", Username: "newbie", Password: "op-pw-newbie", Email: "newbie@example.com", EmailVerified: true, AMR: []string{"mfa"}, Groups: []string{"archive-users"}},
	{ID: "sub-stranger", Username: "stranger", Password: "op-pw-stranger", Email: "stranger@example.com", EmailVerified: true, AMR: []string{"mfa"}},
}

// startOP runs the provider with clients "web" and "other" (secret
// "secret") for redirects, and returns its issuer.
func startOP(t *testing.T, redirects []string) string {
	t.Helper()
	bin := opBinary(t)
	users := map[string]opUser{}
	for _, u := range opUsers {
		users[u.ID] = u
	}
	data, err := json.Marshal(users)
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(usersFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-users", usersFile, "-redirect", strings.Join(redirects, ","), "-lifetime", "5m")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the provider exits when its standard input closes
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("test provider's log:\n%s", stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(l)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case issuer := <-line:
		if !strings.HasPrefix(issuer, "http://127.0.0.1:") {
			t.Fatalf("test provider printed %q, want its issuer", issuer)
		}
		return issuer
	case <-time.After(30 * time.Second):
		t.Fatal("test provider did not start within 30 s")
	}
	return ""
}

// oidcServer is a Server with OIDC providers "test" (link by email,
// provisioning of group archive-users as role user, MFA from the provider
// or sealmail) and "strict" (the provider's MFA required, no linking or
// provisioning), both at the test provider as client "web", and the users
// olga (officer), jane (user), boss (admin).
type oidcServer struct {
	*server
	issuer string
	creds  map[string]Credentials
}

func newOIDCServer(t *testing.T) *oidcServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + l.Addr().String()
	issuer := startOP(t, []string{base + oidcCallbackPath("test"), base + oidcCallbackPath("strict")})
	opts := Options{OIDC: OIDCOptions{ReturnPath: "/app", Providers: []OIDCProvider{
		{Name: "test", DisplayName: "Test provider", Issuer: issuer, ClientID: "web", ClientSecret: "secret",
			RedirectURL: base + oidcCallbackPath("test"), LinkByEmail: true, UserInfo: true,
			Provision: &OIDCProvisioning{Roles: []OIDCRoleRule{{Claim: "groups", Value: "archive-users", Role: RoleUser}}}},
		{Name: "strict", Issuer: issuer, ClientID: "web", ClientSecret: "secret",
			RedirectURL: base + oidcCallbackPath("strict"), MFA: MFAProvider},
	}}}
	s := &oidcServer{server: newServer(t, opts), issuer: issuer, creds: map[string]Credentials{}}
	s.serve(t, l)
	s.creds["olga"] = s.add(t, "olga", RoleOfficer, "olga@example.com")
	s.creds["jane"] = s.add(t, "jane", RoleUser, "jane@example.com")
	s.creds["boss"] = s.add(t, "boss", RoleAdmin, "boss@example.com")
	s.rec.take()
	return s
}

// browser is an HTTP client with a cookie jar that trusts the reader and
// stops before the provider's redirect back to the reader's callback.
func (s *oidcServer) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	reader, _ := url.Parse(s.url)
	return &http.Client{
		Jar:       jar,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.pool}},
		Timeout:   20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host == reader.Host && strings.HasSuffix(req.URL.Path, "/callback") || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

func do(t *testing.T, c *http.Client, method, u string, body io.Reader, ctype string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// providerStep starts a sign-in at the reader, follows it to the
// provider's login form, signs in there as user, and returns the callback
// URL the provider redirects the browser to (not yet followed).
func (s *oidcServer) providerStep(t *testing.T, c *http.Client, provider, mode, user string) string {
	t.Helper()
	resp, data := do(t, c, "GET", s.url+APIVersion+"/oidc/"+provider+"/start?session="+mode+"&return=/app/inbox", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(data), `name="username"`) {
		t.Fatalf("start: %s at %s: %s", resp.Status, resp.Request.URL, data)
	}
	login := resp.Request.URL
	id := login.Query().Get("authRequestID")
	pw := ""
	for _, u := range opUsers {
		if u.Username == user {
			pw = u.Password
		}
	}
	form := url.Values{"username": {user}, "password": {pw}, "id": {id}}
	resp, data = do(t, c, "POST", login.Scheme+"://"+login.Host+"/login/username", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, s.url+APIVersion+"/oidc/"+provider+"/callback?") {
		t.Fatalf("login at the provider as %s: %s %s (Location %q)", user, resp.Status, data, loc)
	}
	return loc
}

// tokenSignIn runs a whole token sign-in of user and returns the callback's
// answer.
func (s *oidcServer) tokenSignIn(t *testing.T, provider, user string) (*http.Response, []byte) {
	t.Helper()
	c := s.browser(t)
	return do(t, c, "GET", s.providerStep(t, c, provider, "token", user), nil, "")
}

func (s *oidcServer) me(t *testing.T, token string) MeReply {
	t.Helper()
	resp, data := s.call(t, "GET", "/api/v1/me", token, nil, nil)
	var me MeReply
	if resp.StatusCode != 200 || json.Unmarshal(data, &me) != nil {
		t.Fatalf("me: %s %s", resp.Status, data)
	}
	return me
}

// events renders audit events as action/outcome/user/reason/method.
func events(ev []Event) []string {
	var out []string
	for _, e := range ev {
		out = append(out, fmt.Sprintf("%s/%s/%s/%s/%s", e.Action, e.Outcome, e.User, e.Reason, e.Method))
	}
	return out
}

func TestOIDCSignIn(t *testing.T) {
	t.Parallel()
	s := newOIDCServer(t)

	resp, data := s.call(t, "GET", "/api/v1/oidc/providers", "", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(data), `{"name":"test","display_name":"Test provider","start":"/api/v1/oidc/test/start"}`) {
		t.Errorf("providers: %s %s", resp.Status, data)
	}

	// olga: linked by her verified email at the first sign-in; the
	// provider's amr (otp) is her MFA.
	resp, data = s.tokenSignIn(t, "test", "olga")
	var lr LoginReply
	if resp.StatusCode != 200 || json.Unmarshal(data, &lr) != nil || lr.Token == "" {
		t.Fatalf("olga: %s %s", resp.Status, data)
	}
	if me := s.me(t, lr.Token); me.User != "olga" || me.Role != RoleOfficer || me.Session.Method != MethodOIDC {
		t.Errorf("olga's session: %+v", me)
	}
	ev := s.rec.take()
	if got, want := events(ev), []string{"oidc.link/ok/olga//", "login/ok/olga//oidc"}; !slices.Equal(got, want) {
		t.Errorf("olga's events = %v, want %v", got, want)
	}
	if ev[0].Subject != "sub-olga" || ev[1].Provider != "test" {
		t.Errorf("olga's events: %+v", ev)
	}
	// Again: found by her subject now, no second link.
	if resp, data = s.tokenSignIn(t, "test", "olga"); resp.StatusCode != 200 {
		t.Fatalf("olga again: %s %s", resp.Status, data)
	}
	if got, want := events(s.rec.take()), []string{"login/ok/olga//oidc"}; !slices.Equal(got, want) {
		t.Errorf("olga's second events = %v, want %v", got, want)
	}
	u, err := s.st.User(context.Background(), "olga")
	if err != nil || len(u.OIDC) != 1 || u.OIDC[0].Subject != "sub-olga" || u.OIDC[0].Issuer != s.issuer {
		t.Errorf("olga's links: %+v, %v", u.OIDC, err)
	}

	// jane: no MFA at the provider, so sealmail's TOTP completes it. A
	// wrong code ends the pending sign-in.
	resp, data = s.tokenSignIn(t, "test", "jane")
	var pend OIDCPendingReply
	if resp.StatusCode != 202 || json.Unmarshal(data, &pend) != nil || pend.Pending == "" {
		t.Fatalf("jane: %s %s, want 202 pending", resp.Status, data)
	}
	resp, _ = s.call(t, "POST", "/api/v1/session/oidc", "", OIDCFinishBody{Pending: pend.Pending, TOTP: "000000"}, nil)
	if resp.StatusCode != 401 {
		t.Errorf("wrong TOTP after OIDC: %s, want 401", resp.Status)
	}
	s.clk.Add(totpPeriod * time.Second)
	resp, _ = s.call(t, "POST", "/api/v1/session/oidc", "", OIDCFinishBody{Pending: pend.Pending, TOTP: s.code(t, s.creds["jane"])}, nil)
	if resp.StatusCode != 401 {
		t.Errorf("a pending sign-in used twice: %s, want 401", resp.Status)
	}
	_, data = s.tokenSignIn(t, "test", "jane")
	if err := json.Unmarshal(data, &pend); err != nil {
		t.Fatal(err)
	}
	resp, data = s.call(t, "POST", "/api/v1/session/oidc", "", OIDCFinishBody{Pending: pend.Pending, TOTP: s.code(t, s.creds["jane"])}, nil)
	if resp.StatusCode != 200 || json.Unmarshal(data, &lr) != nil {
		t.Fatalf("jane with TOTP: %s %s", resp.Status, data)
	}
	if me := s.me(t, lr.Token); me.User != "jane" || me.Session.Method != "oidc+totp" {
		t.Errorf("jane's session: %+v", me)
	}
	if got, want := events(s.rec.take()), []string{"oidc.link/ok/jane//", "login/fail/jane/totp/", "login/fail//oidc-state/",
		"login/ok/jane//oidc+totp"}; !slices.Equal(got, want) {
		t.Errorf("jane's events = %v, want %v", got, want)
	}

	// newbie: provisioned by the groups rule, with the verified email as
	// address; no password to sign in with otherwise.
	resp, data = s.tokenSignIn(t, "test", "newbie")
	if resp.StatusCode != 200 || json.Unmarshal(data, &lr) != nil {
		t.Fatalf("newbie: %s %s", resp.Status, data)
	}
	if me := s.me(t, lr.Token); me.User != "newbie" || me.Role != RoleUser || !slices.Equal(me.Addresses, []string{"newbie@example.com"}) {
		t.Errorf("newbie's session: %+v", me)
	}
	if got, want := events(s.rec.take()), []string{"user.add/ok///", "oidc.link/ok/newbie//", "login/ok/newbie//oidc"}; !slices.Equal(got, want) {
		t.Errorf("newbie's events = %v, want %v", got, want)
	}
	if _, err := s.st.Login(context.Background(), LoginRequest{User: "newbie", Password: "", TOTP: "123456", Remote: "192.0.2.9"}); !errors.Is(err, ErrSignInFailed) {
		t.Errorf("password sign-in of a provisioned user = %v, want ErrSignInFailed", err)
	}
}

func TestOIDCBrowser(t *testing.T) {
	t.Parallel()
	s := newOIDCServer(t)
	c := s.browser(t)
	// olga in a browser: the callback sets the session cookie and sends the
	// browser on to the page asked for by a page of ours.
	resp, data := do(t, c, "GET", s.providerStep(t, c, "test", "cookie", "olga"), nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(data), `content="0;url=/app/inbox"`) {
		t.Fatalf("browser callback: %s %s", resp.Status, data)
	}
	u, _ := url.Parse(s.url)
	var session *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == CookieName {
			session = ck
		}
	}
	if session == nil {
		t.Fatal("no session cookie after the browser callback")
	}
	resp, data = s.call(t, "GET", "/api/v1/me", "", nil, map[string]string{"Cookie": session.Value})
	if resp.StatusCode != 200 || !strings.Contains(string(data), `"user":"olga"`) || !strings.Contains(string(data), `"csrf":"`) {
		t.Errorf("me with the OIDC cookie: %s %s", resp.Status, data)
	}

	// jane in a browser: sent to the second-factor page with the pending
	// cookie, which then posts her TOTP code.
	c = s.browser(t)
	resp, data = do(t, c, "GET", s.providerStep(t, c, "test", "cookie", "jane"), nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(data), `url=/app?oidc=second-factor`) {
		t.Fatalf("jane's browser callback: %s %s", resp.Status, data)
	}
	s.clk.Add(totpPeriod * time.Second)
	body := fmt.Sprintf(`{"totp":%q,"cookie":true}`, s.code(t, s.creds["jane"]))
	resp, data = do(t, c, "POST", s.url+APIVersion+"/session/oidc", strings.NewReader(body), "application/json")
	if resp.StatusCode != 200 || !strings.Contains(string(data), `"csrf":"`) || strings.Contains(string(data), `"token"`) {
		t.Fatalf("jane's second factor: %s %s", resp.Status, data)
	}

	// A refusal in a browser: back to the page, told so.
	c = s.browser(t)
	resp, _ = do(t, c, "GET", s.providerStep(t, c, "strict", "cookie", "stranger"), nil, "")
	if got := resp.Request.URL.String(); got != s.url+"/app/inbox?oidc_error=sign-in-failed" {
		t.Errorf("refused browser callback went to %s, want /app/inbox?oidc_error=sign-in-failed", got)
	}
}

func TestOIDCRefusals(t *testing.T) {
	t.Parallel()
	s := newOIDCServer(t)
	reasons := func() []string {
		var out []string
		for _, e := range s.rec.take() {
			if e.Action == ActionLogin {
				out = append(out, fmt.Sprintf("%s/%s/%s", e.Outcome, e.User, e.Reason))
			}
		}
		return out
	}
	expect := func(what string, resp *http.Response, data []byte, want ...string) {
		t.Helper()
		if resp.StatusCode != 401 || strings.TrimSpace(string(data)) != `{"error":"sign-in failed"}` {
			t.Errorf("%s: %s %s, want 401 sign-in failed", what, resp.Status, data)
		}
		if got := reasons(); !slices.Equal(got, want) {
			t.Errorf("%s: audited %v, want %v", what, got, want)
		}
	}

	// Bad state.
	c := s.browser(t)
	resp, data := do(t, c, "GET", s.url+oidcCallbackPath("test")+"?state=forged&code=x", nil, "")
	expect("unknown state", resp, data, "fail//oidc-state")

	// A replayed callback: the state works once.
	cb := s.providerStep(t, c, "test", "token", "olga")
	if resp, data = do(t, c, "GET", cb, nil, ""); resp.StatusCode != 200 {
		t.Fatalf("olga: %s %s", resp.Status, data)
	}
	s.rec.take()
	resp, data = do(t, c, "GET", cb, nil, "")
	expect("replayed callback", resp, data, "fail//oidc-state")

	// A replayed code with a fresh state: the provider refuses it (and the
	// PKCE verifier is another).
	old, _ := url.Parse(cb)
	fresh, _ := url.Parse(s.providerStep(t, c, "test", "token", "olga"))
	q := fresh.Query()
	q.Set("code", old.Query().Get("code"))
	fresh.RawQuery = q.Encode()
	resp, data = do(t, c, "GET", fresh.String(), nil, "")
	expect("replayed code", resp, data, "fail//oidc-exchange")

	// The callback in another browser (no binding cookie): login CSRF.
	cb = s.providerStep(t, c, "test", "token", "olga")
	resp, data = do(t, s.browser(t), "GET", cb, nil, "")
	expect("callback without the binding cookie", resp, data, "fail//oidc-state")

	// The provider's error answer.
	cb = s.providerStep(t, c, "test", "token", "olga")
	u, _ := url.Parse(cb)
	q = u.Query()
	q.Del("code")
	q.Set("error", "access_denied")
	u.RawQuery = q.Encode()
	resp, data = do(t, c, "GET", u.String(), nil, "")
	expect("provider error", resp, data, "fail//oidc-provider-error")

	// MFA required at the provider: jane's token shows only pwd. (She is
	// linked through "test" first: strict does not link by email.)
	if resp, data = s.tokenSignIn(t, "test", "jane"); resp.StatusCode != 202 {
		t.Fatalf("jane: %s %s", resp.Status, data)
	}
	s.rec.take()
	resp, data = s.tokenSignIn(t, "strict", "jane")
	expect("no MFA claim where required", resp, data, "fail/jane/oidc-no-mfa")
	// … and olga's (linked above) shows otp.
	if resp, data = s.tokenSignIn(t, "strict", "olga"); resp.StatusCode != 200 {
		t.Errorf("olga with MFA through strict: %s %s", resp.Status, data)
	}
	s.rec.take()

	// Unknown people: stranger (no link, no provisioning at strict; no
	// group rule at test), and mallory, whose unverified email is boss's.
	resp, data = s.tokenSignIn(t, "strict", "stranger")
	expect("unknown user without provisioning", resp, data, "fail//oidc-unknown-user")
	resp, data = s.tokenSignIn(t, "test", "stranger")
	expect("unknown user no rule matches", resp, data, "fail//oidc-unknown-user")
	resp, data = s.tokenSignIn(t, "test", "mallory")
	expect("unverified email", resp, data, "fail//oidc-unknown-user")
	if u, _ := s.st.User(context.Background(), "boss"); len(u.OIDC) != 0 {
		t.Errorf("boss linked by an unverified email: %+v", u.OIDC)
	}
	if _, err := s.st.User(context.Background(), "stranger"); !errors.Is(err, ErrNoUser) {
		t.Errorf("stranger was added: %v", err)
	}

	// A disabled user.
	if err := s.st.DisableUser(context.Background(), cli, "olga"); err != nil {
		t.Fatal(err)
	}
	s.rec.take()
	resp, data = s.tokenSignIn(t, "test", "olga")
	expect("disabled user", resp, data, "fail/olga/disabled")

	// Unknown provider.
	if resp, _ := do(t, c, "GET", s.url+APIVersion+"/oidc/nope/start", nil, ""); resp.StatusCode != 404 {
		t.Errorf("unknown provider: %s, want 404", resp.Status)
	}

	// An admin links the refused subject (named in its audit entry) to a
	// user; then it signs in as that user, until unlinked.
	tokBoss := s.signIn(t, s.creds["boss"])
	tokJane := s.signIn(t, s.creds["jane"])
	link := LinkBody{Issuer: s.issuer, Subject: "sub-stranger"}
	if resp, _ := s.call(t, "POST", "/api/v1/users/boss/oidc", tokJane, link, nil); resp.StatusCode != 403 {
		t.Errorf("link by a non-admin: %s, want 403", resp.Status)
	}
	if resp, data := s.call(t, "POST", "/api/v1/users/boss/oidc", tokBoss, link, nil); resp.StatusCode != 200 || !strings.Contains(string(data), `"subject":"sub-stranger"`) {
		t.Fatalf("link: %s %s", resp.Status, data)
	}
	if resp, _ := s.call(t, "POST", "/api/v1/users/jane/oidc", tokBoss, link, nil); resp.StatusCode != 409 {
		t.Errorf("linking a linked subject again: %s, want 409", resp.Status)
	}
	s.rec.take()
	resp, data = s.tokenSignIn(t, "strict", "stranger")
	var lr LoginReply
	if resp.StatusCode != 200 || json.Unmarshal(data, &lr) != nil || s.me(t, lr.Token).User != "boss" {
		t.Errorf("linked subject: %s %s, want a session of boss", resp.Status, data)
	}
	if resp, _ := s.call(t, "DELETE", "/api/v1/users/boss/oidc?issuer="+url.QueryEscape(s.issuer), tokBoss, nil, nil); resp.StatusCode != 200 {
		t.Errorf("unlink: %s", resp.Status)
	}
	s.rec.take()
	resp, data = s.tokenSignIn(t, "strict", "stranger")
	expect("unlinked subject", resp, data, "fail//oidc-unknown-user")
}

// codeFlow runs the code flow at the provider as client, outside the
// reader, and returns the token answer and the nonce sent.
func (s *oidcServer) codeFlow(t *testing.T, client, user string) (*oauth2.Token, string) {
	t.Helper()
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, s.issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{ClientID: client, ClientSecret: "secret", Endpoint: p.Endpoint(),
		RedirectURL: s.url + oidcCallbackPath("test"), Scopes: []string{oidc.ScopeOpenID}}
	verifier, nonce := oauth2.GenerateVerifier(), randomToken(16)
	c := s.browser(t)
	resp, data := do(t, c, "GET", conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("auth: %s %s", resp.Status, data)
	}
	login := resp.Request.URL
	var pw string
	for _, u := range opUsers {
		if u.Username == user {
			pw = u.Password
		}
	}
	form := url.Values{"username": {user}, "password": {pw}, "id": {login.Query().Get("authRequestID")}}
	resp, _ = do(t, c, "POST", login.Scheme+"://"+login.Host+"/login/username", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("no code: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok, nonce
}

// TestOIDCTokenChecks verifies real ID tokens of the provider the way the
// callback does: one issued to another client, one past its expiry, one
// with another nonce are refused; the same tokens pass where they should.
func TestOIDCTokenChecks(t *testing.T) {
	t.Parallel()
	s := newOIDCServer(t)
	ctx := context.Background()
	rp := s.st.oidc["test"]
	p, err := rp.discover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now

	tok, nonce := s.codeFlow(t, "web", "olga")
	if _, sub, err := rp.verify(ctx, p, tok, nonce, now); err != nil || sub != "sub-olga" {
		t.Fatalf("verify a good token = %q, %v", sub, err)
	}
	if _, _, err := rp.verify(ctx, p, tok, "another nonce", now); err == nil || !strings.Contains(err.Error(), "nonce") {
		t.Errorf("verify with another nonce = %v, want a nonce error", err)
	}
	later := func() time.Time { return time.Now().Add(2 * time.Hour) } // the example's ID tokens live 1 h
	var expired *oidc.TokenExpiredError
	if _, _, err := rp.verify(ctx, p, tok, nonce, later); !errors.As(err, &expired) {
		t.Errorf("verify 2 h later = %v, want a TokenExpiredError", err)
	}

	other, nonce := s.codeFlow(t, "other", "olga")
	if _, _, err := rp.verify(ctx, p, other, nonce, now); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Errorf("verify a token for client other = %v, want an audience error", err)
	}
	cfg := rp.cfg
	cfg.ClientID = "other"
	rpOther := &relyingParty{cfg: cfg, client: rp.client}
	if _, _, err := rpOther.verify(ctx, p, other, nonce, now); err != nil {
		t.Errorf("the same token verified as client other = %v", err)
	}
}

func TestOIDCClaims(t *testing.T) {
	t.Parallel()
	rps, err := newOIDC(OIDCOptions{Providers: []OIDCProvider{{Name: "kc", Issuer: "https://id.example.org/realms/x",
		ClientID: "sealmail", RedirectURL: "https://archive.example.org" + oidcCallbackPath("kc"), ACRValues: []string{"gold"},
		EmailDomains: []string{"example.org"},
		Provision: &OIDCProvisioning{AddressClaims: []string{"aliases"}, Roles: []OIDCRoleRule{
			{Claim: "groups", Value: "officers", Role: RoleOfficer}, {Claim: "roles", Value: "reader", Role: RoleUser}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	rp := rps["kc"]
	for _, tc := range []struct {
		claims string
		mfa    bool
		role   Role
		addrs  []string
	}{
		{`{"amr":["pwd","otp"],"groups":["officers"],"email":"A@Example.org","email_verified":true}`, true, RoleOfficer, []string{"a@example.org"}},
		{`{"amr":["pwd"],"acr":"gold","roles":"reader","email":"b@example.org","email_verified":"true","aliases":["b2@example.org","x"]}`, true, RoleUser, []string{"b@example.org", "b2@example.org"}},
		{`{"amr":"mfa","roles":["reader"],"email":"c@example.org"}`, true, "", nil}, // user without a verified address
		{`{"amr":["swk"],"acr":"1","groups":["officers"],"email":"d@other.example","email_verified":true}`, false, RoleOfficer, nil},
		{`{"amr":[1,true],"groups":"nobody"}`, false, "", nil},
	} {
		var c claims
		if err := json.Unmarshal([]byte(tc.claims), &c); err != nil {
			t.Fatal(err)
		}
		if got := rp.providerMFA(c); got != tc.mfa {
			t.Errorf("providerMFA(%s) = %v, want %v", tc.claims, got, tc.mfa)
		}
		role, addrs, _ := rp.provisioning(c)
		if role != tc.role || !slices.Equal(addrs, tc.addrs) {
			t.Errorf("provisioning(%s) = %s %v, want %s %v", tc.claims, role, addrs, tc.role, tc.addrs)
		}
	}
	for name, p := range map[string]OIDCProvider{
		"http issuer":   {Name: "a", Issuer: "http://id.example.org", ClientID: "c", RedirectURL: "https://h" + oidcCallbackPath("a")},
		"wrong path":    {Name: "a", Issuer: "https://id.example.org", ClientID: "c", RedirectURL: "https://h/callback"},
		"no client":     {Name: "a", Issuer: "https://id.example.org", RedirectURL: "https://h" + oidcCallbackPath("a")},
		"bad name":      {Name: "A/B", Issuer: "https://id.example.org", ClientID: "c"},
		"bad mfa":       {Name: "a", Issuer: "https://id.example.org", ClientID: "c", RedirectURL: "https://h" + oidcCallbackPath("a"), MFA: "none"},
		"auditor rule":  {Name: "a", Issuer: "https://id.example.org", ClientID: "c", RedirectURL: "https://h" + oidcCallbackPath("a"), Provision: &OIDCProvisioning{Roles: []OIDCRoleRule{{Claim: "g", Value: "v", Role: RoleAuditor}}}},
		"no rules":      {Name: "a", Issuer: "https://id.example.org", ClientID: "c", RedirectURL: "https://h" + oidcCallbackPath("a"), Provision: &OIDCProvisioning{}},
		"query issuer":  {Name: "a", Issuer: "https://id.example.org/?x=1", ClientID: "c", RedirectURL: "https://h" + oidcCallbackPath("a")},
		"relative URLs": {Name: "a", Issuer: "id.example.org", ClientID: "c", RedirectURL: oidcCallbackPath("a")},
	} {
		if _, err := newOIDC(OIDCOptions{Providers: []OIDCProvider{p}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: newOIDC = %v, want ErrInvalid", name, err)
		}
	}
	for in, want := range map[string]string{"/app": "/app", "/": "/", "//evil.example": "/d", "https://evil.example": "/d",
		"/a\\b": "/d", "/a\"><script>": "/d", "": "/d", "/a?b=c&d=e": "/a?b=c&d=e", "/%2F%2Fx": "/%2F%2Fx"} {
		if got := localPath(in, "/d"); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}
