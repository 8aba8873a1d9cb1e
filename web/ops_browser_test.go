// SPDX-License-Identifier: Apache-2.0

package web

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/reader"
	"github.com/sealmail/sealmail/reader/readertest"
)

// opsTab adds a user and signs them in in a tab of their own.
func (e *env) opsTab(t *testing.T, name string, role access.Role, addrs ...string) *tab {
	t.Helper()
	c := e.add(t, name, role, addrs...)
	b := e.tab(t)
	b.signIn(name, c.Password, e.clk.code(t, c.TOTPSecret))
	return b
}

// mail ingests two messages: one about a merger (returned) and one that
// is not.
func (e *env) mail(t *testing.T) (merger, lunch sealmail.MessageID) {
	t.Helper()
	env := func() *sealmail.Envelope {
		return &sealmail.Envelope{MailFrom: "ceo@acme.example", RcptTo: []string{"ann@example.com"}, ClientIP: "192.0.2.1"}
	}
	merger = e.ingest(t, env(), []byte("From: ceo@acme.example\r\nTo: ann@example.com\r\nSubject: merger talks\r\nMessage-ID: <merger@acme.example>\r\n\r\nConfidential.\r\n"))
	lunch = e.ingest(t, env(), []byte("From: ceo@acme.example\r\nTo: ann@example.com\r\nSubject: lunch\r\nMessage-ID: <lunch@acme.example>\r\n\r\nAt noon?\r\n"))
	return merger, lunch
}

// attr is an attribute of the first element matching sel ("" if none).
func (b *tab) attr(sel, name string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`((document.querySelector(%q) || {getAttribute: () => ""}).getAttribute(%q)) || ""`, sel, name))
}

// downloads lets the tab's browser context save downloads into a new
// directory, which it returns.
func (b *tab) downloads() string {
	b.t.Helper()
	dir := b.t.TempDir()
	_, err := chromedp.CallBrowser(b.ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, BrowserContextID: chromedp.FromContext(b.ctx).BrowserContextID, DownloadPath: dir})
	if err != nil {
		b.t.Fatal(err)
	}
	return dir
}

// downloaded waits for the browser to have saved name in dir whole.
func downloaded(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	readertest.Wait(t, "the browser did not save "+name, func() bool {
		part, _ := filepath.Glob(filepath.Join(dir, "*.crdownload"))
		fi, err := os.Stat(p)
		return err == nil && fi.Size() > 0 && len(part) == 0
	}, func() any { des, _ := os.ReadDir(dir); return des })
	return p
}

// TestExportInBrowser: an officer starts an export of a query's messages
// as EML in a zip on the exports page, sees the job finish (reloading the
// page, as the page does itself), and downloads its zip, which unzip lists
// with the one matching message and the manifests, and its manifest; the
// downloads are audited.
func TestExportInBrowser(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("unzip"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("unzip missing (apt-get install unzip), and CI is set")
		}
		t.Skip("unzip missing (apt-get install unzip)")
	}
	e := newEnv(t, envOptions{reader: true})
	merger, _ := e.mail(t)
	b := e.opsTab(t, "olga", access.RoleOfficer)
	dl := b.downloads()
	b.open(pathExports)
	if !b.has("#jobs-none") {
		t.Fatal("a new officer's exports page lists jobs")
	}
	b.do(chromedp.SendKeys(chromedp.ID("export-query"), "subject:merger"))
	b.submit(`#start-export button[type=submit]`)
	if p := b.path(); p != pathExports+"?done=started" {
		t.Fatalf("after starting an export: at %s", p)
	}
	id := strings.TrimPrefix(b.attr("#jobs tbody tr", "id"), "job-")
	if id == "" {
		t.Fatal("the started job is not listed")
	}
	readertest.Wait(t, "the export job did not show done", func() bool {
		b.open(pathExports)
		return b.attr("#job-"+id+" .state", "data-state") == reader.JobDone
	}, func() any { return b.text("#job-" + id) })
	if got := b.text("#job-" + id); !strings.Contains(got, "1 messages") || !strings.Contains(got, "EML files in a zip") {
		t.Errorf("the done job reads %q", got)
	}
	screenshot(t, screenshotDir(t), "exports", b)

	b.do(chromedp.Click(chromedp.CSS(`#job-` + id + ` a[href$="/output"]`)))
	zip := downloaded(t, dl, "export.zip")
	out, err := exec.Command("unzip", "-l", zip).CombinedOutput()
	if err != nil {
		t.Fatalf("unzip -l: %v\n%s", err, out)
	}
	emls := regexp.MustCompile(`\S+\.eml\n`).FindAllString(string(out), -1)
	if len(emls) != 1 || !strings.Contains(string(out), "manifest.json") || !strings.Contains(string(out), "manifest.sha256") {
		t.Errorf("unzip -l of the download:\n%s\nwant one .eml and the manifests", out)
	}
	b.do(chromedp.Click(chromedp.CSS(`#job-` + id + ` a[href$="file=manifest.json"]`)))
	raw, err := os.ReadFile(downloaded(t, dl, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var man struct {
		Query    string `json:"query"`
		Count    int    `json:"count"`
		Messages []struct {
			ID      sealmail.MessageID `json:"id"`
			Subject string             `json:"subject"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(raw, &man); err != nil || man.Count != 1 || len(man.Messages) != 1 || man.Messages[0].ID != merger || man.Query != "subject:merger" {
		t.Errorf("manifest.json %s (%v): want message %d of query subject:merger", raw, err, merger)
	}
	var files []string
	err = archive.ReadAudit(context.Background(), e.recv.Dir, archive.AuditFilter{Types: []string{"export"}}, func(ae archive.AuditEntry) error {
		if ae.Fields["op"] == "download" && ae.Actor == "olga (officer)" {
			files = append(files, fmt.Sprint(ae.Fields["file"]))
		}
		return nil
	})
	if err != nil || strings.Join(files, " ") != "export.zip manifest.json" {
		t.Errorf("audited downloads by olga: %q (%v), want export.zip and manifest.json", files, err)
	}

	// Deleted, it is gone.
	b.submit(`#job-` + id + ` form[action$="/delete"] button`)
	if !b.has("#jobs-none") || b.path() != pathExports+"?done=deleted" {
		t.Errorf("after deleting the job: at %s, jobs %q", b.path(), b.text("#jobs"))
	}
}

// TestHoldInBrowser: an officer places a hold from a query; the holds page
// lists it with its one message, and its page links to that message and
// not to the other; with four eyes, the page says that releasing files a
// request.
func TestHoldInBrowser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{reader: true})
	merger, lunch := e.mail(t)
	b := e.opsTab(t, "olga", access.RoleOfficer)
	b.open(pathHolds + "?q=subject:merger")
	if v := eval[string](b, `document.getElementById("hold-query").value`); v != "subject:merger" {
		t.Errorf("the create form's query from ?q=: %q", v)
	}
	b.do(chromedp.SendKeys(chromedp.ID("hold-name"), "case-17"), chromedp.SendKeys(chromedp.ID("hold-reason"), "litigation 17"))
	b.submit(`#create-hold button[type=submit]`)
	if p := b.path(); p != pathHolds+"?done=created&hold=case-17" {
		t.Fatalf("after placing the hold: at %s (%s)", p, b.text("main"))
	}
	row := b.text("#hold-case-17")
	for _, want := range []string{"case-17", "subject:merger", "litigation 17", "olga (officer)", "Request release"} {
		if !strings.Contains(row, want) {
			t.Errorf("the hold's row %q lacks %q", row, want)
		}
	}
	if n := b.text(`#hold-case-17 a[aria-label^="1 messages"]`); n != "1" {
		t.Errorf("the hold's member count reads %q, want 1", n)
	}
	if !strings.Contains(b.text("#four-eyes"), "another officer approves") {
		t.Errorf("the page does not say that a release needs approval: %q", b.text("#four-eyes"))
	}
	screenshot(t, screenshotDir(t), "holds", b)

	b.open(pathHolds + "/case-17")
	if !b.has(fmt.Sprintf(`#members a[href="/messages/%d"]`, merger)) || b.has(fmt.Sprintf(`#members a[href="/messages/%d"]`, lunch)) {
		t.Errorf("the hold's members: %q, want message %d only", b.text("#members"), merger)
	}
	if h := b.text("h2#members-h"); h != "1 messages covered" {
		t.Errorf("members heading %q", h)
	}
	screenshot(t, screenshotDir(t), "hold", b)
}

// TestApprovalInBrowser: with four eyes, an officer's release of a hold
// files a request; she cannot approve it herself (the page shows the
// refusal, and the hold stays); a second officer, in a browser of his own,
// sees it, approves it, and it is executed: the hold is released.
func TestApprovalInBrowser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{reader: true})
	e.mail(t)
	ctx := context.Background()
	if _, err := e.reader.CreateHold(ctx, reader.Local("test"), "case-17", "subject:merger", "litigation 17"); err != nil {
		t.Fatal(err)
	}
	olga := e.opsTab(t, "olga", access.RoleOfficer)
	olga.open(pathHolds)
	olga.do(chromedp.SendKeys(chromedp.ID("release-reason-case-17"), "settled"))
	olga.submit(`#hold-case-17 form button`)
	m := regexp.MustCompile(`^/holds\?done=requested&hold=case-17&approval=(\d+)$`).FindStringSubmatch(olga.path())
	if m == nil {
		t.Fatalf("after requesting the release: at %s (%s)", olga.path(), olga.text("main"))
	}
	id := m[1]
	if !olga.has(`a[href="/approvals/`+id+`"]`) || !strings.Contains(olga.text(".notice"), "needs another officer's approval") {
		t.Errorf("the notice %q does not link the request", olga.text(".notice"))
	}
	active := func() bool {
		rep, err := e.reader.Holds(ctx, reader.Local("test"))
		if err != nil {
			t.Fatal(err)
		}
		return len(rep.Holds) == 1 && rep.Holds[0].Active
	}
	if !active() {
		t.Fatal("the hold was released without approval")
	}

	olga.open(pathApprovals + "/" + id)
	if !olga.has("#own") {
		t.Error("the requester's page does not say that another officer decides")
	}
	resp := olga.submit(`#approve button`)
	if resp.Status != 403 || !strings.Contains(olga.text("#refusal"), "not its requester's") {
		t.Errorf("the requester approves: %d, %q; want 403 and the refusal", resp.Status, olga.text("#refusal"))
	}
	if olga.attr("#approval-state", "data-state") != string(access.StateRequested) || !active() {
		t.Error("the requester's own approval changed the request or the hold")
	}

	bob := e.opsTab(t, "bob", access.RoleOfficer)
	bob.open(pathApprovals)
	if row := bob.text("#approval-" + id); !strings.Contains(row, "release of a hold") || !strings.Contains(row, "olga") || !strings.Contains(row, "settled") {
		t.Errorf("bob's list shows the request as %q", row)
	}
	screenshot(t, screenshotDir(t), "approvals", bob)
	bob.open(pathApprovals + "/" + id)
	if asks := bob.text("#asks"); !strings.Contains(asks, "Release the legal hold case-17") {
		t.Errorf("the request's payload in words: %q", asks)
	}
	screenshot(t, screenshotDir(t), "approval", bob)
	bob.do(chromedp.SendKeys(chromedp.ID("approve-comment"), "checked with legal"))
	bob.submit(`#approve button`)
	if p := bob.path(); p != pathApprovals+"/"+id+"?done=approved" {
		t.Fatalf("after approving: at %s (%s)", p, bob.text("main"))
	}
	if s := bob.attr("#approval-state", "data-state"); s != string(access.StateExecuted) {
		t.Errorf("the approved request is %q (%s), want executed", s, bob.text("#approval-info"))
	}
	if active() {
		t.Error("the approved release left the hold active")
	}
}

// TestStatusAndUnlockInBrowser: the admin's status page says the reader is
// unlocked; an officer locks it on the unlock page, and the status says
// locked; a wrong passphrase for the encrypted identity file is refused;
// with the right one, uploaded through the form, the reader is unlocked
// again, and the status says so.
func TestStatusAndUnlockInBrowser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{reader: true})
	e.mail(t)
	admin := e.opsTab(t, "root", access.RoleAdmin)
	olga := e.opsTab(t, "olga", access.RoleOfficer)
	locked := func() string {
		admin.open(pathStatus)
		return admin.attr("#lock-state", "data-locked")
	}
	if l := locked(); l != "false" {
		t.Fatalf("status of the running reader: locked %q", l)
	}
	if s := admin.text("#receiver"); !strings.Contains(s, "2 (2 receipts)") {
		t.Errorf("the receiver's status %q, want its 2 messages", s)
	}

	olga.open(pathUnlock)
	olga.submit(`#lock button`)
	if olga.path() != pathUnlock+"?done=locked" || olga.attr("#lock-state", "data-locked") != "true" {
		t.Fatalf("after locking: at %s, %q", olga.path(), olga.text("main"))
	}
	if l := locked(); l != "true" || !strings.Contains(admin.text("#lock-state"), "locked by olga (officer)") {
		t.Errorf("status after the lock: locked %q, %q", l, admin.text("#lock-state"))
	}
	screenshot(t, screenshotDir(t), "status-locked", admin)

	// The identity file, encrypted with a passphrase as age -p writes it.
	rcp, err := age.NewScryptRecipient("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	rcp.SetWorkFactor(10)
	var buf strings.Builder
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, rcp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(e.recv.Identity.String() + "\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(t.TempDir(), "archive.age")
	if err := os.WriteFile(idFile, []byte(buf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	olga.open(pathUnlock)
	screenshot(t, screenshotDir(t), "unlock", olga)
	olga.do(chromedp.SetUploadFiles(chromedp.ID("identity-file"), []string{idFile}), chromedp.SendKeys(chromedp.ID("passphrase"), "wrong horse"))
	resp := olga.submit(`#unlock button[type=submit]`)
	if resp.Status != 400 || !strings.Contains(olga.text("#unlock-error"), "wrong passphrase") || !e.reader.Coverage().Locked {
		t.Errorf("unlock with a wrong passphrase: %d %q, locked %v", resp.Status, olga.text("#unlock-error"), e.reader.Coverage().Locked)
	}
	olga.do(chromedp.SetUploadFiles(chromedp.ID("identity-file"), []string{idFile}), chromedp.SendKeys(chromedp.ID("passphrase"), "correct horse"))
	olga.submit(`#unlock button[type=submit]`)
	if olga.path() != pathUnlock+"?done=unlocked" || olga.attr("#lock-state", "data-locked") != "false" {
		t.Fatalf("after unlocking: at %s, %q", olga.path(), olga.text("main"))
	}
	if l := locked(); l != "false" {
		t.Errorf("status after the unlock: locked %q", l)
	}
	screenshot(t, screenshotDir(t), "status", admin)
	var unlocks []string
	err = archive.ReadAudit(context.Background(), e.recv.Dir, archive.AuditFilter{Types: []string{"reader.lock", "reader.unlock"}}, func(ae archive.AuditEntry) error {
		unlocks = append(unlocks, ae.Type+" "+ae.Actor)
		return nil
	})
	if err != nil || strings.Join(unlocks, ", ") != "reader.lock olga (officer), reader.unlock olga (officer)" {
		t.Errorf("audited: %q (%v)", unlocks, err)
	}
}

// TestAuditInBrowser: after an officer's search, the admin's audit page
// says how far the reader verified the log, and filtered by type search
// (and by the user olga) shows the entry of that search with its query.
func TestAuditInBrowser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{reader: true})
	e.mail(t)
	olga := e.opsTab(t, "olga", access.RoleOfficer)
	olga.open("/api/v1/search?q=subject%3Amerger")
	if got := olga.text("body"); !strings.Contains(got, `"total":1`) {
		t.Fatalf("olga's search: %s", got)
	}
	admin := e.opsTab(t, "root", access.RoleAdmin)
	// The reader verifies what it has followed: wait until that is past
	// the search's entry.
	seq := e.recv.Horizon(0)
	readertest.Wait(t, "the reader did not follow the log", func() bool { return e.reader.AuditVerified().VerifiedSeq >= seq },
		func() any { return e.reader.AuditVerified() })
	admin.open(pathAudit)
	if admin.attr("#verification", "data-ok") != "true" || !strings.Contains(admin.text("#verify-ok"), "verified the log's hash chain through entry") {
		t.Errorf("verification: %q", admin.text("#verification"))
	}
	admin.do(chromedp.SetValue(chromedp.ID("audit-type"), "search"))
	admin.submit(`#audit-filter button[type=submit]`)
	if p := admin.path(); !strings.Contains(p, "type=search") {
		t.Fatalf("after filtering: at %s", p)
	}
	types := eval[[]string](admin, `[...document.querySelectorAll("#entries tbody tr")].map(r => r.dataset.type)`)
	if len(types) != 1 || types[0] != "search" {
		t.Fatalf("entries of type search: %q, want olga's one", types)
	}
	if row := admin.text("#entries tbody tr"); !strings.Contains(row, "olga (officer)") || !strings.Contains(row, "subject:merger") {
		t.Errorf("the search entry reads %q", row)
	}
	screenshot(t, screenshotDir(t), "audit", admin)

	admin.open(pathAudit + "?actor=olga")
	actors := eval[[]string](admin, `[...document.querySelectorAll("#entries tbody tr td:nth-child(4)")].map(c => c.innerText)`)
	if len(actors) < 2 {
		t.Errorf("entries by olga: %q, want her sign-in and search at least", actors)
	}
	for _, a := range actors {
		if a != "olga (officer)" {
			t.Errorf("the filter by olga shows an entry by %q", a)
		}
	}
	// The HTTPS API answers the same, with the same filter.
	admin.open("/api/v1/audit?type=search&actor=olga")
	var api reader.AuditLogReport
	if err := json.Unmarshal([]byte(admin.text("body")), &api); err != nil || len(api.Entries) != 1 || api.Entries[0].Fields["query"] != "subject:merger" ||
		api.Verification.VerifiedSeq < seq {
		t.Errorf("GET /api/v1/audit?type=search&actor=olga: %+v (%v)", api, err)
	}
	// A day range that ends before today shows nothing.
	admin.open(pathAudit + "?until=" + time.Now().AddDate(0, 0, -2).UTC().Format(time.DateOnly))
	if !admin.has("#entries-none") {
		t.Errorf("entries until two days ago: %q", admin.text("#entries"))
	}
}
