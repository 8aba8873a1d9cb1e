// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"golang.org/x/crypto/bcrypt"

	"github.com/sealmail/sealmail"
)

const testMessage = "From: a@example.org\r\nTo: journal@archive.test\r\nSubject: hello\r\n\r\nbody line\r\n.leading dot\r\n"

func TestSTARTTLSMessage(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t)
	ing := &memIngester{}
	var audited []string
	_, addr := startServer(t, ing, Options{
		TLSConfig:  srvTLS,
		RequireTLS: true,
		Auth:       map[string]Credential{"exchange": CredentialFunc(func(p string) bool { return p == "s3cret" })},
		OnAuth: func(user, remote string, ok bool) {
			audited = append(audited, fmt.Sprintf("%s %v %v", user, ok, strings.HasPrefix(remote, "127.0.0.1:")))
		},
	}, false)

	// Before TLS, as the raw bytes show.
	raw := dialRaw(t, addr)
	raw.expect(220, "archive.test ESMTP")
	ehlo := raw.cmd("EHLO exchange.example.org", 250, "Hello exchange.example.org")
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "STARTTLS", fmt.Sprintf("SIZE %d", DefaultMaxMessageBytes)} {
		if !strings.Contains(ehlo, "\n"+ext+"\n") && !strings.HasSuffix(ehlo, "\n"+ext) {
			t.Errorf("extension %q not advertised before TLS: %q", ext, ehlo)
		}
	}
	if strings.Contains(ehlo, "AUTH") {
		t.Errorf("AUTH advertised before TLS: %q", ehlo)
	}
	raw.cmd("QUIT", 221, "")

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClientStartTLS(conn, cliTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("exchange.example.org"); err != nil {
		t.Fatal(err)
	}
	if ok, p := c.Extension("AUTH"); !ok || p != "PLAIN" {
		t.Errorf("AUTH after TLS = %v %q, want PLAIN", ok, p)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Errorf("STARTTLS advertised after TLS")
	}
	if err := c.Auth(sasl.NewPlainClient("", "exchange", "s3cret")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("sender@example.org", &smtp.MailOptions{Size: int64(len(testMessage))}); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"journal@archive.test", "second@archive.test"} {
		if err := c.Rcpt(rcpt, nil); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now()
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(testMessage))
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	c.Quit()

	msgs := ing.messages()
	if len(msgs) != 1 {
		t.Fatalf("ingested %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if id := queuedID(t, resp.StatusText); id != m.id {
		t.Errorf("250 text = %q, want id %d", resp.StatusText, m.id)
	}
	if string(m.data) != testMessage {
		t.Errorf("ingested %q, want %q", m.data, testMessage)
	}
	env := m.env
	if env.Received.Before(before.Add(-time.Second)) || env.Received.After(after) {
		t.Errorf("Received = %v, want between %v and %v", env.Received, before, after)
	}
	want := sealmail.Envelope{
		Received:   env.Received,
		MailFrom:   "sender@example.org",
		RcptTo:     []string{"journal@archive.test", "second@archive.test"},
		ClientIP:   "127.0.0.1",
		HELO:       "exchange.example.org",
		TLS:        "TLS 1.3",
		AuthUser:   "exchange",
		ReceivedBy: addr,
	}
	if fmt.Sprint(*env) != fmt.Sprint(want) {
		t.Errorf("envelope = %+v, want %+v", *env, want)
	}
	if got := ing.admitted; len(got) != 1 || got[0] != int64(len(testMessage)) {
		t.Errorf("Admit sizes = %v, want [%d]", got, len(testMessage))
	}
	if len(audited) != 1 || audited[0] != "exchange true true" {
		t.Errorf("OnAuth calls = %q, want [exchange true true]", audited)
	}
}

func TestImplicitTLSAndPlainEnvelopeTLS(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t)
	ing := &memIngester{}
	_, tlsAddr := startServer(t, ing, Options{TLSConfig: srvTLS}, true)
	_, plainAddr := startServer(t, ing, Options{}, false)

	for _, tc := range []struct {
		addr    string
		tls     bool
		wantTLS string
	}{{tlsAddr, true, "TLS 1.3"}, {plainAddr, false, ""}} {
		var c *rawClient
		if tc.tls {
			c = dialRawTLS(t, tc.addr, cliTLS)
		} else {
			c = dialRaw(t, tc.addr)
		}
		c.expect(220, "archive.test ESMTP")
		ehlo := c.cmd("EHLO client.test", 250, "Hello client.test")
		if strings.Contains(ehlo, "STARTTLS") {
			t.Errorf("EHLO on %v advertises STARTTLS: %q", tc.addr, ehlo)
		}
		c.cmd("MAIL FROM:<>", 250, "")
		c.cmd("RCPT TO:<j@archive.test>", 250, "")
		c.cmd("DATA", 354, "")
		c.send(dotStuff([]byte(testMessage)))
		id := queuedID(t, c.expect(250, ""))
		c.cmd("QUIT", 221, "")
		var got *memMessage
		for _, m := range ing.messages() {
			if m.id == id {
				got = &m
			}
		}
		if got == nil {
			t.Fatalf("message %d not ingested", id)
		}
		if got.env.TLS != tc.wantTLS || got.env.ReceivedBy != tc.addr || got.env.MailFrom != "" {
			t.Errorf("envelope via %s: TLS %q ReceivedBy %q MailFrom %q, want %q %q \"\"", tc.addr, got.env.TLS, got.env.ReceivedBy, got.env.MailFrom, tc.wantTLS, tc.addr)
		}
		if string(got.data) != testMessage {
			t.Errorf("ingested %q, want %q", got.data, testMessage)
		}
	}
}

// bdat sends content as BDAT chunks of the given sizes, the last with LAST,
// and returns the final reply text.
func bdat(t *testing.T, c *rawClient, content []byte, sizes []int) string {
	t.Helper()
	off := 0
	for i, n := range sizes {
		last := i == len(sizes)-1
		if last {
			n = len(content) - off
		}
		cmd := fmt.Sprintf("BDAT %d", n)
		if last {
			cmd += " LAST"
		}
		c.send(cmd + "\r\n" + string(content[off:off+n]))
		off += n
		if last {
			return c.expect(250, "")
		}
		c.expect(250, "2.0.0")
	}
	return ""
}

// awkward is message content that DATA-based readers tend to mangle.
func awkward() map[string][]byte {
	binary := make([]byte, 0, 512)
	for i := 0; i < 256; i++ {
		binary = append(binary, byte(i))
	}
	binary = append(binary, "\r\n"...)
	return map[string][]byte{
		"bare LF":         []byte("Subject: lf\n\nline one\nline two\n.not stuffed after LF\n\r\n"),
		"8bit":            []byte("Subject: =?utf-8?q?x?=\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße, 日本語, \xff\xfe invalid utf-8\r\n"),
		"binary":          append([]byte("Subject: bin\r\n\r\n"), binary...),
		"long line":       []byte("Subject: long\r\n\r\n" + strings.Repeat("x", 10000) + "\r\n" + strings.Repeat("y", 1001) + "\r\n"),
		"malformed MIME":  []byte("Content-Type: multipart/mixed; boundary=\"never\r\nMIME-Version: 9.9\r\nno colon header\r\n\r\n--wrong\r\nContent-Type: text/plain; charset=unknown-8bit\r\n\r\n\x00\x01\r\n--wrong\r\n"),
		"dots":            []byte(".\r\n..\r\n. \r\n.x\r\nend\r\n"),
		"no final CRLF":   []byte("Subject: x\r\n\r\nno newline at end"),
		"empty":           []byte(""),
		"CR inside lines": []byte("Subject: cr\r\n\r\na\rb\r\n"),
	}
}

func TestBDATExactBytes(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t)
	ing := &memIngester{}
	_, addr := startServer(t, ing, Options{TLSConfig: srvTLS}, false)
	c := dialRaw(t, addr)
	c.expect(220, "")
	c.cmd("EHLO exchange.test", 250, "")
	c.startTLS(cliTLS)
	ehlo := c.cmd("EHLO exchange.test", 250, "")
	if !strings.Contains(ehlo, "CHUNKING") {
		t.Fatalf("EHLO does not advertise CHUNKING: %q", ehlo)
	}
	for name, content := range awkward() {
		c.cmd("MAIL FROM:<s@example.org> BODY=8BITMIME", 250, "")
		c.cmd("RCPT TO:<j@archive.test>", 250, "")
		sizes := []int{len(content) / 3, len(content) / 3, 0, 0}
		id := queuedID(t, bdat(t, c, content, sizes))
		m := ing.messages()[id-1]
		if !bytes.Equal(m.data, content) {
			t.Errorf("%s: BDAT ingested %q, want %q", name, m.data, content)
		}
		if m.env.TLS != "TLS 1.3" {
			t.Errorf("%s: envelope TLS = %q, want TLS 1.3", name, m.env.TLS)
		}
	}
	// BDAT and DATA on one connection; a zero-length LAST chunk ends.
	c.cmd("MAIL FROM:<s@example.org>", 250, "")
	c.cmd("RCPT TO:<j@archive.test>", 250, "")
	c.send("BDAT 5\r\nHello")
	c.expect(250, "")
	c.send("BDAT 0 LAST\r\n")
	id := queuedID(t, c.expect(250, ""))
	if got := string(ing.messages()[id-1].data); got != "Hello" {
		t.Errorf("BDAT 5 + BDAT 0 LAST ingested %q, want %q", got, "Hello")
	}
	c.cmd("QUIT", 221, "")
}

func TestDATAExactBytes(t *testing.T) {
	t.Parallel()
	ing := &memIngester{}
	_, addr := startServer(t, ing, Options{}, false)
	c := dialRaw(t, addr)
	c.expect(220, "")
	c.cmd("EHLO client.test", 250, "")
	for name, content := range awkward() {
		if name == "no final CRLF" || name == "empty" {
			continue // DATA content always ends with CRLF (or is empty)
		}
		c.cmd("MAIL FROM:<s@example.org> BODY=8BITMIME", 250, "")
		c.cmd("RCPT TO:<j@archive.test>", 250, "")
		c.cmd("DATA", 354, "")
		c.send(dotStuff(content))
		id := queuedID(t, c.expect(250, ""))
		if got := ing.messages()[id-1].data; !bytes.Equal(got, content) {
			t.Errorf("%s: DATA ingested %q, want %q", name, got, content)
		}
	}
	c.cmd("QUIT", 221, "")
}

// dotCases are DATA transfers as sent on the wire and the content RFC 5321
// §4.5.2 makes of them: lines end only at CRLF; at a line start "." CRLF
// ends the data and any other leading "." is removed, only the dot.
var dotCases = []struct{ sent, want string }{
	{".\r\n", ""},
	{"\r\n.\r\n", "\r\n"},
	{"a\r\n.\r\n", "a\r\n"},
	// A line "." CR X: only the dot goes (go-smtp v0.25.1 dropped the CR).
	{"a\r\n.\rX\r\n.\r\n", "a\r\n\rX\r\n"},
	{".\rX\r\n.\r\n", "\rX\r\n"},
	{"a\r\n.\r.\r\n.\r\n", "a\r\n\r.\r\n"},
	// A CR before CRLF: the next line still starts a line (go-smtp v0.25.1
	// kept its stuffed dot and did not see a "." line there).
	{"a\r\r\n..b\r\n.\r\n", "a\r\r\n.b\r\n"},
	{"a\r\r\n.\r\n", "a\r\r\n"},
	{"a\r\r\r\n.\r\n", "a\r\r\r\n"},
	// Stuffed dots.
	{"..\r\n.\r\n", ".\r\n"},
	{"...\r\n.\r\n", "..\r\n"},
	{"a\r\n..\r\n.\r\n", "a\r\n.\r\n"},
	{"a\r\n.b.\r\n.\r\n", "a\r\nb.\r\n"},
	// Smuggling variants: none of them ends the data.
	{"a\n.\nb\r\n.\r\n", "a\n.\nb\r\n"},
	{"a\r.\rb\r\n.\r\n", "a\r.\rb\r\n"},
	{"a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n"},
	{"a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n"},
	{"a\r.\r\nb\r\n.\r\n", "a\r.\r\nb\r\n"},
	// Bare CR and LF, a dot not at a line start, NUL and 8-bit.
	{"\r\n\r\n.\r\n", "\r\n\r\n"},
	{"\n.\r\n.\r\n", "\n.\r\n"},
	{"\r.\r\n.\r\n", "\r.\r\n"},
	{"x.\r\n.\r\n", "x.\r\n"},
	{"\x00\xff\r\n.\x00\r\n.\r\n", "\x00\xff\r\n\x00\r\n"},
}

// TestDATADotEdgeCases sends every case of dotCases, whole and one byte per
// write (so that CR, LF and dot fall on read boundaries), and compares the
// ingested bytes.
func TestDATADotEdgeCases(t *testing.T) {
	t.Parallel()
	ing := &memIngester{}
	_, addr := startServer(t, ing, Options{}, false)
	c := dialRaw(t, addr)
	c.expect(220, "")
	c.cmd("EHLO client.test", 250, "")
	for _, bytewise := range []bool{false, true} {
		for _, tc := range dotCases {
			c.cmd("MAIL FROM:<s@example.org>", 250, "")
			c.cmd("RCPT TO:<j@archive.test>", 250, "")
			c.cmd("DATA", 354, "")
			if bytewise {
				for i := range len(tc.sent) {
					c.send(tc.sent[i : i+1])
				}
			} else {
				c.send(tc.sent)
			}
			id := queuedID(t, c.expect(250, ""))
			if got := string(ing.messages()[id-1].data); got != tc.want {
				t.Errorf("DATA %q (bytewise %v) ingested %q, want %q", tc.sent, bytewise, got, tc.want)
			}
		}
	}
	// After all of them the connection is in step: nothing was read past
	// an end-of-data line.
	c.cmd("NOOP", 250, "")
}

func TestPipelining(t *testing.T) {
	t.Parallel()
	ing := &memIngester{}
	_, addr := startServer(t, ing, Options{AcceptRecipients: []string{"@archive.test"}}, false)
	c := dialRaw(t, addr)
	c.expect(220, "")
	c.send("EHLO client.test\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<a@archive.test>\r\nRCPT TO:<x@elsewhere.test>\r\nRCPT TO:<b@ARCHIVE.test>\r\nDATA\r\n")
	c.expect(250, "Hello")
	c.expect(250, "2.0.0")
	c.expect(250, "2.0.0")
	c.expect(550, "5.1.1")
	c.expect(250, "2.0.0")
	c.expect(354, "")
	// After the message: a whole second transaction in one write.
	c.send(dotStuff([]byte(testMessage)) + "MAIL FROM:<t@example.org>\r\nRCPT TO:<c@archive.test>\r\nBDAT 3 LAST\r\nabcQUIT\r\n")
	id1 := queuedID(t, c.expect(250, ""))
	c.expect(250, "2.0.0")
	c.expect(250, "2.0.0")
	id2 := queuedID(t, c.expect(250, ""))
	c.expect(221, "")
	msgs := ing.messages()
	if len(msgs) != 2 || id1 != 1 || id2 != 2 {
		t.Fatalf("ingested %d messages with ids %d %d, want 2 with 1 2", len(msgs), id1, id2)
	}
	if got := msgs[0].env.RcptTo; fmt.Sprint(got) != "[a@archive.test b@ARCHIVE.test]" {
		t.Errorf("RcptTo = %q, want [a@archive.test b@ARCHIVE.test]", got)
	}
	if string(msgs[0].data) != testMessage || string(msgs[1].data) != "abc" {
		t.Errorf("ingested %q and %q", msgs[0].data, msgs[1].data)
	}
}

func TestSizeLimit(t *testing.T) {
	t.Parallel()
	const limit = 1000
	ing := &memIngester{}
	_, addr := startServer(t, ing, Options{MaxMessageBytes: limit}, false)
	c := dialRaw(t, addr)
	c.expect(220, "")
	if ehlo := c.cmd("EHLO client.test", 250, ""); !strings.Contains(ehlo, "SIZE 1000") {
		t.Errorf("EHLO = %q, want SIZE 1000", ehlo)
	}
	// SIZE= at MAIL.
	c.cmd("MAIL FROM:<s@example.org> SIZE=1001", 552, "5.3.4")
	// Oversize DATA; the connection stays usable.
	c.cmd("MAIL FROM:<s@example.org>", 250, "")
	c.cmd("RCPT TO:<j@archive.test>", 250, "")
	c.cmd("DATA", 354, "")
	c.send(dotStuff([]byte(strings.Repeat(strings.Repeat("z", 98)+"\r\n", 30))))
	c.expect(552, "5.3.4")
	// Just under the limit and exactly the limit pass with DATA and BDAT.
	under := strings.Repeat("u", limit-3) + "\r\n"
	c.cmd("MAIL FROM:<s@example.org> SIZE=999", 250, "")
	c.cmd("RCPT TO:<j@archive.test>", 250, "")
	c.cmd("DATA", 354, "")
	c.send(dotStuff([]byte(under)))
	c.expect(250, "2.0.0 Ok: queued as")
	c.cmd("MAIL FROM:<s@example.org> SIZE=1000", 250, "")
	c.cmd("RCPT TO:<j@archive.test>", 250, "")
	c.send("BDAT 1000 LAST\r\n" + strings.Repeat("e", limit))
	c.expect(250, "2.0.0 Ok: queued as")
	c.cmd("MAIL FROM:<s@example.org>", 250, "")
	c.cmd("RCPT TO:<j@archive.test>", 250, "")
	c.cmd("DATA", 354, "")
	c.send(dotStuff([]byte(strings.Repeat("q", limit-2) + "\r\n")))
	c.expect(250, "2.0.0 Ok: queued as")
	// A single line longer than the limit (and than the command line
	// limit): 552, and the connection stays usable.
	c.cmd("MAIL FROM:<s@example.org>", 250, "")
	c.cmd("RCPT TO:<j@archive.test>", 250, "")
	c.cmd("DATA", 354, "")
	c.send(dotStuff([]byte(strings.Repeat("z", 3*limit) + "\r\n")))
	c.expect(552, "5.3.4")
	c.cmd("NOOP", 250, "")

	// Oversize BDAT, in the second chunk, on a connection of its own:
	// go-smtp v0.25.1 races on its BDAT result channel when a connection
	// starts another BDAT transfer after an aborted one.
	c = dialRaw(t, addr)
	c.expect(220, "")
	c.cmd("EHLO client.test", 250, "")
	// Oversize BDAT, in the second chunk.
	c.cmd("MAIL FROM:<s@example.org>", 250, "")
	c.cmd("RCPT TO:<j@archive.test>", 250, "")
	c.send("BDAT 600\r\n" + strings.Repeat("a", 600))
	c.expect(250, "")
	c.send("BDAT 600 LAST\r\n" + strings.Repeat("b", 600))
	c.expect(552, "5.3.4")
	c.cmd("QUIT", 221, "")
	if n := len(ing.messages()); n != 3 {
		t.Errorf("ingested %d messages, want 3", n)
	}
}

func TestRecipients(t *testing.T) {
	t.Parallel()
	ing := &memIngester{}
	_, addr := startServer(t, ing, Options{MaxRecipients: 2, AcceptRecipients: []string{"journal@archive.test", "@Other.TEST"}}, false)
	c := dialRaw(t, addr)
	c.expect(220, "")
	c.cmd("EHLO client.test", 250, "")
	c.cmd("RCPT TO:<journal@archive.test>", 502, "") // before MAIL: go-smtp's sequence check
	c.cmd("MAIL FROM:<s@example.org>", 250, "")
	c.cmd("MAIL FROM:<s@example.org>", 503, "5.5.1")
	c.cmd("RCPT TO:<someone@archive.test>", 550, "5.1.1")
	c.cmd("RCPT TO:<Journal@Archive.Test>", 250, "")
	c.cmd("RCPT TO:<x@other.test>", 250, "")
	c.cmd("RCPT TO:<y@other.test>", 452, "4.5.3")
	c.cmd("RSET", 250, "")
	c.cmd("MAIL FROM:<s@example.org>", 250, "")
	c.cmd("RCPT TO:<y@other.test>", 250, "")
	c.cmd("QUIT", 221, "")
}

func TestAllowedNetworks(t *testing.T) {
	t.Parallel()
	ing := &memIngester{}
	_, refused := startServer(t, ing, Options{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}, false)
	c := dialRaw(t, refused)
	c.expect(421, "4.7.1")
	if _, _, err := c.reply(); err == nil {
		t.Errorf("refused connection stays open")
	}
	_, allowed := startServer(t, ing, Options{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, false)
	c = dialRaw(t, allowed)
	c.expect(220, "")
	c.cmd("QUIT", 221, "")
}

func TestAuth(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t)
	h, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	hash := BcryptHash(h)
	if !hash.Verify("correct horse") {
		t.Fatal("BcryptHash.Verify(correct password) = false")
	}
	type attempt struct {
		user string
		ok   bool
	}
	audit := make(chan attempt, 10)
	ing := &memIngester{}
	_, addr := startServer(t, ing, Options{
		TLSConfig:   srvTLS,
		RequireAuth: true,
		Auth:        map[string]Credential{"journal": hash, "broken": BcryptHash("not a hash")},
		OnAuth:      func(user, _ string, ok bool) { audit <- attempt{user, ok} },
	}, false)
	plain := func(identity, user, pass string) string {
		return "AUTH PLAIN " + encodeB64(identity+"\x00"+user+"\x00"+pass)
	}

	c := dialRaw(t, addr)
	c.expect(220, "")
	if ehlo := c.cmd("EHLO client.test", 250, ""); strings.Contains(ehlo, "AUTH") {
		t.Errorf("AUTH advertised before TLS: %q", ehlo)
	}
	c.cmd(plain("", "journal", "correct horse"), 523, "5.7.10")
	c.cmd("MAIL FROM:<s@example.org>", 530, "5.7.0")
	c.startTLS(cliTLS)
	if ehlo := c.cmd("EHLO client.test", 250, ""); !strings.Contains(ehlo, "AUTH PLAIN") {
		t.Errorf("AUTH PLAIN not advertised after TLS: %q", ehlo)
	}
	c.cmd("MAIL FROM:<s@example.org>", 530, "5.7.0")
	c.cmd("AUTH LOGIN", 504, "")
	c.cmd(plain("", "journal", "wrong"), 535, "5.7.8")
	c.cmd(plain("", "nobody", "correct horse"), 535, "5.7.8")
	c.cmd(plain("", "journal", "correct horse"), 235, "2.0.0")
	c.cmd("MAIL FROM:<s@example.org>", 250, "")
	c.cmd("RCPT TO:<j@archive.test>", 250, "")
	c.send("BDAT 2 LAST\r\nhi")
	id := queuedID(t, c.expect(250, ""))
	if got := ing.messages()[id-1].env.AuthUser; got != "journal" {
		t.Errorf("AuthUser = %q, want journal", got)
	}
	c.cmd("QUIT", 221, "")
	want := []attempt{{"journal", false}, {"nobody", false}, {"journal", true}}
	for _, w := range want {
		if got := <-audit; got != w {
			t.Errorf("OnAuth = %+v, want %+v", got, w)
		}
	}
}

func encodeB64(s string) string {
	return base64.StdEncoding.EncodeToString([]byte(s))
}

// TestAuthFailuresClose: three failures close the connection; an
// authorization identity other than the user is refused; a malformed hash
// matches nothing.
func TestAuthFailuresClose(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t)
	_, addr := startServer(t, &memIngester{}, Options{
		TLSConfig: srvTLS,
		Auth:      map[string]Credential{"journal": CredentialFunc(func(p string) bool { return p == "pw" }), "broken": BcryptHash("not a hash")},
	}, true)
	c := dialRawTLS(t, addr, cliTLS)
	c.expect(220, "")
	c.cmd("EHLO client.test", 250, "")
	plain := func(identity, user, pass string) string {
		return "AUTH PLAIN " + encodeB64(identity+"\x00"+user+"\x00"+pass)
	}
	c.cmd(plain("admin", "journal", "pw"), 535, "5.7.8")
	c.cmd(plain("", "broken", "not a hash"), 535, "5.7.8")
	c.cmd(plain("", "journal", "nope"), 421, "4.7.0")
	if code, text, err := c.reply(); err == nil {
		t.Errorf("connection open after 3 failures, got %d %q", code, text)
	}
}

func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, &memIngester{}, Options{MaxConnections: 2}, false)
	a := dialRaw(t, addr)
	a.expect(220, "")
	b := dialRaw(t, addr)
	b.expect(220, "")
	c := dialRaw(t, addr)
	c.expect(421, "4.7.0")
	if _, _, err := c.reply(); err == nil {
		t.Errorf("refused connection stays open")
	}
	a.cmd("QUIT", 221, "")
	// The server forgets a once it has closed it; poll for that.
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := dialRaw(t, addr)
		code, _, err := d.reply()
		if err == nil && code == 220 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection accepted after one of two closed: %d %v", code, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConnectionLimitImplicitTLS(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t)
	_, addr := startServer(t, &memIngester{}, Options{TLSConfig: srvTLS, MaxConnections: 1}, true)
	a := dialRawTLS(t, addr, cliTLS)
	a.expect(220, "")
	b := dialRawTLS(t, addr, cliTLS)
	b.expect(421, "4.7.0")
	a.cmd("QUIT", 221, "")
}

func TestIngestErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		admitErr  error
		ingestErr error
		mailCode  int
		mailEC    string
		dataCode  int
		dataEC    string
	}{
		{"storage full at ingest", nil, fmt.Errorf("append record: %w", sealmail.ErrStorageFull), 250, "2.0.0", 452, "4.3.1 Insufficient system storage"},
		{"other ingest error", nil, errors.New("sync segment /var/lib/sealmail/segments/00000007.seg: input/output error"), 250, "2.0.0", 451, "4.3.0 Internal error"},
		{"admit storage full", fmt.Errorf("free space below floor: %w", sealmail.ErrStorageFull), nil, 452, "4.3.1", 0, ""},
		{"admit other error", errors.New("catalog closed"), nil, 451, "4.3.0", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ing := &memIngester{admitErr: tc.admitErr, ingestErr: tc.ingestErr}
			_, addr := startServer(t, ing, Options{}, false)
			c := dialRaw(t, addr)
			c.expect(220, "")
			c.cmd("EHLO client.test", 250, "")
			c.cmd("MAIL FROM:<s@example.org> SIZE=100", tc.mailCode, tc.mailEC)
			if tc.dataCode == 0 {
				return
			}
			c.cmd("RCPT TO:<j@archive.test>", 250, "")
			c.cmd("DATA", 354, "")
			c.send(dotStuff([]byte(testMessage)))
			text := c.expect(tc.dataCode, tc.dataEC)
			if strings.Contains(text, "/") || strings.Contains(text, "segment") {
				t.Errorf("reply text %q reveals internals", text)
			}
			// BDAT gets the same reply.
			c.cmd("MAIL FROM:<s@example.org>", 250, "")
			c.cmd("RCPT TO:<j@archive.test>", 250, "")
			c.send("BDAT 3 LAST\r\nabc")
			c.expect(tc.dataCode, tc.dataEC)
		})
	}
}

func TestRequireTLS(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t)
	_, addr := startServer(t, &memIngester{}, Options{TLSConfig: srvTLS, RequireTLS: true}, false)
	c := dialRaw(t, addr)
	c.expect(220, "")
	c.cmd("EHLO client.test", 250, "")
	c.cmd("MAIL FROM:<s@example.org>", 530, "5.7.0")
	c.startTLS(cliTLS)
	c.cmd("EHLO client.test", 250, "")
	c.cmd("MAIL FROM:<s@example.org>", 250, "")
}

func TestCommandTimeout(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, &memIngester{}, Options{CommandTimeout: 100 * time.Millisecond}, false)
	c := dialRaw(t, addr)
	c.expect(220, "")
	c.expect(421, "4.4.2")
	if _, _, err := c.reply(); err == nil {
		t.Errorf("idle connection still open after 421")
	}
}

func TestDataTimeout(t *testing.T) {
	t.Parallel()
	ing := &memIngester{}
	_, addr := startServer(t, ing, Options{DataTimeout: 100 * time.Millisecond}, false)
	c := dialRaw(t, addr)
	c.expect(220, "")
	c.cmd("EHLO client.test", 250, "")
	c.cmd("MAIL FROM:<s@example.org>", 250, "")
	c.cmd("RCPT TO:<j@archive.test>", 250, "")
	c.cmd("DATA", 354, "")
	c.send("Subject: stalled\r\n")
	// No more content: the server gives up with a temporary reply.
	code, _, _ := c.reply()
	if code/100 != 4 {
		t.Errorf("stalled DATA got %d, want 4xx", code)
	}
	if n := len(ing.messages()); n != 0 {
		t.Errorf("ingested %d messages, want 0", n)
	}
}

func TestZeroOptions(t *testing.T) {
	t.Parallel()
	s := New(&memIngester{}, Options{})
	o := s.opts
	if o.Hostname == "" || o.MaxMessageBytes != DefaultMaxMessageBytes || o.MaxRecipients != DefaultMaxRecipients ||
		o.MaxConnections != DefaultMaxConnections || o.CommandTimeout != DefaultCommandTimeout || o.DataTimeout != DefaultDataTimeout {
		t.Errorf("New(Options{}) options = %+v, want defaults", o)
	}
	if s.tlsConfig != nil || !s.accept.match("anyone@anywhere.example") || !s.allowed(&net.TCPAddr{IP: net.ParseIP("203.0.113.9"), Port: 25}) {
		t.Errorf("zero Options: TLS %v, recipients or networks restricted", s.tlsConfig)
	}
}

// TestLogsWithoutAddresses: above debug level, logs name no envelope
// address, no subject and no AUTH user.
func TestLogsWithoutAddresses(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t)
	var logs lockedBuffer
	ing := &memIngester{}
	_, addr := startServer(t, ing, Options{
		TLSConfig: srvTLS,
		Auth:      map[string]Credential{"journaluser": CredentialFunc(func(p string) bool { return p == "pw" })},
		Logger:    slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}, false)
	c := dialRaw(t, addr)
	c.expect(220, "")
	c.cmd("EHLO client.test", 250, "")
	c.startTLS(cliTLS)
	c.cmd("EHLO client.test", 250, "")
	c.cmd("AUTH PLAIN "+encodeB64("\x00journaluser\x00wrong"), 535, "")
	c.cmd("AUTH PLAIN "+encodeB64("\x00journaluser\x00pw"), 235, "")
	c.cmd("MAIL FROM:<secret-sender@example.org>", 250, "")
	c.cmd("RCPT TO:<secret-rcpt@archive.test>", 250, "")
	c.cmd("DATA", 354, "")
	c.send(dotStuff([]byte("Subject: secret subject\r\n\r\nsecret body\r\n")))
	id := queuedID(t, c.expect(250, ""))
	c.cmd("QUIT", 221, "")
	out := logs.String()
	for _, secret := range []string{"secret", "journaluser", "wrong"} {
		if strings.Contains(out, secret) {
			t.Errorf("info log contains %q:\n%s", secret, out)
		}
	}
	if want := fmt.Sprintf("id=%d", id); !strings.Contains(out, want) || !strings.Contains(out, "remote=127.0.0.1:") {
		t.Errorf("info log lacks %s and remote:\n%s", want, out)
	}
}

// TestOnReply: every reply code reaches Options.OnReply, those go-smtp
// writes and the connection refusals smtpd writes itself.
func TestOnReply(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var codes []int
	_, addr := startServer(t, &memIngester{}, Options{MaxConnections: 1, OnReply: func(code int) {
		mu.Lock()
		codes = append(codes, code)
		mu.Unlock()
	}}, false)
	a := dialRaw(t, addr)
	a.expect(220, "")
	a.cmd("EHLO client.example", 250, "")
	a.cmd("FOO", 501, "")
	b := dialRaw(t, addr)
	b.expect(421, "4.7.0")
	a.cmd("QUIT", 221, "")
	mu.Lock()
	defer mu.Unlock()
	// The 221 is counted before it is written, so it is in by now.
	want := map[int]int{220: 1, 250: 1, 501: 1, 421: 1, 221: 1}
	got := make(map[int]int)
	for _, c := range codes {
		got[c]++
	}
	for c, n := range want {
		if got[c] != n {
			t.Errorf("OnReply saw %v, want %v", codes, want)
			break
		}
	}
}
