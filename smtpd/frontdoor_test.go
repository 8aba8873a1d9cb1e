// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dialFrom connects from a chosen loopback address (127.0.0.0/8 is all
// local on Linux), so that tests can play several clients.
func dialFrom(t testing.TB, from, addr string) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// TestCommandLineLimit: command lines are bounded before and after TLS,
// independent of the message size; a huge line costs no heap and is not
// logged; content lines are bounded by the message size only. Not
// parallel: it measures the process's allocations.
func TestCommandLineLimit(t *testing.T) {
	srvTLS, cliTLS := testTLS(t)
	var logs lockedBuffer
	ing := &memIngester{}
	_, addr := startServer(t, ing, Options{
		TLSConfig: srvTLS,
		Logger:    slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, false)

	huge := strings.Repeat("a", 16<<20)
	cases := []struct {
		name string
		line []byte
		tls  bool
	}{
		{"RCPT", []byte("RCPT TO:<" + huge + "@archive.test>\r\n"), false},
		{"NOOP", []byte("NOOP " + huge + "\r\n"), false},
		{"RCPT after STARTTLS", []byte("RCPT TO:<" + huge + "@archive.test>\r\n"), true},
		{"MAIL after STARTTLS", []byte("MAIL FROM:<" + huge + ">\r\n"), true},
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, tc := range cases {
		c := dialRaw(t, addr)
		c.expect(220, "")
		c.cmd("EHLO client.test", 250, "")
		if tc.tls {
			c.startTLS(cliTLS)
			c.cmd("EHLO client.test", 250, "")
		}
		c.cmd("MAIL FROM:<s@example.org>", 250, "")
		// The server stops reading at the limit: write in the background,
		// the write fails once the connection is closed.
		go c.conn.Write(tc.line)
		if code, text, err := c.reply(); code != 500 || !strings.HasPrefix(text, "5.4.0") {
			t.Fatalf("%s: reply %d %.100q %v, want 500 5.4.0", tc.name, code, text, err)
		}
		if _, _, err := c.reply(); err == nil {
			t.Errorf("%s: connection open after a %d-byte line", tc.name, len(tc.line))
		}
	}
	runtime.ReadMemStats(&after)
	// 4 lines of 16 MiB: the old limit (message size + 1 KiB) buffered
	// each whole; now a few KiB each are read. (TLS records for the
	// STARTTLS cases are encrypted by the test itself, 2 × 16 MiB.)
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Errorf("four 16 MiB command lines allocated %d bytes on the heap, want far less than one line", got)
	}
	if n := len(logs.String()); n > 64<<10 {
		t.Errorf("logs grew %d bytes: huge input echoed", n)
	}

	// A line just under the limit is a command; an address in it is
	// logged cut.
	c := dialRaw(t, addr)
	c.expect(220, "")
	c.cmd("EHLO client.test", 250, "")
	c.cmd("MAIL FROM:<s@example.org>", 250, "")
	long := strings.Repeat("r", DefaultMaxCommandLineBytes-40)
	c.cmd("RCPT TO:<"+long+"@archive.test>", 250, "")
	if strings.Contains(logs.String(), long[:1000]) {
		t.Errorf("debug log holds a 1000-byte piece of a %d-byte address", len(long))
	}
	// Content lines are not command lines: a 1 MiB line is a message.
	line := strings.Repeat("b", 1<<20) + "\r\n"
	c.cmd("DATA", 354, "")
	c.send(dotStuff([]byte(line)))
	id := queuedID(t, c.expect(250, ""))
	if got := ing.messages()[id-1].data; string(got) != line {
		t.Errorf("1 MiB content line ingested as %d bytes", len(got))
	}
	c.cmd("QUIT", 221, "")
}

// TestInFlightBudget: past the budget MAIL gets 452 4.3.1, content that
// outgrows it too, and the budget is whole again when every transaction
// has ended.
func TestInFlightBudget(t *testing.T) {
	t.Parallel()
	// Numbers: an initial charge is 4 × 64.5 KiB = 258 KiB; growing to
	// 96.75 KiB charges old and new buffer (645 KiB) for the copy, then
	// the new one (387 KiB).
	const maxMsg = 200 << 10
	ing := &memIngester{started: make(chan struct{}), release: make(chan struct{})}
	const budget = 1000 << 10
	s, addr := startServer(t, ing, Options{MaxMessageBytes: maxMsg, MaxInFlightBytes: budget}, false)

	// A declared SIZE of the whole message takes the whole budget.
	a := dialRaw(t, addr)
	a.expect(220, "")
	a.cmd("EHLO a.test", 250, "")
	a.cmd(fmt.Sprintf("MAIL FROM:<s@example.org> SIZE=%d", maxMsg), 250, "")
	a.cmd("RCPT TO:<j@archive.test>", 250, "")
	b := dialRaw(t, addr)
	b.expect(220, "")
	b.cmd("EHLO b.test", 250, "")
	b.cmd("MAIL FROM:<s@example.org> SIZE=10", 452, "4.3.1")
	// While a's message is being ingested the budget stays taken.
	a.cmd("DATA", 354, "")
	a.send(dotStuff([]byte(strings.Repeat("x", 1000) + "\r\n")))
	<-ing.started
	b.cmd("MAIL FROM:<s@example.org>", 452, "4.3.1")
	ing.release <- struct{}{}
	a.expect(250, "2.0.0")
	if got := s.budget.inUse(); got != 0 {
		t.Errorf("budget in use after the message = %d, want 0", got)
	}

	// Without SIZE, content is charged as it arrives: two transactions
	// fit at first, the second's growth does not.
	a.cmd("MAIL FROM:<s@example.org>", 250, "")
	a.cmd("RCPT TO:<j@archive.test>", 250, "")
	b.cmd("MAIL FROM:<s@example.org>", 250, "")
	b.cmd("RCPT TO:<j@archive.test>", 250, "")
	a.cmd("DATA", 354, "")
	a.send(dotStuff([]byte(strings.Repeat(strings.Repeat("y", 998)+"\r\n", 90))))
	<-ing.started // a holds ~90 KB of content, charged
	b.cmd("DATA", 354, "")
	b.send(dotStuff([]byte(strings.Repeat(strings.Repeat("z", 998)+"\r\n", 90))))
	b.expect(452, "4.3.1")
	ing.release <- struct{}{}
	a.expect(250, "2.0.0")
	// RSET and a dropped connection give their charge back too.
	b.cmd("MAIL FROM:<s@example.org> SIZE=5000", 250, "")
	b.cmd("RSET", 250, "")
	a.cmd("MAIL FROM:<s@example.org> SIZE=5000", 250, "")
	a.conn.Close()
	b.cmd("QUIT", 221, "")
	for i := 0; s.budget.inUse() != 0 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.budget.inUse(); got != 0 {
		t.Errorf("budget in use after all transactions = %d, want 0", got)
	}
	if n := len(ing.messages()); n != 2 {
		t.Errorf("ingested %d messages, want 2", n)
	}
}

// TestFairSlots: slow clients holding every slot they may have do not stop
// a journaling source; one address gets MaxConnectionsPerIP.
func TestFairSlots(t *testing.T) {
	t.Parallel()
	ing := &memIngester{}
	srv, addr := startServer(t, ing, Options{
		MaxConnections:      6,
		ReservedConnections: 2,
		MaxConnectionsPerIP: 2,
		TrustedNetworks:     []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
	}, false)
	// Slow clients from four addresses: one byte of a command each, then
	// nothing (as a 1 byte/s client would).
	var slow []*rawClient
	for i := range 4 {
		c := dialFrom(t, fmt.Sprintf("127.0.1.%d", i+1), addr)
		c.expect(220, "")
		c.send("E")
		slow = append(slow, c)
	}
	// Untrusted slots (6 - 2 reserved) are full.
	c := dialFrom(t, "127.0.1.9", addr)
	c.expect(421, "4.7.0")
	// The journaling source gets its reserved slots.
	for range 2 {
		j := dialFrom(t, "127.0.0.2", addr)
		j.expect(220, "")
		j.cmd("EHLO exchange.test", 250, "")
		j.cmd("MAIL FROM:<journal@example.org>", 250, "")
		j.cmd("RCPT TO:<j@archive.test>", 250, "")
		j.cmd("DATA", 354, "")
		j.send(dotStuff([]byte("Subject: journal\r\n\r\nreport\r\n")))
		j.expect(250, "2.0.0")
		j.cmd("QUIT", 221, "")
	}
	// Per-address cap, below the free slots.
	for _, c := range slow {
		c.conn.Close()
	}
	for i := 0; srv.connCount() > 0; i++ {
		if i == 1000 {
			t.Fatalf("%d connections still counted 10 s after their clients left", srv.connCount())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 3 {
		c := dialFrom(t, "127.0.1.20", addr)
		if i < 2 {
			c.expect(220, "")
		} else {
			c.expect(421, "4.7.0 Too many connections from your address")
		}
	}
}

// TestSessionTimeAndIdleBudget: NOOP loops end at MaxIdleCommands, which a
// delivered message refills; MaxSessionTime ends even a client that keeps
// sending.
func TestSessionTimeAndIdleBudget(t *testing.T) {
	t.Parallel()
	ing := &memIngester{}
	_, addr := startServer(t, ing, Options{MaxIdleCommands: 5}, false)
	c := dialRaw(t, addr)
	c.expect(220, "")
	c.cmd("EHLO client.test", 250, "") // 1
	c.cmd("NOOP", 250, "")             // 2
	c.cmd("RSET", 250, "")             // 3
	c.cmd("MAIL FROM:<s@example.org>", 250, "")
	c.cmd("RCPT TO:<j@archive.test>", 250, "")
	c.cmd("DATA", 354, "")
	c.send(dotStuff([]byte("x\r\n")))
	c.expect(250, "2.0.0")
	for range 5 {
		c.cmd("NOOP", 250, "")
	}
	c.cmd("NOOP", 421, "4.7.0")
	if _, _, err := c.reply(); err == nil {
		t.Errorf("connection open after the idle budget")
	}

	_, addr = startServer(t, ing, Options{MaxSessionTime: 300 * time.Millisecond}, false)
	c = dialRaw(t, addr)
	c.expect(220, "")
	c.cmd("EHLO client.test", 250, "")
	// Keep the connection busy past its lifetime: it is closed with 421.
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("connection still open after 1000 NOOPs over 10 s")
		}
		c.send("NOOP\r\n")
		code, _, err := c.reply()
		if err != nil || code == 421 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAuthThrottle: failures past the allowance are refused without a
// password check, per address and per user; trusted clients are not locked
// out by others' failures; names are cut; refusals are summarised.
func TestAuthThrottle(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t)
	var checks atomic.Int64
	type attempt struct {
		user string
		ok   bool
	}
	var mu sync.Mutex
	var audited []attempt
	summaries := map[string]int{}
	s, addr := startServer(t, &memIngester{}, Options{
		TLSConfig:           srvTLS,
		AuthFailuresPerIP:   2,
		AuthFailuresPerUser: 2,
		TrustedNetworks:     []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
		Auth: map[string]Credential{"journal": CredentialFunc(func(p string) bool {
			checks.Add(1)
			return p == "pw"
		})},
		OnAuth: func(user, _ string, ok bool) {
			mu.Lock()
			audited = append(audited, attempt{user, ok})
			mu.Unlock()
		},
		OnAuthThrottled: func(ip string, n int) {
			mu.Lock()
			summaries[ip] += n
			mu.Unlock()
		},
	}, true)
	plain := func(user, pass string) string { return "AUTH PLAIN " + encodeB64("\x00"+user+"\x00"+pass) }
	conn := func(from string) *rawClient {
		c := dialFrom(t, from, addr)
		tc := tls.Client(c.conn, cliTLS)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		c.conn, c.r = tc, bufio.NewReader(tc)
		c.expect(220, "")
		c.cmd("EHLO client.test", 250, "")
		return c
	}

	long := strings.Repeat("u", 1000)
	c := conn("127.0.2.1")
	c.cmd(plain(long, "x"), 535, "5.7.8")
	c.cmd(plain("journal", "x"), 535, "5.7.8")
	// The address has used its allowance: refused, not checked, even the
	// right password.
	c.cmd(plain("journal", "pw"), 454, "4.7.0")
	c.cmd(plain("journal", "pw"), 454, "4.7.0")
	if n := checks.Load(); n != 1 {
		t.Errorf("%d password checks, want 1 (one unknown user, one check, then throttled)", n)
	}
	// Another address guessing the same user: one more failure reaches
	// the user's allowance (2).
	d := conn("127.0.2.2")
	d.cmd(plain("journal", "y"), 535, "5.7.8")
	d.cmd(plain("journal", "z"), 454, "4.7.0")
	// The journaling source is not locked out of its user by that.
	j := conn("127.0.0.2")
	j.cmd(plain("journal", "pw"), 235, "2.0.0")

	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []attempt{{long[:256], false}, {"journal", false}, {"journal", false}, {"journal", true}}
	if fmt.Sprint(audited) != fmt.Sprint(want) {
		t.Errorf("OnAuth saw %d attempts %.80v…, want %d (names cut to 256 bytes)", len(audited), audited, len(want))
	}
	if summaries["127.0.2.1"] != 2 || summaries["127.0.2.2"] != 1 {
		t.Errorf("throttled summaries = %v, want 127.0.2.1:2 127.0.2.2:1", summaries)
	}
}

// TestAuthThrottleBackoff: the refusal ends after the backoff, which
// doubles with every further failure; old failures are forgotten.
func TestAuthThrottleBackoff(t *testing.T) {
	t.Parallel()
	now := time.Unix(1e9, 0)
	th := newAuthThrottle(2, 100)
	th.now = func() time.Time { return now }
	fail := func() { th.failed("ip", "u") }
	allowed := func() bool { ok, _ := th.allow("ip", "u", true); return ok }
	fail()
	if !allowed() {
		t.Fatal("refused after 1 failure of 2")
	}
	fail()
	if allowed() {
		t.Fatal("allowed after 2 failures of 2")
	}
	now = now.Add(authBackoffBase + time.Second)
	if !allowed() {
		t.Fatal("refused after the first backoff")
	}
	fail()
	now = now.Add(authBackoffBase + time.Second)
	if allowed() {
		t.Fatal("allowed one backoff after the third failure: want it doubled")
	}
	now = now.Add(authBackoffBase)
	if !allowed() {
		t.Fatal("refused after the doubled backoff")
	}
	now = now.Add(authForget + time.Minute)
	fail()
	if !allowed() {
		t.Fatal("refused after 1 failure following a forgotten burst")
	}
}

// TestTLSAEADOnly: TLS 1.2 offers only AEAD suites; a CBC-only client
// fails.
func TestTLSAEADOnly(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t)
	_, addr := startServer(t, &memIngester{}, Options{TLSConfig: srvTLS}, true)
	for _, suite := range tls.CipherSuites() {
		cfg := cliTLS.Clone()
		cfg.MaxVersion = tls.VersionTLS12
		cfg.CipherSuites = []uint16{suite.ID}
		c, err := tls.Dial("tcp", addr, cfg)
		if c != nil {
			c.Close()
		}
		aead := strings.Contains(suite.Name, "_GCM_") || strings.Contains(suite.Name, "CHACHA20")
		ecdsa := strings.Contains(suite.Name, "ECDSA") // the test key is ECDSA
		switch {
		case !slicesContains(suite.SupportedVersions, tls.VersionTLS12):
		case aead && ecdsa && err != nil:
			t.Errorf("%s refused: %v", suite.Name, err)
		case !aead && err == nil:
			t.Errorf("%s accepted, want AEAD suites only", suite.Name)
		}
	}
	for _, suite := range tls.InsecureCipherSuites() {
		cfg := cliTLS.Clone()
		cfg.MaxVersion = tls.VersionTLS12
		cfg.CipherSuites = []uint16{suite.ID}
		if c, err := tls.Dial("tcp", addr, cfg); err == nil {
			c.Close()
			t.Errorf("insecure %s accepted", suite.Name)
		}
	}
}

func slicesContains(s []uint16, v uint16) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// testCA makes a CA and a leaf it signs, valid until notAfter, and writes
// cert.pem (the chain in the given order) and key.pem to dir.
func testChain(t *testing.T, dir string, notAfter time.Time, leafFirst bool) (certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter.Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mx.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, DNSNames: []string{"mx.test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	blocks := [][]byte{der, caDER}
	if !leafFirst {
		blocks = [][]byte{caDER, der}
	}
	var chain []byte
	for _, b := range blocks {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b})...)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestCertificateReloadAndChain: an operator's chain is served whole, a
// chain in the wrong order is refused, SetCertificate changes what new
// handshakes get, and a certificate near expiry is warned about.
func TestCertificateReloadAndChain(t *testing.T) {
	t.Parallel()
	if _, _, err := func() (string, string, error) {
		cf, kf := testChain(t, t.TempDir(), time.Now().Add(365*24*time.Hour), false)
		_, err := LoadCertificate(cf, kf)
		return cf, kf, err
	}(); err == nil {
		t.Error("LoadCertificate accepted a chain with the CA first")
	}
	srvTLS, cliTLS := testTLS(t)
	var logs lockedBuffer
	s, addr := startServer(t, &memIngester{}, Options{TLSConfig: srvTLS,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, true)
	served := func() []*x509.Certificate {
		cfg := cliTLS.Clone()
		cfg.InsecureSkipVerify = true
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates
	}
	if got := served(); len(got) != 1 || got[0].Subject.CommonName != "mx.test" {
		t.Fatalf("served %d certificates before reload", len(got))
	}
	cf, kf := testChain(t, t.TempDir(), time.Now().Add(10*24*time.Hour), true)
	cert, err := LoadCertificate(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetCertificate(cert); err != nil {
		t.Fatal(err)
	}
	got := served()
	if len(got) != 2 || got[1].Subject.CommonName != "test CA" {
		t.Fatalf("served %d certificates after reload, want the chain of 2", len(got))
	}
	if !strings.Contains(logs.String(), "expires in 9 days") && !strings.Contains(logs.String(), "expires in 10 days") {
		t.Errorf("no expiry warning for a certificate valid 10 more days; logs:\n%s", logs.String())
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "chain=2") && !strings.Contains(line, "self_signed=false") {
			t.Errorf("a CA-issued chain logged as self-signed: %s", line)
		}
	}

	// A generated self-signed certificate near its end is recognised.
	certPEM, keyPEM, err := selfSigned("old.test", time.Now().Add(-certValidity+5*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	old, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	logs.mu.Lock()
	logs.b.Reset()
	logs.mu.Unlock()
	if err := s.SetCertificate(old); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); !strings.Contains(out, "self_signed=true") || !strings.Contains(out, "expires in") {
		t.Errorf("no self-signed expiry warning:\n%s", out)
	}
	// The daily check warns again.
	logs.mu.Lock()
	logs.b.Reset()
	logs.mu.Unlock()
	s.CheckCertificate()
	if out := logs.String(); !strings.Contains(out, "expires in 4 days") && !strings.Contains(out, "expires in 5 days") {
		t.Errorf("CheckCertificate did not warn:\n%s", out)
	}
}
