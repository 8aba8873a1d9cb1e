// SPDX-License-Identifier: Apache-2.0

package web

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sealmail/sealmail/access"
)

// usersData is the users page's.
type usersData struct {
	Users []access.User
	Roles []access.Role
	// Form is what the add form shows (after a refused add, what was sent).
	Form userForm
	// Factor is the add form's choice of second factor: "enrol" or
	// "handover".
	Factor string
	// Notice is the message key of what was just done, to NoticeUser;
	// Error the key of what was refused, with Detail from access.
	Notice, NoticeUser string
	Error, Detail      string
}

// userForm is the add form's fields as typed.
type userForm struct {
	Name, Role, Addresses, Scope, Expires string
}

// credentialsData is the page that shows new credentials once.
type credentialsData struct {
	Cred  access.Credentials
	Reset bool
	QR    template.HTML
}

func (u *ui) users(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := usersData{Form: userForm{Role: string(access.RoleUser)}}
	if done := q.Get("done"); done == "disabled" || done == "enabled" {
		d.Notice, d.NoticeUser = "users.done."+done, q.Get("user")
	}
	u.showUsers(w, r, http.StatusOK, d)
}

// showUsers renders the users page with d, after listing the users. A
// notice about a user who is not in the list is dropped (the query string
// is anyone's to write).
func (u *ui) showUsers(w http.ResponseWriter, r *http.Request, status int, d usersData) {
	list, err := u.st.Users(r.Context())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d.Users, d.Roles = list, access.Roles()
	if d.Notice != "" && !slices.ContainsFunc(list, func(u access.User) bool { return u.Name == d.NoticeUser }) {
		d.Notice, d.NoticeUser = "", ""
	}
	u.render(w, r, status, "users", d)
}

// addUser adds a user from the add form and shows the credentials, once.
func (u *ui) addUser(w http.ResponseWriter, r *http.Request) {
	p, _ := access.PrincipalFrom(r.Context())
	f := r.PostForm
	form := userForm{Name: strings.TrimSpace(f.Get("name")), Role: f.Get("role"), Addresses: f.Get("addresses"),
		Scope: strings.TrimSpace(f.Get("scope")), Expires: f.Get("expires")}
	d := usersData{Form: form, Factor: f.Get("factor")}
	nu := access.NewUser{Name: form.Name, Role: access.Role(form.Role), Scope: form.Scope,
		Addresses: strings.FieldsFunc(form.Addresses, func(c rune) bool { return c == ',' || c == ';' || c == ' ' || c == '\n' || c == '\r' || c == '\t' }),
		Enrol:     d.Factor != "handover"}
	var err error
	if form.Expires != "" {
		var day time.Time
		if day, err = time.Parse(time.DateOnly, form.Expires); err == nil {
			nu.Expires = day.AddDate(0, 0, 1) // access ends when the day is over, as `user add --expires` has it
		} else {
			err = fmt.Errorf("%w expiry date %q: want YYYY-MM-DD", access.ErrInvalid, form.Expires)
		}
	}
	var cred access.Credentials
	if err == nil {
		cred, err = u.st.AddUser(r.Context(), p.Actor(access.RemoteIP(r)), nu)
	}
	switch {
	case errors.Is(err, access.ErrUserExists):
		d.Error = "users.add.exists"
		u.showUsers(w, r, http.StatusConflict, d)
		return
	case errors.Is(err, access.ErrInvalid):
		d.Error, d.Detail = "users.add.failed", detail(err)
		u.showUsers(w, r, http.StatusBadRequest, d)
		return
	case err != nil:
		u.fail(w, r, err)
		return
	}
	u.showCredentials(w, r, http.StatusCreated, cred, false)
}

// showCredentials shows new credentials: they are in this answer only.
func (u *ui) showCredentials(w http.ResponseWriter, r *http.Request, status int, cred access.Credentials, reset bool) {
	d := credentialsData{Cred: cred, Reset: reset}
	if cred.TOTPURI != "" {
		var err error
		if d.QR, _, err = totpQR(cred.TOTPURI, u.cat.text(u.lang(r), "enrol.qr")); err != nil {
			u.fail(w, r, err)
			return
		}
	}
	u.render(w, r, status, "credentials", d)
}

func (u *ui) disableUser(w http.ResponseWriter, r *http.Request) {
	p, _ := access.PrincipalFrom(r.Context())
	name := r.PathValue("name")
	u.userChanged(w, r, "disabled", u.st.DisableUser(r.Context(), p.Actor(access.RemoteIP(r)), name))
}

func (u *ui) enableUser(w http.ResponseWriter, r *http.Request) {
	p, _ := access.PrincipalFrom(r.Context())
	name := r.PathValue("name")
	u.userChanged(w, r, "enabled", u.st.EnableUser(r.Context(), p.Actor(access.RemoteIP(r)), name))
}

// userChanged goes back to the users page after a change, saying what was
// done (or why not).
func (u *ui) userChanged(w http.ResponseWriter, r *http.Request, done string, err error) {
	if errors.Is(err, access.ErrLastAdmin) {
		u.showUsers(w, r, http.StatusConflict, usersData{Form: userForm{Role: string(access.RoleUser)}, Error: "error.lastadmin.text"})
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, pathUsers+"?done="+done+"&user="+url.QueryEscape(r.PathValue("name")), http.StatusSeeOther)
}

// resetData is the reset confirmation page's.
type resetData struct {
	Name   string
	Factor string
}

func (u *ui) resetPage(w http.ResponseWriter, r *http.Request) {
	usr, err := u.st.User(r.Context(), r.PathValue("name"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "reset", resetData{Name: usr.Name})
}

func (u *ui) resetUser(w http.ResponseWriter, r *http.Request) {
	p, _ := access.PrincipalFrom(r.Context())
	by, name := p.Actor(access.RemoteIP(r)), r.PathValue("name")
	var cred access.Credentials
	var err error
	if r.PostForm.Get("factor") == "handover" {
		cred, err = u.st.ResetUser(r.Context(), by, name, "")
	} else {
		cred, err = u.st.ResetUserForEnrolment(r.Context(), by, name)
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.showCredentials(w, r, http.StatusOK, cred, true)
}
