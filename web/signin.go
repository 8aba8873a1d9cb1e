// SPDX-License-Identifier: Apache-2.0

package web

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sealmail/sealmail/access"
)

// signInData is the sign-in page's.
type signInData struct {
	// Error is the message key of a failed attempt; RetryAfter the seconds
	// to wait, for a throttled one.
	Error      string
	RetryAfter int
	User       string
	Next       string
	Providers  []Provider
}

func (u *ui) signInPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if p, ok := access.PrincipalFrom(r.Context()); ok {
		to := next
		if p.Enrolling() {
			to = pathEnrol
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	u.render(w, r, http.StatusOK, "signin", signInData{Next: next, Providers: u.opts.SignInWith})
}

// signIn checks the sign-in form: user, password, and a code (six digits
// are a TOTP code, anything else a recovery code) or a security key's
// answer (webauthn_ceremony, webauthn_credential), which the script puts
// there.
func (u *ui) signIn(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !validFormToken(r) {
		u.refused(w, r, access.RefusedCSRF)
		return
	}
	f := r.PostForm
	d := signInData{User: strings.ToLower(strings.TrimSpace(f.Get("user"))), Next: localPath(f.Get("next")), Providers: u.opts.SignInWith}
	b := access.LoginBody{User: d.User, Password: f.Get("password")}
	if c := f.Get("webauthn_ceremony"); c != "" {
		cred := f.Get("webauthn_credential")
		if !json.Valid([]byte(cred)) {
			cred = "" // refused by the body check below
		}
		b.WebAuthn = &access.WebAuthnLogin{Ceremony: c, Credential: json.RawMessage(cred)}
	} else if code := strings.ReplaceAll(strings.TrimSpace(f.Get("code")), " ", ""); isTOTP(code) {
		b.TOTP = code
	} else {
		b.RecoveryCode = code
	}
	ns, err := u.srv.SignInBrowser(w, r, b)
	var te *access.ThrottledError
	switch {
	case errors.As(err, &te):
		d.Error, d.RetryAfter = "signin.throttled", max(1, int((te.RetryAfter+time.Second-1)/time.Second))
		w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
		u.render(w, r, http.StatusTooManyRequests, "signin", d)
		return
	case errors.Is(err, access.ErrSignInFailed), errors.Is(err, access.ErrInvalid):
		d.Error = "signin.failed"
		u.render(w, r, http.StatusUnauthorized, "signin", d)
		return
	case err != nil:
		u.fail(w, r, err)
		return
	}
	to := d.Next
	if ns.Session.Method == access.MethodEnrol {
		to = pathEnrol
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// isTOTP reports whether code looks like a TOTP code: six digits.
func isTOTP(code string) bool {
	if len(code) != 6 {
		return false
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (u *ui) signOut(w http.ResponseWriter, r *http.Request) {
	if err := u.srv.SignOutBrowser(w, r); err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, pathSignIn, http.StatusSeeOther)
}

// enrolData is the enrolment page's.
type enrolData struct {
	QR     template.HTML
	URI    template.URL
	Secret string
	Error  string
}

func (u *ui) enrolPage(w http.ResponseWriter, r *http.Request) {
	u.showEnrolment(w, r, http.StatusOK, "")
}

// showEnrolment shows the secret being set up, with the message key
// errKey if not empty.
func (u *ui) showEnrolment(w http.ResponseWriter, r *http.Request, status int, errKey string) {
	p, _ := access.PrincipalFrom(r.Context())
	if !p.Enrolling() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	e, err := u.st.BeginEnrolment(r.Context(), p)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d := enrolData{Secret: groups(e.TOTPSecret), Error: errKey}
	if d.QR, d.URI, err = totpQR(e.TOTPURI, u.cat.text(u.lang(r), "enrol.qr")); err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, status, "enrol", d)
}

func (u *ui) enrol(w http.ResponseWriter, r *http.Request) {
	p, _ := access.PrincipalFrom(r.Context())
	if !p.Enrolling() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	code := strings.ReplaceAll(strings.TrimSpace(r.PostForm.Get("code")), " ", "")
	codes, err := u.st.FinishEnrolment(r.Context(), p, access.RemoteIP(r), code)
	if errors.Is(err, access.ErrWrongCode) {
		u.showEnrolment(w, r, http.StatusBadRequest, "enrol.wrong")
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "enrolled", codes)
}

// groups writes a base32 secret in groups of four, for typing.
func groups(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (u *ui) home(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, http.StatusOK, "home", nil)
}
