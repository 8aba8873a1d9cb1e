// SPDX-License-Identifier: Apache-2.0

package web

import (
	"net/http"
	"slices"

	"github.com/sealmail/sealmail/access"
)

// accountData is the page of one's own sessions and security keys.
type accountData struct {
	Sessions []access.Session
	Current  string
	Keys     []access.WebAuthnCredential
	// Notice is the message key of what was just done.
	Notice string
}

// accountNotices are the ?done= values the account page knows.
var accountNotices = []string{"revoked", "key-added", "key-removed"}

func (u *ui) account(w http.ResponseWriter, r *http.Request) {
	p, _ := access.PrincipalFrom(r.Context())
	d := accountData{Current: p.Session.ID}
	if done := r.URL.Query().Get("done"); slices.Contains(accountNotices, done) {
		d.Notice = "account.done." + done
	}
	var err error
	if d.Sessions, err = u.st.Sessions(r.Context(), p.User); err != nil {
		u.fail(w, r, err)
		return
	}
	if u.st.WebAuthnEnabled() {
		if d.Keys, err = u.st.WebAuthnCredentials(r.Context(), p.User); err != nil {
			u.fail(w, r, err)
			return
		}
	}
	u.render(w, r, http.StatusOK, "account", d)
}

// revokeSession signs out one of the caller's sessions; signing out the
// current one is signing out.
func (u *ui) revokeSession(w http.ResponseWriter, r *http.Request) {
	p, _ := access.PrincipalFrom(r.Context())
	id := r.PathValue("id")
	if id == p.Session.ID {
		u.signOut(w, r)
		return
	}
	if err := u.st.RevokeSession(r.Context(), p.Actor(access.RemoteIP(r)), id, p.User); err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, pathAccount+"?done=revoked", http.StatusSeeOther)
}

func (u *ui) removeKey(w http.ResponseWriter, r *http.Request) {
	p, _ := access.PrincipalFrom(r.Context())
	if err := u.st.RemoveWebAuthnCredential(r.Context(), p.Actor(access.RemoteIP(r)), p.User, r.PathValue("id")); err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, pathAccount+"?done=key-removed", http.StatusSeeOther)
}
