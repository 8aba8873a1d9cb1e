// SPDX-License-Identifier: Apache-2.0

package web

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/reader"
)

// Options configures the web interface. The zero value is safe.
type Options struct {
	// Logger receives diagnostics (never secrets or message content). Nil
	// discards them.
	Logger *slog.Logger
	// SignInWith lists external sign-in providers (OIDC): the sign-in page
	// shows a link "Sign in with Name" for each, to its Path.
	SignInWith []Provider
	// Reader is the reader service the search and message pages ask (with
	// the signed-in person as the caller: scopes and audit are the
	// reader's). Nil only where those pages are not used (tests of the
	// others).
	Reader *reader.Reader
}

// Provider is an external sign-in provider on the sign-in page.
type Provider struct {
	// Name is what people know it by ("Microsoft", "Keycloak").
	Name string
	// Path is the local path (on the same server) whose GET starts the
	// sign-in, such as "/oidc/start?provider=entra".
	Path string
}

// Paths of the pages. "/" is the start page; the rest are in [sections] or
// below.
const (
	pathSignIn  = "/signin"
	pathSignOut = "/signout"
	pathEnrol   = "/enrol"
	pathLang    = "/lang"
	pathStatic  = "/static/"
	pathAccount = "/account"
	pathUsers   = "/users"
	// The pages through the reader (ops.go).
	pathHolds     = "/holds"
	pathExports   = "/exports"
	pathApprovals = "/approvals"
	pathStatus    = "/status"
	pathUnlock    = "/unlock"
	pathAudit     = "/audit"
)

// section is a page of the navigation: its path, the message key of its
// name (and key+".about" of what it is for) and the permission that shows
// it.
type section struct {
	path string
	key  string
	perm access.Permission
}

// sections is the navigation, in its order.
func sections() []section {
	return []section{
		{pathSearch, "nav.search", access.PermSearch},
		{pathHolds, "nav.holds", access.PermHold},
		{pathExports, "nav.exports", access.PermExport},
		{pathApprovals, "nav.approvals", access.PermApprove},
		{pathUsers, "nav.users", access.PermUsers},
		{pathStatus, "nav.status", access.PermStatus},
		{pathUnlock, "nav.unlock", access.PermUnlock},
		{pathAudit, "nav.audit", access.PermAuditLog},
		{pathAccount, "nav.account", access.PermSession},
	}
}

// ui is the web interface of one server.
type ui struct {
	srv  *access.Server
	st   *access.State
	log  *slog.Logger
	opts Options
	tmpl templates
	cat  catalogue
	// assets are the embedded static files by name.
	assets map[string]asset
	pages  access.PageOptions
	cop    *http.CrossOriginProtection
}

// Register adds the web interface's pages to srv (docs/web.md lists their
// paths: "/", /signin, /signout, /enrol, /account, /users, /lang, /static/,
// and the sections of the navigation). Call it once, before srv.Serve.
func Register(srv *access.Server, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	for _, p := range opts.SignInWith {
		if p.Name == "" || localPath(p.Path) != p.Path {
			return fmt.Errorf("web: sign-in provider %q: want a name and a local path, not %q", p.Name, p.Path)
		}
	}
	u := &ui{srv: srv, st: srv.State(), log: opts.Logger, opts: opts, cat: newCatalogue(),
		cop: http.NewCrossOriginProtection()}
	var err error
	if u.assets, err = loadAssets(); err != nil {
		return err
	}
	if u.tmpl, err = parseTemplates(); err != nil {
		return err
	}
	u.pages = access.PageOptions{SignIn: pathSignIn, Enrol: pathEnrol, Refused: u.refused}
	u.routes()
	return nil
}

func (u *ui) routes() {
	u.public("GET "+pathStatic+"{name}", u.static)
	u.public("GET "+pathSignIn, u.signInPage)
	u.public("POST "+pathSignIn, u.signIn)
	u.public("POST "+pathLang, u.setLang)
	u.enrolment("POST "+pathSignOut, u.signOut)
	u.enrolment("GET "+pathEnrol, u.enrolPage)
	u.enrolment("POST "+pathEnrol, u.enrol)
	u.page("GET /{$}", access.PermSession, u.home)
	u.page("GET "+pathAccount, access.PermSession, u.account)
	u.page("POST "+pathAccount+"/sessions/{id}/revoke", access.PermSession, u.revokeSession)
	u.page("POST "+pathAccount+"/keys/{id}/remove", access.PermSession, u.removeKey)
	u.page("GET "+pathUsers, access.PermUsers, u.users)
	u.page("POST "+pathUsers, access.PermUsers, u.addUser)
	u.page("POST "+pathUsers+"/{name}/disable", access.PermUsers, u.disableUser)
	u.page("POST "+pathUsers+"/{name}/enable", access.PermUsers, u.enableUser)
	u.page("GET "+pathUsers+"/{name}/reset", access.PermUsers, u.resetPage)
	u.page("POST "+pathUsers+"/{name}/reset", access.PermUsers, u.resetUser)
	u.page("GET "+pathSearch, access.PermSearch, u.search)
	u.page("GET "+pathMessages+"/{id}", access.PermSearch, u.message)
	u.page("GET "+pathMessages+"/{id}/body", access.PermSearch, u.messageBody)
	u.page("GET "+pathMessages+"/{id}/raw", access.PermSearch, u.messageRaw)
	u.page("GET "+pathMessages+"/{id}/attachments/{n}", access.PermSearch, u.attachment)
	u.page("GET "+pathExports, access.PermExport, u.withReader(u.exports))
	u.page("POST "+pathExports, access.PermExport, u.withReader(u.startExport))
	u.page("POST "+pathExports+"/{id}/cancel", access.PermExport, u.withReader(u.cancelExport))
	u.page("POST "+pathExports+"/{id}/delete", access.PermExport, u.withReader(u.deleteExport))
	u.page("GET "+pathHolds, access.PermHold, u.withReader(u.holds))
	u.page("POST "+pathHolds, access.PermHold, u.withReader(u.createHold))
	u.page("GET "+pathHolds+"/{name}", access.PermHold, u.withReader(u.hold))
	u.page("POST "+pathHolds+"/{name}/release", access.PermHold, u.withReader(u.releaseHold))
	u.page("GET "+pathApprovals, access.PermApprove, u.withReader(u.approvals))
	u.page("POST "+pathApprovals+"/erase", access.PermErasure, u.withReader(u.requestErasure))
	u.page("GET "+pathApprovals+"/{id}", access.PermApprove, u.withReader(u.approval))
	u.page("POST "+pathApprovals+"/{id}/approve", access.PermApprove, u.withReader(u.decide(true)))
	u.page("POST "+pathApprovals+"/{id}/deny", access.PermApprove, u.withReader(u.decide(false)))
	u.page("GET "+pathAudit, access.PermAuditLog, u.withReader(u.audit))
	u.page("GET "+pathStatus, access.PermStatus, u.withReader(u.status))
	u.page("GET "+pathUnlock, access.PermUnlock, u.withReader(u.unlockPage))
	u.page("POST "+pathUnlock, access.PermUnlock, u.withReader(u.unlock))
	u.page("POST "+pathUnlock+"/lock", access.PermUnlock, u.withReader(u.lockReader))
}

// page registers a page behind permission p.
func (u *ui) page(pattern string, p access.Permission, h http.HandlerFunc) {
	u.srv.HandlePage(pattern, p, u.pages, u.guard(h))
}

// enrolment registers a page that enrolment sessions may use too.
func (u *ui) enrolment(pattern string, h http.HandlerFunc) {
	u.srv.HandleEnrolment(pattern, u.pages, u.guard(h))
}

// public registers a page that needs no session.
func (u *ui) public(pattern string, h http.HandlerFunc) {
	u.srv.HandlePublic(pattern, u.guard(h))
}

// guard refuses cross-origin state-changing requests (a second line behind
// the CSRF tokens) and bounds form bodies.
func (u *ui) guard(h http.HandlerFunc) http.Handler {
	return u.cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		h(w, r)
	}))
}

// maxForm bounds a form body (access bounds it to the same for signed-in
// pages).
const maxForm = 16 << 10
