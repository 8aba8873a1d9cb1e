// SPDX-License-Identifier: Apache-2.0

package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/reader"
)

// opsRoutes are the exports, holds, approvals, audit, status and unlock
// pages' routes with their permission (with made-up ids: a refusal comes
// before the id is looked at).
var opsRoutes = []struct {
	method, path string
	perm         access.Permission
}{
	{"GET", pathExports, access.PermExport},
	{"POST", pathExports, access.PermExport},
	{"POST", pathExports + "/0123456789abcdef/cancel", access.PermExport},
	{"POST", pathExports + "/0123456789abcdef/delete", access.PermExport},
	{"GET", pathHolds, access.PermHold},
	{"POST", pathHolds, access.PermHold},
	{"GET", pathHolds + "/case", access.PermHold},
	{"POST", pathHolds + "/case/release", access.PermHold},
	{"GET", pathApprovals, access.PermApprove},
	{"POST", pathApprovals + "/erase", access.PermErasure},
	{"GET", pathApprovals + "/1", access.PermApprove},
	{"POST", pathApprovals + "/1/approve", access.PermApprove},
	{"POST", pathApprovals + "/1/deny", access.PermApprove},
	{"GET", pathAudit, access.PermAuditLog},
	{"GET", pathStatus, access.PermStatus},
	{"GET", pathUnlock, access.PermUnlock},
	{"POST", pathUnlock, access.PermUnlock},
	{"POST", pathUnlock + "/lock", access.PermUnlock},
}

// TestOpsRefusals: every route of those pages answers 403 "Not for your
// role" to each role without its permission (a form post with the
// session's CSRF token too), and 403 "Form expired" to a form post of a
// role with it but without the token, which then changes nothing.
func TestOpsRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{reader: true})
	clients, tokens := map[access.Role]*http.Client{}, map[access.Role]string{}
	for _, r := range access.Roles() {
		var addrs []string
		if r == access.RoleUser {
			addrs = []string{"u@example.com"}
		}
		c := e.add(t, "x"+string(r), r, addrs...)
		clients[r] = e.client(t)
		e.signInHTTP(t, clients[r], c.User.Name, c.Password, e.clk.code(t, c.TOTPSecret))
		_, home := e.get(t, clients[r], "/")
		tokens[r] = token(t, home)
	}
	for _, rt := range opsRoutes {
		for _, r := range access.Roles() {
			if r.Grant(rt.perm) != access.GrantNone {
				continue
			}
			var form url.Values
			if rt.method == "POST" {
				form = url.Values{"csrf": {tokens[r]}, "name": {"case"}, "query": {"*"}, "reason": {"r"}, "format": {"mbox"}}
			}
			resp, body := e.do(t, clients[r], rt.method, rt.path, form)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Not for your role") {
				t.Errorf("%s %s %s: %s, want 403 Not for your role", r, rt.method, rt.path, resp.Status)
			}
		}
		if rt.method != "POST" {
			continue
		}
		for _, r := range access.Roles() {
			if r.Grant(rt.perm) == access.GrantNone {
				continue
			}
			for _, form := range []url.Values{{"name": {"case"}, "query": {"*"}, "reason": {"r"}}, {"csrf": {"forged"}, "name": {"case"}, "query": {"*"}, "reason": {"r"}}} {
				resp, body := e.do(t, clients[r], rt.method, rt.path, form)
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Form expired") {
					t.Errorf("%s %s %s with csrf %q: %s, want 403 Form expired", r, rt.method, rt.path, form.Get("csrf"), resp.Status)
				}
			}
		}
	}
	// Nothing of the refused posts happened.
	local := reader.Local("test")
	if rep, err := e.reader.Holds(context.Background(), local); err != nil || len(rep.Holds) != 0 {
		t.Errorf("holds after the refused posts: %+v, %v; want none", rep, err)
	}
	if jobs := e.reader.ExportJobs(local); len(jobs) != 0 {
		t.Errorf("export jobs after the refused posts: %+v; want none", jobs)
	}
	if e.reader.Coverage().Locked {
		t.Error("the reader is locked after refused lock posts")
	}
	if list, err := e.reader.Approvals(context.Background(), local, ""); err != nil || len(list) != 0 {
		t.Errorf("requests after the refused posts: %+v, %v; want none", list, err)
	}
	// With its token, the same post of an officer is taken.
	resp, body := e.do(t, clients[access.RoleOfficer], "POST", pathHolds, url.Values{"csrf": {tokens[access.RoleOfficer]}, "name": {"case"}, "query": {"*"}, "reason": {"r"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != pathHolds+"?done=created&hold=case" {
		t.Fatalf("officer POST /holds with the token: %s %q\n%s", resp.Status, resp.Header.Get("Location"), body)
	}
	if rep, err := e.reader.Holds(context.Background(), local); err != nil || len(rep.Holds) != 1 || rep.Holds[0].CreatedBy != "xofficer (officer)" {
		t.Errorf("holds after the officer's post: %+v, %v; want case by xofficer", rep, err)
	}
}

func TestHumanSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 B", 158: "158 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		80_596_000_000: "75.1 GiB", 3 << 50: "3.0 PiB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestErasureRequest: an officer's erasure form with message ids (with
// four eyes on) files a request for those messages and leads to its page,
// which says in words what it asks; a form with both a query and ids, or
// an id that is not a number, is refused with why and files nothing.
func TestErasureRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{reader: true})
	merger, lunch := e.mail(t)
	c := e.add(t, "olga", access.RoleOfficer)
	cl := e.client(t)
	e.signInHTTP(t, cl, "olga", c.Password, e.clk.code(t, c.TOTPSecret))
	_, page := e.get(t, cl, pathApprovals)
	csrf := token(t, page)
	for _, bad := range []url.Values{{"query": {"subject:lunch"}, "ids": {"<lunch@acme.example>"}}, {"ids": {`<a@b> x"y`}}, {}} {
		bad.Set("csrf", csrf)
		bad.Set("reason", "Art. 17")
		resp, body := e.do(t, cl, "POST", pathApprovals+"/erase", bad)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The erasure was not requested:") {
			t.Errorf("erasure form %v: %s, want 400 with why", bad, resp.Status)
		}
	}
	resp, body := e.do(t, cl, "POST", pathApprovals+"/erase", url.Values{"csrf": {csrf}, "ids": {"<lunch@acme.example>"},
		"reason": {"Art. 17 request 12"}, "override": {"on"}})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, pathApprovals+"/") || !strings.HasSuffix(loc, "?done=requested") {
		t.Fatalf("erasure request: %s to %q\n%s", resp.Status, loc, body)
	}
	_, page = e.get(t, cl, loc)
	for _, want := range []string{"Erase 1 messages that the query message-id:&#34;&lt;lunch@acme.example&gt;&#34; found", "Also before their retention ends.",
		"Art. 17 request 12", "You asked for this: another officer must decide it."} {
		if !strings.Contains(page, want) {
			t.Errorf("the request's page lacks %q", want)
		}
	}
	list, err := e.reader.Approvals(context.Background(), reader.Local("test"), access.StateRequested)
	if err != nil || len(list) != 1 || list[0].Action != access.ApproveErase {
		t.Fatalf("requests: %+v, %v; want the one erasure", list, err)
	}
	asked, err := reader.AskedOf(list[0])
	if err != nil || len(asked.Erase.Messages) != 1 || asked.Erase.Messages[0][0] != uint64(lunch) {
		t.Errorf("the request asks %+v (%v), want message %d only (not %d)", asked.Erase, err, lunch, merger)
	}
}
