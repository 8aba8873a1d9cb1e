// SPDX-License-Identifier: Apache-2.0

package web

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/reader"
)

// figuresCSV is the attachment of the sample message.
const figuresCSV = "quarter,revenue,costs\r\nQ1,1200000,950000\r\nQ2,1350000,990000\r\n"

// sampleMail is a message from the CEO to jane@example.com (Cc the board,
// which expands to ann@example.com; Bcc the compliance mailbox) with a
// text and an HTML body and a CSV attachment. Its HTML body tries what a
// hostile one does, against remote (a base URL): an inline script, an
// onerror handler, a javascript: link, a remote image, a style sheet, a
// background, a meta refresh, an iframe and a form that sends itself.
func sampleMail(remote string) (original, report []byte, env *sealmail.Envelope) {
	hostile := fmt.Sprintf(`<!doctype html><html><head><meta http-equiv="refresh" content="0;url=%[1]s/refresh">
<link rel="stylesheet" href="%[1]s/style.css"><style>p { font-family: serif; } .bg { background: url(%[1]s/background.png); }</style></head>
<body onload="fetch('%[1]s/onload')"><p>Hello Jane,</p><p>the figures for the <b>first quarter</b> are attached; see <a href="https://example.com/report">the report</a>.</p>
<script>document.title = "pwned"; fetch("%[1]s/script");</script>
<img src="%[1]s/logo.png" alt="logo"><img src="x" onerror="fetch('%[1]s/onerror')">
<p class="bg"><a href="javascript:fetch('%[1]s/javascript')">Open the dashboard</a></p>
<iframe src="%[1]s/frame"></iframe>
<form action="%[1]s/form" method="post"><input name="q" value="x" autofocus onfocus="this.form.submit()"></form>
<p>Carla</p></body></html>`, remote)
	csv := base64.StdEncoding.EncodeToString([]byte(figuresCSV))
	raw := "From: Carla Ceo <ceo@example.com>\r\nTo: Jane Doe <jane@example.com>\r\nCc: board@example.com\r\n" +
		"Subject: Quarterly figures\r\nDate: Mon, 03 Mar 2025 09:30:00 +0000\r\nMessage-ID: <q1-figures@example.com>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n" +
		"--mix\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n" +
		"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Jane,\r\n\r\nthe figures for the first quarter are attached.\r\n\r\nCarla\r\n" +
		"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + strings.ReplaceAll(hostile, "\n", "\r\n") + "\r\n" +
		"--alt--\r\n" +
		"--mix\r\nContent-Type: text/csv; name=\"figures.csv\"\r\nContent-Disposition: attachment; filename=\"figures.csv\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		csv + "\r\n--mix--\r\n"
	// As Exchange journals it, from a journaling source (the archive
	// trusts 127.0.0.0/8 by default).
	rep := "X-MS-Journal-Report:\r\nFrom: journal@example.com\r\nSubject: Quarterly figures\r\nContent-Type: multipart/mixed; boundary=jr\r\n\r\n" +
		"--jr\r\nContent-Type: text/plain\r\n\r\nSender: ceo@example.com\r\nSubject: Quarterly figures\r\nMessage-ID: <q1-figures@example.com>\r\n" +
		"To: jane@example.com\r\nCc: ann@example.com, Expanded: board@example.com\r\nBcc: compliance@example.com\r\n" +
		"--jr\r\nContent-Type: message/rfc822\r\n\r\n" + raw + "\r\n--jr--\r\n"
	return []byte(raw), []byte(rep), &sealmail.Envelope{MailFrom: "journal@example.com", RcptTo: []string{"journal@archive.example.com"}, ClientIP: "127.0.0.1"}
}

// plainMail is a message without attachment from the CEO to to.
func plainMail(to, subject string) ([]byte, *sealmail.Envelope) {
	raw := "From: ceo@example.com\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nDate: Tue, 04 Mar 2025 08:00:00 +0000\r\n\r\nPlease keep this to yourself.\r\n"
	return []byte(raw), &sealmail.Envelope{Source: sealmail.SourceSMTPEnvelope, MailFrom: "ceo@example.com", RcptTo: []string{to}, ClientIP: "192.0.2.1"}
}

// requestLog is an HTTP server on 127.0.0.1 that records every request it
// gets: the "remote" server a hostile message reaches for.
type requestLog struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string
}

func newRequestLog(t *testing.T) *requestLog {
	l := &requestLog{}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.seen = append(l.seen, r.Method+" "+r.URL.Path)
		l.mu.Unlock()
		w.Header().Set("Access-Control-Allow-Origin", "*")
		_, _ = w.Write([]byte("seen"))
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *requestLog) requests() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

// TestSearchAndMessage: an auditor signs in with TOTP, finds the message by
// a query and by the form's fields, and opens it: headers, envelope with
// the Bcc and expanded recipients marked, text body, attachments (the
// browser saves the attachment and the original byte-exact), and the
// hostile HTML body, which neither runs script nor reaches the remote
// server; every read is in the receiver's audit log as hers.
func TestSearchAndMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{reader: true})
	remote := newRequestLog(t)
	raw, rep, env := sampleMail(remote.srv.URL)
	id := e.ingest(t, env, rep)
	raw2, env2 := plainMail("bob@example.com", "Quarterly plans")
	other := e.ingest(t, env2, raw2)
	ann := e.add(t, "ann", access.RoleAuditor)

	b := e.tab(t)
	if resp := b.signIn("ann", ann.Password, e.clk.code(t, ann.TOTPSecret)); resp.Status != 200 || b.path() != "/" {
		t.Fatalf("sign-in: %d at %s", resp.Status, b.path())
	}
	b.searchOne(t, "quarterly figures", id, other)
	if got := b.text("#coverage"); !strings.Contains(got, "Indexed through") || !strings.Contains(got, "2 of 2 messages") {
		t.Errorf("coverage line %q", got)
	}
	row := b.text(fmt.Sprintf("#hit-%d", id))
	for _, want := range []string{"2025-03-03 09:30 UTC", "Carla Ceo", "Quarterly figures", "KiB"} {
		if !strings.Contains(row, want) {
			t.Errorf("result row %q lacks %q", row, want)
		}
	}
	if !b.has(fmt.Sprintf("#hit-%d [role=img]", id)) {
		t.Errorf("result row %q has no attachment mark", row)
	}

	// The form's fields compose a query: from the CEO, with an attachment.
	b.open(pathSearch)
	b.do(chromedp.SendKeys(chromedp.ID("from"), "ceo@example.com"), chromedp.Click(chromedp.ID("attachment")))
	if resp := b.submit(`#search button[type=submit]`); resp.Status != 200 {
		t.Fatalf("search by the form: %d %s", resp.Status, b.text("main"))
	}
	if q := eval[string](b, `document.getElementById("q").value`); q != "from:ceo@example.com has:attachment" {
		t.Errorf("the form composed %q", q)
	}
	if !b.has(fmt.Sprintf("#hit-%d", id)) || b.has(fmt.Sprintf("#hit-%d", other)) {
		t.Errorf("search by the form: %q, want message %d only", b.text("#results tbody"), id)
	}

	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf("#hit-%d a", id))))
	if err != nil || resp.Status != 200 {
		t.Fatalf("open the message: %v %v", err, resp)
	}
	if got := header(resp, "Content-Security-Policy"); got != messageCSP {
		t.Errorf("message page CSP %q", got)
	}
	if got := header(resp, "Cache-Control"); got != "no-store" {
		t.Errorf("message page Cache-Control %q", got)
	}
	for sel, want := range map[string]string{"#subject": "Quarterly figures", "#h-from": "Carla Ceo <ceo@example.com>",
		"#h-to": "Jane Doe <jane@example.com>", "#h-cc": "board@example.com", "#h-messageid": "<q1-figures@example.com>",
		"#h-date": "Mon, 03 Mar 2025 09:30:00 +0000", "#att-1": fmt.Sprintf("figures.csv\ttext/csv\t%d B", len(figuresCSV))} {
		if got := b.text(sel); got != want {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	if got := b.text("#textbody"); !strings.Contains(got, "the figures for the first quarter are attached.") {
		t.Errorf("text body %q", got)
	}
	env1 := b.text("#receipt-1")
	for _, want := range []string{"Exchange journal report", "from 127.0.0.1", "ceo@example.com", "jane@example.com\tTo",
		"compliance@example.com\tBcc (hidden)", "ann@example.com\tCc expanded from board@example.com"} {
		if !strings.Contains(env1, want) {
			t.Errorf("envelope %q lacks %q", env1, want)
		}
	}
	if !b.has("#receipt-1 .badge.bcc") || !b.has("#receipt-1 .badge.expanded") {
		t.Error("the Bcc and expanded recipients are not marked")
	}
	if got := eval[string](b, `document.getElementById("htmlbody").getAttribute("sandbox")`); got != "allow-popups allow-popups-to-escape-sandbox" {
		t.Errorf("frame sandbox %q", got)
	}

	if got := saveLink(t, b, "#att-1 a"); string(got) != figuresCSV {
		t.Errorf("the browser saved the attachment as %q, want %q", got, figuresCSV)
	}
	if got := saveLink(t, b, "#raw"); string(got) != string(raw) {
		t.Errorf("the browser saved the original as %d bytes, want the %d ingested", len(got), len(raw))
	}

	// The frame shows the HTML body; give its script, handlers, refresh and
	// form the time to try.
	text := frameText(t, b, "/body")
	if !strings.Contains(text, "the figures for the first quarter are attached") || !strings.Contains(text, "Open the dashboard") {
		t.Errorf("the frame shows %q, want the HTML body's text", text)
	}
	b.do(chromedp.Sleep(1500 * time.Millisecond))
	if got := remote.requests(); len(got) != 0 {
		t.Errorf("the HTML body reached the remote server: %q", got)
	}
	if title := eval[string](b, `document.title`); title != "Quarterly figures – sealmail" {
		t.Errorf("page title %q: a script ran", title)
	}
	if b.path() != fmt.Sprintf("/messages/%d", id) {
		t.Errorf("the page went to %s", b.path())
	}
	if v := b.violations(); len(v) != 0 {
		t.Errorf("CSP violations on the message page: %q", v)
	}
	// The remote server does answer a browser that is allowed to ask it:
	// its silence above is the frame's doing.
	b.do(chromedp.Navigate(remote.srv.URL + "/control"))
	if got := remote.requests(); len(got) == 0 || got[0] != "GET /control" {
		t.Errorf("the remote server saw %q, want the control request", got)
	}

	reads := 0
	err = archive.ReadAudit(context.Background(), e.recv.Dir, archive.AuditFilter{}, func(ae archive.AuditEntry) error {
		if ae.Type == "api.call" && ae.Actor == "ann (auditor)" && ae.Fields["op"] == "get" && fmt.Sprint(ae.Fields["ids"]) == fmt.Sprintf("[%d]", id) {
			reads++
		}
		return nil
	})
	if err != nil || reads < 2 { // the page and its frame
		t.Errorf("%d reads of message %d by ann in the audit log (err %v), want the page's and the frame's", reads, id, err)
	}
}

// frameText is the text of the frame whose URL ends in suffix, read
// through DevTools: the page's scripts cannot reach into it, and it runs
// none. Chromium runs a sandboxed frame in a process of its own, a target
// of type "iframe".
func frameText(t *testing.T, b *tab, suffix string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		targets, err := chromedp.Targets(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range targets {
			if ti.Type != "iframe" || !strings.HasSuffix(ti.URL, suffix) {
				continue
			}
			fctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithTargetID(ti.TargetID), chromedp.WithDetachOnCancel())
			s, err := chromedp.Run(fctx, chromedp.Evaluate[string](`document.readyState === "complete" ? document.body.innerText : ""`))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if s != "" {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no loaded frame %s in the page", suffix)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sampleForAuditor is an env with the sample message (remote images
// pointing nowhere) and a client signed in as the auditor ann; raw is the
// original as sent.
func sampleForAuditor(t *testing.T) (e *env, c *http.Client, id sealmail.MessageID, raw []byte) {
	t.Helper()
	e = newEnv(t, envOptions{reader: true})
	raw, rep, env := sampleMail("http://127.0.0.1:9")
	id = e.ingest(t, env, rep)
	ann := e.add(t, "ann", access.RoleAuditor)
	c = e.client(t)
	e.signInHTTP(t, c, "ann", ann.Password, e.clk.code(t, ann.TOTPSecret))
	return e, c, id, raw
}

// TestDownloads: the attachment and the original download byte-exact, as
// files to save (attachment disposition, nosniff, no-store).
func TestDownloads(t *testing.T) {
	t.Parallel()
	e, c, id, raw := sampleForAuditor(t)
	for _, d := range []struct {
		path, body, ctype, disp string
	}{
		{fmt.Sprintf("/messages/%d/raw", id), string(raw), "message/rfc822", fmt.Sprintf(`attachment; filename=%d.eml`, id)},
		{fmt.Sprintf("/messages/%d/attachments/1", id), figuresCSV, "text/csv", "attachment; filename=figures.csv"},
	} {
		resp, body := e.get(t, c, d.path)
		if resp.StatusCode != 200 || body != d.body {
			t.Errorf("GET %s: %s, %d bytes, want %d bytes as ingested", d.path, resp.Status, len(body), len(d.body))
		}
		for k, want := range map[string]string{"Content-Type": d.ctype, "Content-Disposition": d.disp, "X-Content-Type-Options": "nosniff",
			"Cache-Control": "no-store", "Content-Security-Policy": downloadCSP, "Strict-Transport-Security": "max-age=31536000"} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("GET %s: %s = %q, want %q", d.path, k, got, want)
			}
		}
	}
	for _, p := range []string{"/attachments/2", "/attachments/0", "/attachments/x"} {
		if resp, _ := e.get(t, c, fmt.Sprintf("/messages/%d%s", id, p)); resp.StatusCode != 404 {
			t.Errorf("GET %s: %s, want 404", p, resp.Status)
		}
	}
}

// TestMessageHeaders: the HTML body's response has its own policy, may be
// framed by the reader's pages only, and holds nothing of what the
// hostile body tried (the second guard); every message answer is
// no-store.
func TestMessageHeaders(t *testing.T) {
	t.Parallel()
	e, c, id, _ := sampleForAuditor(t)
	resp, body := e.get(t, c, fmt.Sprintf("/messages/%d/body", id))
	if resp.StatusCode != 200 {
		t.Fatalf("body: %s", resp.Status)
	}
	for k, want := range map[string]string{"Content-Security-Policy": bodyCSP, "X-Frame-Options": "SAMEORIGIN",
		"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8", "X-Content-Type-Options": "nosniff"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("body: %s = %q, want %q", k, got, want)
		}
	}
	for _, bad := range []string{"<script", "onerror", "onload", "onfocus", "javascript:", "127.0.0.1", "<iframe", "<form", "<input", "<meta", "<link", "pwned"} {
		if strings.Contains(body, bad) {
			t.Errorf("the sanitised body holds %q:\n%s", bad, body)
		}
	}
	if !strings.Contains(body, `<a href="https://example.com/report" target="_blank" rel="noopener noreferrer">`) {
		t.Errorf("the link is not kept as one opening a new tab:\n%s", body)
	}
	resp, page := e.get(t, c, fmt.Sprintf("/messages/%d", id))
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Security-Policy") != messageCSP ||
		resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("message page: %s %v", resp.Status, resp.Header)
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "pwned") {
		t.Error("the message page holds the HTML body's script")
	}
	resp, _ = e.get(t, c, pathSearch+"?q=quarterly")
	checkHeaders(t, pathSearch, resp.Header)
}

// TestSearchRefusals: a query that does not parse, and a form field that
// is not a day, get the reason in the page with 400; paging and the
// order work; a locked reader says so (503).
func TestSearchRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{reader: true})
	var ids []sealmail.MessageID
	for i := range searchPage + 3 {
		raw, env := plainMail("jane@example.com", fmt.Sprintf("Report %02d", i))
		raw = []byte(strings.Replace(string(raw), "Tue, 04 Mar 2025 08:00:00", fmt.Sprintf("Tue, 04 Mar 2025 %02d:%02d:00", i/60, i%60), 1))
		ids = append(ids, e.ingest(t, env, raw))
	}
	olga := e.add(t, "olga", access.RoleOfficer)
	c := e.client(t)
	e.signInHTTP(t, c, "olga", olga.Password, e.clk.code(t, olga.TOTPSecret))

	resp, body := e.get(t, c, pathSearch+"?q="+url.QueryEscape("(report"))
	if resp.StatusCode != 400 || !strings.Contains(body, `id="search-error"`) || !strings.Contains(body, "expected") {
		t.Errorf("bad query: %s\n%s", resp.Status, body)
	}
	resp, body = e.get(t, c, pathSearch+"?after=yesterday")
	if resp.StatusCode != 400 || !strings.Contains(body, "is not a day") {
		t.Errorf("bad day: %s\n%s", resp.Status, body)
	}
	resp, _ = e.get(t, c, pathSearch+"?q=report&after=2025-03-01&to=jane@example.com")
	if want := searchURL("(report) to:jane@example.com after:2025-03-01", false, 1); resp.StatusCode != 303 || resp.Header.Get("Location") != want {
		t.Errorf("form fields: %s to %q, want 303 to %q", resp.Status, resp.Header.Get("Location"), want)
	}

	_, first := e.get(t, c, pathSearch+"?q=report")
	if !strings.Contains(first, fmt.Sprintf(`id="hit-%d"`, ids[len(ids)-1])) || strings.Contains(first, fmt.Sprintf(`id="hit-%d"`, ids[2])) ||
		!strings.Contains(first, fmt.Sprintf("Messages 1–50 of %d", len(ids))) || !strings.Contains(first, `rel="next"`) {
		t.Errorf("first page, newest first: want the newest 50 of %d and a next page", len(ids))
	}
	_, second := e.get(t, c, searchURL("report", false, 2))
	if !strings.Contains(second, fmt.Sprintf(`id="hit-%d"`, ids[0])) || strings.Contains(second, `rel="next"`) ||
		!strings.Contains(second, fmt.Sprintf("Messages 51–%d of %d", len(ids), len(ids))) {
		t.Errorf("second page: want the oldest 3 and no next page")
	}
	_, oldest := e.get(t, c, searchURL("report", true, 1))
	if i, j := strings.Index(oldest, fmt.Sprintf(`id="hit-%d"`, ids[0])), strings.Index(oldest, fmt.Sprintf(`id="hit-%d"`, ids[1])); i < 0 || j < i {
		t.Errorf("oldest first: message %d at %d, %d at %d", ids[0], i, ids[1], j)
	}

	if err := e.reader.Lock(context.Background(), reader.Local("test")); err != nil {
		t.Fatal(err)
	}
	resp, body = e.get(t, c, pathSearch+"?q=report")
	if resp.StatusCode != 503 || !strings.Contains(body, "The reader is locked") || strings.Contains(body, `id="results"`) {
		t.Errorf("locked: %s\n%s", resp.Status, body)
	}
	if resp, _ := e.get(t, c, fmt.Sprintf("/messages/%d", ids[0])); resp.StatusCode != 503 {
		t.Errorf("message while locked: %s, want 503", resp.Status)
	}
}

// TestSearchScope: a user finds only her own mail and cannot open
// another's (404, as for a message that does not exist); an auditor's
// scope narrows the same way; an admin is refused message content (403).
func TestSearchScope(t *testing.T) {
	t.Parallel()
	e, janes, bobs := scopeEnv(t)
	ctx := context.Background()
	jane := e.add(t, "jane", access.RoleUser, "jane@example.com")
	tax, err := e.st.AddUser(ctx, access.Actor{Remote: "test"}, access.NewUser{Name: "tax", Role: access.RoleAuditor, Scope: "to:bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	root := e.add(t, "root", access.RoleAdmin)

	for _, who := range []struct {
		name  string
		creds access.Credentials
		sees  sealmail.MessageID
		not   sealmail.MessageID
	}{{"jane", jane, janes, bobs}, {"tax", tax, bobs, janes}} {
		c := e.client(t)
		e.signInHTTP(t, c, who.name, who.creds.Password, e.clk.code(t, who.creds.TOTPSecret))
		_, body := e.get(t, c, pathSearch+"?q=quarterly")
		if !strings.Contains(body, fmt.Sprintf(`id="hit-%d"`, who.sees)) || strings.Contains(body, fmt.Sprintf(`id="hit-%d"`, who.not)) {
			t.Errorf("%s searching 'quarterly': want message %d only", who.name, who.sees)
		}
		if resp, _ := e.get(t, c, fmt.Sprintf("/messages/%d", who.sees)); resp.StatusCode != 200 {
			t.Errorf("%s opening message %d: %s", who.name, who.sees, resp.Status)
		}
		for _, p := range []string{"", "/raw", "/body", "/attachments/1"} {
			if resp, body := e.get(t, c, fmt.Sprintf("/messages/%d%s", who.not, p)); resp.StatusCode != 404 || strings.Contains(body, "Quarterly") {
				t.Errorf("%s opening message %d%s: %s, want 404 without content", who.name, who.not, p, resp.Status)
			}
		}
		if resp, _ := e.get(t, c, "/messages/999"); resp.StatusCode != 404 {
			t.Errorf("%s opening a message that does not exist: %s, want 404", who.name, resp.Status)
		}
	}

	c := e.client(t)
	e.signInHTTP(t, c, "root", root.Password, e.clk.code(t, root.TOTPSecret))
	for _, p := range []string{pathSearch + "?q=quarterly", fmt.Sprintf("/messages/%d", janes), fmt.Sprintf("/messages/%d/raw", janes),
		fmt.Sprintf("/messages/%d/body", janes), fmt.Sprintf("/messages/%d/attachments/1", janes)} {
		if resp, body := e.get(t, c, p); resp.StatusCode != 403 || strings.Contains(body, "Quarterly") || strings.Contains(body, "quarter,revenue") {
			t.Errorf("admin GET %s: %s, want 403 without content", p, resp.Status)
		}
	}
}

// TestSanitizeHTML: what the allow lists keep and drop.
func TestSanitizeHTML(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{`<p style="color:red" onclick="x()">a</p>`, `<p style="color:red">a</p>`},
		{`<a href="https://x.example/a?b=1">l</a>`, `<a href="https://x.example/a?b=1" target="_blank" rel="noopener noreferrer">l</a>`},
		{`<a href=" JavaScript:alert(1)">l</a>`, `<a>l</a>`},
		{`<a href="mailto:a@example.com" target="_top">m</a>`, `<a href="mailto:a@example.com" target="_blank" rel="noopener noreferrer">m</a>`},
		{`<img src="http://x/p.png" alt="p"><img src="data:image/png;base64,AAAA">`, `<img alt="p"/><img src="data:image/png;base64,AAAA"/>`},
		{`<img src="data:text/html,<script>x</script>">`, `<img/>`},
		{`<custom><b>bold</b></custom><blink>x</blink>`, `<b>bold</b>x`},
		{`<script>x()</script><noscript><p>n</p></noscript><svg><a href="https://x">s</a></svg>ok`, `ok`},
		{`<form action="/x"><p>in form</p><input value="1"><button>go</button></form>`, `<p>in form</p>`},
		{`<p>x</p><style>p{color:red}</style><style>@import "x.css";</style><p style="background:URL(x)">s</p><p style="color:\72 ed">e</p>`,
			`<p>x</p><style>p{color:red}</style><p>s</p><p>e</p>`},
		{`<!-- c --><object data="x"></object><table><tr><td colspan="2" onmouseover="x">c</td></tr></table>`, `<table><tbody><tr><td colspan="2">c</td></tr></tbody></table>`},
	} {
		got := string(sanitizeHTML(c.in))
		want := "<html><head></head><body>" + c.want + "</body></html>"
		if got != want {
			t.Errorf("sanitizeHTML(%q)\n got %q\nwant %q", c.in, got, want)
		}
	}
}

// TestFileName: an attachment's name is made a safe file name to save.
func TestFileName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"figures.csv": "figures.csv", "../../etc/passwd": "passwd", `C:\x\y.exe`: "y.exe",
		"a\x00b\nc\".txt": "abc.txt", " .. ": "", "Übersicht.pdf": "Übersicht.pdf", strings.Repeat("ä", 150): strings.Repeat("ä", 100)} {
		if got := fileName(in); got != want {
			t.Errorf("fileName(%q) = %q, want %q", in, got, want)
		}
	}
}

// saveLink clicks the link sel in b's page and returns the file the
// browser saved.
func saveLink(t *testing.T, b *tab, sel string) []byte {
	t.Helper()
	dir := t.TempDir()
	yes := true
	if _, err := chromedp.CallBrowser(b.ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName,
		BrowserContextID: chromedp.FromContext(b.ctx).BrowserContextID, DownloadPath: dir, EventsEnabled: &yes}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	events := chromedp.BrowserEvents(ctx, cdpbrowser.DownloadProgress)
	b.do(chromedp.Click(chromedp.CSS(sel)))
	for ev, err := range events {
		if err != nil {
			t.Fatalf("download %s: %v", sel, err)
		}
		switch ev.State {
		case cdpbrowser.DownloadProgressStateCompleted:
			data, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				t.Fatal(err)
			}
			return data
		case cdpbrowser.DownloadProgressStateCanceled:
			t.Fatalf("download %s canceled", sel)
		}
	}
	t.Fatalf("download %s: no end", sel)
	return nil
}

// TestHugeMessage: the page of a message whose bodies are 3 MiB each
// shows the first MiB of each and says so; the original downloads whole.
func TestHugeMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{reader: true})
	line := strings.Repeat("figures ", 9) + "\r\n" // 74 bytes
	text := strings.Repeat(line, 3<<20/len(line))
	raw := "From: ceo@example.com\r\nTo: jane@example.com\r\nSubject: Everything\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\n" + text + "--b\r\nContent-Type: text/html\r\n\r\n<p>" + text + "</p>\r\n--b--\r\n"
	id := e.ingest(t, &sealmail.Envelope{MailFrom: "ceo@example.com", RcptTo: []string{"jane@example.com"}, ClientIP: "192.0.2.1"}, []byte(raw))
	olga := e.add(t, "olga", access.RoleOfficer)
	c := e.client(t)
	e.signInHTTP(t, c, "olga", olga.Password, e.clk.code(t, olga.TOTPSecret))
	resp, page := e.get(t, c, fmt.Sprintf("/messages/%d", id))
	if resp.StatusCode != 200 || strings.Count(page, "longer than 1 MiB") != 2 {
		t.Errorf("huge message page: %s, %d notices of a cut body, want 2", resp.Status, strings.Count(page, "longer than 1 MiB"))
	}
	if len(page) > maxShown+64<<10 {
		t.Errorf("the page is %d bytes for a body shown up to %d", len(page), maxShown)
	}
	if _, body := e.get(t, c, fmt.Sprintf("/messages/%d/body", id)); len(body) > maxShown+1<<10 || !strings.HasPrefix(body, "<html><head></head><body><p>figures") {
		t.Errorf("the HTML body is %d bytes, want at most %d", len(body), maxShown)
	}
	if _, body := e.get(t, c, fmt.Sprintf("/messages/%d/raw", id)); body != raw {
		t.Errorf("the original downloads as %d bytes, want %d", len(body), len(raw))
	}
}

// TestScopeInBrowser is TestSearchScope's two refusals as a person meets
// them in the browser: a user searching finds her mail and not another's,
// whose page is "not found"; an admin gets the refusal page for search and
// for a message.
func TestScopeInBrowser(t *testing.T) {
	t.Parallel()
	e, janes, bobs := scopeEnv(t)
	jane := e.add(t, "jane", access.RoleUser, "jane@example.com")
	root := e.add(t, "root", access.RoleAdmin)

	b := e.tab(t)
	if resp := b.signIn("jane", jane.Password, e.clk.code(t, jane.TOTPSecret)); resp.Status != 200 {
		t.Fatalf("jane's sign-in: %d", resp.Status)
	}
	b.searchOne(t, "quarterly", janes, bobs)
	if resp := b.open(fmt.Sprintf("/messages/%d", bobs)); resp.Status != 404 || strings.Contains(b.text("main"), "Quarterly plans") {
		t.Errorf("jane opening bob's message: %d %q, want 404 without its content", resp.Status, b.text("main"))
	}

	a := e.tab(t)
	if resp := a.signIn("root", root.Password, e.clk.code(t, root.TOTPSecret)); resp.Status != 200 {
		t.Fatalf("the admin's sign-in: %d", resp.Status)
	}
	for _, p := range []string{pathSearch + "?q=quarterly", fmt.Sprintf("/messages/%d", janes)} {
		if resp := a.open(p); resp.Status != 403 || strings.Contains(a.text("body"), "Quarterly") {
			t.Errorf("admin opening %s: %d %q, want the 403 page without content", p, resp.Status, a.text("main"))
		}
	}
}

// searchOne types q into the search page's field and submits it: the
// results must hold message want and not message not.
func (b *tab) searchOne(t *testing.T, q string, want, not sealmail.MessageID) {
	t.Helper()
	b.open(pathSearch)
	b.do(chromedp.SendKeys(chromedp.ID("q"), q))
	if resp := b.submit(`#search button[type=submit]`); resp.Status != 200 {
		t.Fatalf("search %q: %d %s", q, resp.Status, b.text("main"))
	}
	if !b.has(fmt.Sprintf("#hit-%d", want)) || b.has(fmt.Sprintf("#hit-%d", not)) {
		t.Errorf("search %q: %q, want message %d only", q, b.text("#results tbody"), want)
	}
}

// scopeEnv is a reader's env with two messages about the quarter: one to
// jane@example.com (the journal report of sampleMail), one to
// bob@example.com.
func scopeEnv(t *testing.T) (e *env, janes, bobs sealmail.MessageID) {
	t.Helper()
	e = newEnv(t, envOptions{reader: true})
	_, rep, env := sampleMail("http://127.0.0.1:9")
	janes = e.ingest(t, env, rep)
	raw, env2 := plainMail("bob@example.com", "Quarterly plans")
	bobs = e.ingest(t, env2, raw)
	return e, janes, bobs
}
