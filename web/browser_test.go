// SPDX-License-Identifier: Apache-2.0

package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/reader"
	"github.com/sealmail/sealmail/reader/readertest"
)

// The browser tests drive Debian's headless Chromium through the DevTools
// protocol (chromedp): one browser for the test binary, started by the
// first test that needs it, and a fresh browser context (cookies, storage)
// per tab. Every test server uses one TLS certificate, which the browser
// trusts by its key's hash.
var rig struct {
	certFile, keyFile string
	pool              *x509.CertPool
	spki              string
	dir               string

	once    sync.Once
	browser context.Context // nil: no chromium
	err     error
	stop    []func()
}

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sealmail-web-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	rig.dir = dir
	if rig.spki, err = makeCert(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		for _, f := range slices.Backward(rig.stop) {
			f()
		}
	}()
	return m.Run()
}

// browser returns the test binary's browser, starting it at the first call.
// Without chromium the test skips, or fails when CI is set.
func browser(t *testing.T) context.Context {
	t.Helper()
	rig.once.Do(startBrowser)
	if rig.err != nil {
		t.Fatal(rig.err)
	}
	if rig.browser == nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the browser tests need Debian's chromium (apt-get install chromium), and CI is set")
		}
		t.Skip("no chromium (apt-get install chromium)")
	}
	return rig.browser
}

func startBrowser() {
	exe, err := exec.LookPath("chromium")
	if err != nil {
		return
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", rig.spki), chromedp.UserDataDir(filepath.Join(rig.dir, "chromium")),
		chromedp.WindowSize(1280, 900))
	ctx, cancel := chromedp.NewContext(alloc)
	rig.stop = append(rig.stop, cancelAlloc, cancel)
	if err := chromedp.Do(ctx); err != nil {
		rig.err = fmt.Errorf("start chromium: %w", err)
		return
	}
	rig.browser = ctx
}

// makeCert writes a self-signed certificate for localhost and 127.0.0.1
// into dir and returns the base64 SHA-256 of its public key, for
// --ignore-certificate-errors-spki-list.
func makeCert(dir string) (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sealmail web test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	rig.certFile, rig.keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(rig.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(rig.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", err
	}
	rig.pool = x509.NewCertPool()
	rig.pool.AddCert(cert)
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// clock is the test servers' clock: real time plus an offset that each
// TOTP code moves on by a step, so that no code of a test is a replay.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// code is a TOTP code of secret, for a time step not used before.
func (c *clock) code(t *testing.T, secret string) string {
	t.Helper()
	c.mu.Lock()
	c.off += 30 * time.Second
	c.mu.Unlock()
	code, err := access.TOTPCode(secret, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// env is an access.Server with the web interface on 127.0.0.1, reached as
// https://localhost:PORT; with envOptions.reader, a reader is registered
// on it too (its API and the web pages' Options.Reader), attached to a
// real receiver through its control socket, unlocked and following it.
type env struct {
	srv  *access.Server
	st   *access.State
	url  string
	clk  *clock
	http *http.Client
	// recv and reader are set with envOptions.reader.
	recv   *readertest.Receiver
	reader *reader.Reader
}

type envOptions struct {
	webauthn bool
	// reader: run a receiver and a reader (env.ingest adds mail).
	reader bool
	web    Options
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{clk: &clock{}, url: fmt.Sprintf("https://localhost:%d", l.Addr().(*net.TCPAddr).Port)}
	opts := access.Options{StateDir: filepath.Join(t.TempDir(), "state"), CertFile: rig.certFile, KeyFile: rig.keyFile,
		Now: e.clk.Now, Password: access.PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1},
		Lockout: access.LockoutOptions{BaseDelay: time.Nanosecond, MaxDelay: time.Nanosecond}}
	if o.webauthn {
		opts.WebAuthn = access.WebAuthnOptions{RPID: "localhost", Origins: []string{e.url}}
	}
	if o.reader {
		e.recv = readertest.NewReceiver(t, t.TempDir(), archive.Options{Now: e.clk.Now, MinFreeBytes: -1})
		// The access server's audit events and approved requests go
		// through the reader, as in `sealmail access`.
		opts.Audit = func(ctx context.Context, ev access.Event) error { return e.reader.AuditAccess(ctx, ev) }
		opts.Execute = func(ctx context.Context, a access.Approval) error { return e.reader.Execute(ctx, a) }
	}
	if e.srv, err = access.NewServer(opts); err != nil {
		t.Fatal(err)
	}
	e.st = e.srv.State()
	stopReader := func() {}
	if o.reader {
		e.reader, err = reader.Open(context.Background(), reader.Options{StateDir: opts.StateDir, Receiver: e.recv.Client,
			Identities: []age.Identity{e.recv.Identity}, Now: e.clk.Now, Poll: 20 * time.Millisecond, Version: "test", Access: e.st})
		if err != nil {
			t.Fatal(err)
		}
		e.reader.Register(e.srv)
		o.web.Reader = e.reader
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { _ = e.reader.Run(ctx); close(ran) }()
		stopReader = func() {
			cancel()
			<-ran
			if err := e.reader.Close(); err != nil {
				t.Errorf("reader Close = %v", err)
			}
		}
	}
	if err := Register(e.srv, o.web); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown = %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
		stopReader()
	})
	e.http = e.client(t)
	return e
}

// ingest stores data with envelope env at the receiver (received now, by
// the env's clock, unless env says when) and waits until the reader has
// indexed it and seen that it is caught up.
func (e *env) ingest(t *testing.T, env *sealmail.Envelope, data []byte) sealmail.MessageID {
	t.Helper()
	if env.Received.IsZero() {
		env.Received = e.clk.Now()
	}
	id := e.recv.Ingest(env, data)
	seq := e.recv.Horizon(e.reader.Coverage().IndexedSeq)
	readertest.Wait(t, fmt.Sprintf("the reader did not index message %d (seq %d)", id, seq),
		func() bool { c := e.reader.Coverage(); return c.IndexedSeq >= seq && c.CaughtUp },
		func() any { return fmt.Sprintf("%+v", e.reader.Coverage()) })
	return id
}

// client is an HTTPS client with a cookie jar that does not follow
// redirects, for tests that need no browser.
func (e *env) client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: rig.pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// add adds a user (for handover: password, TOTP secret, recovery codes).
func (e *env) add(t *testing.T, name string, role access.Role, addrs ...string) access.Credentials {
	t.Helper()
	c, err := e.st.AddUser(context.Background(), access.Actor{Remote: "test"}, access.NewUser{Name: name, Role: role, Addresses: addrs})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tab is a browser tab of its own browser context, with a record of the
// page's Content-Security-Policy violations and script exceptions.
type tab struct {
	t   *testing.T
	e   *env
	ctx context.Context
	mu  sync.Mutex
	exc []string
}

// cspRecorder runs in every page before its own scripts (DevTools scripts
// are not subject to the page's CSP) and keeps the violations it reports.
const cspRecorder = `window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline")));`

func (e *env) tab(t *testing.T) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser(t), chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	tb := &tab{t: t, e: e}
	var wg sync.WaitGroup
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	wg.Go(func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.exc = append(tb.exc, ev.ExceptionDetails.Text+" "+fmt.Sprint(ev.ExceptionDetails.Exception))
			tb.mu.Unlock()
		}
	})
	tctx, tcancel := context.WithTimeout(ctx, 30*time.Second)
	tb.ctx = tctx
	t.Cleanup(func() {
		tcancel()
		cancel()
		wg.Wait()
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, x := range tb.exc {
			t.Errorf("script exception in a page: %s", x)
		}
	})
	if _, err := chromedp.Call(tctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspRecorder}); err != nil {
		t.Fatal(err)
	}
	return tb
}

// do runs actions, failing the test on an error.
func (b *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// open loads path and returns the document's response.
func (b *tab) open(path string) *network.Response {
	b.t.Helper()
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(b.e.url+path))
	if err != nil {
		b.t.Fatalf("open %s: %v", path, err)
	}
	return resp
}

// submit clicks sel (a submit button) and returns the response of the page
// that the form leads to.
func (b *tab) submit(sel string) *network.Response {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("submit %s: %v", sel, err)
	}
	return resp
}

// eval evaluates a script in the page.
func eval[T any](b *tab, script string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](script))
	if err != nil {
		b.t.Fatalf("eval %s: %v", script, err)
	}
	return v
}

// text is the visible text of the first element matching sel ("" if none).
func (b *tab) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel))
}

// has reports whether an element matches sel.
func (b *tab) has(sel string) bool {
	b.t.Helper()
	return eval[bool](b, fmt.Sprintf(`document.querySelector(%q) !== null`, sel))
}

// path is the path (and query) of the page shown.
func (b *tab) path() string {
	b.t.Helper()
	return eval[string](b, `location.pathname + location.search`)
}

// violations are the CSP violations of the page shown.
func (b *tab) violations() []string {
	b.t.Helper()
	return eval[[]string](b, `window.__csp || []`)
}

// signIn signs in through the sign-in form, typing as a person does, and
// returns the response of the page it leads to.
func (b *tab) signIn(user, password, code string) *network.Response {
	b.t.Helper()
	b.open(pathSignIn)
	return b.signInHere(user, password, code)
}

// signInHere fills in and sends the sign-in form of the page shown.
func (b *tab) signInHere(user, password, code string) *network.Response {
	b.t.Helper()
	if !b.has("#signin") {
		b.t.Fatalf("no sign-in form at %s", b.path())
	}
	// The name and code are typed; the long password is set (typing it key
	// by key costs a third of a second and tests nothing more).
	b.do(chromedp.SendKeys(chromedp.ID("user"), user), chromedp.SetValue(chromedp.ID("password"), password))
	if code != "" {
		b.do(chromedp.SendKeys(chromedp.ID("code"), code))
	}
	return b.submit(`#signin button[type=submit]`)
}

// header is a response header, whatever its case.
func header(r *network.Response, name string) string {
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// addAuthenticator gives the tab's browser a virtual security key (CTAP2,
// resident keys, user verification), which answers without a touch.
func addAuthenticator(t *testing.T, b *tab) {
	t.Helper()
	if _, err := chromedp.Call(b.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	_, err := chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolCtap2,
			Transport: webauthn.AuthenticatorTransportUsb, HasResidentKey: true, HasUserVerification: true,
			IsUserVerified: true, AutomaticPresenceSimulation: true}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReaderEnv shows the test env's reader: a message ingested at the
// receiver is indexed and found, and the people's events reach the
// receiver's audit log through it.
func TestReaderEnv(t *testing.T) {
	e := newEnv(t, envOptions{reader: true})
	id := e.ingest(t, &sealmail.Envelope{MailFrom: "ceo@example.com", RcptTo: []string{"ann@example.com"}, ClientIP: "192.0.2.1"},
		[]byte("From: ceo@example.com\r\nTo: ann@example.com\r\nSubject: quarterly figures\r\n\r\nHello.\r\n"))
	res, err := e.reader.Search(context.Background(), reader.Local("test"), "subject:quarterly", reader.SearchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 1 || len(res.Hits) != 1 || res.Hits[0].ID != id {
		t.Fatalf("search found %+v, want message %d", res, id)
	}
	e.add(t, "ann", access.RoleUser, "ann@example.com")
	found := false
	err = archive.ReadAudit(context.Background(), e.recv.Dir, archive.AuditFilter{}, func(ae archive.AuditEntry) error {
		found = found || ae.Type == "access.user.add" && ae.Fields["target"] == "ann"
		return nil
	})
	if err != nil || !found {
		t.Fatalf("the receiver's audit log has no entry of adding ann (err %v)", err)
	}
}
