// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
)

// Pages: what a server-rendered web interface (package web) needs of the
// Server besides the JSON API. Pages are registered with a permission as
// endpoints are, and checked the same way before their handler runs; they
// differ in how they refuse (a redirect to the sign-in page instead of 401,
// a page of the interface's own instead of JSON 403) and in taking the CSRF
// token from a form field, since an HTML form cannot send a header.

// CSRFField is the form field that carries a cookie session's CSRF token in
// a form post to a page (the [CSRFHeader] header is accepted too).
const CSRFField = "csrf"

// Refusal says why a page request was refused.
type Refusal int

const (
	// RefusedRole: the caller's role lacks the page's permission.
	RefusedRole Refusal = iota + 1
	// RefusedCSRF: a state-changing request of a cookie session without the
	// session's CSRF token.
	RefusedCSRF
)

// PageOptions says where pages send the requests they do not admit.
type PageOptions struct {
	// SignIn is the sign-in page's path: a request without a live session is
	// redirected there (303), a GET or HEAD with ?next= and its own path.
	SignIn string
	// Enrol is the enrolment page's path: an enrolment session
	// ([Principal.Enrolling]) is redirected there from every other page.
	Enrol string
	// Refused answers a refused request with status 403; [PrincipalFrom]
	// finds the caller. Nil answers in plain text.
	Refused func(w http.ResponseWriter, r *http.Request, why Refusal)
}

// HandlePage registers a page: h runs only for a live session (else a
// redirect to o.SignIn) that is not an enrolment session (else a redirect to
// o.Enrol), whose role holds p, and for a cookie session that changes state,
// with the session's CSRF token in the form field [CSRFField] or the
// [CSRFHeader] header (else o.Refused). A form body (urlencoded, or
// multipart for a file upload) is limited to 16 KiB.
// h finds the caller with [PrincipalFrom].
func (s *Server) HandlePage(pattern string, p Permission, o PageOptions, h http.Handler) {
	s.mux.Handle(pattern, s.page(p, false, o, h))
}

// HandleEnrolment registers a page that every live session may use,
// enrolment sessions included: the enrolment page itself and signing out.
// It is checked as [Server.HandlePage] is, less the permission.
func (s *Server) HandleEnrolment(pattern string, o PageOptions, h http.Handler) {
	s.mux.Handle(pattern, s.page("", true, o, h))
}

// HandlePublic registers a handler that needs no session: the sign-in page,
// its assets. If the request has a live session, [PrincipalFrom] finds it,
// but no CSRF token has been checked: h must not change anything on the
// caller's behalf.
func (s *Server) HandlePublic(pattern string, h http.Handler) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, _, err := s.authenticate(r)
		switch {
		case err == nil:
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, pr))
		case !errors.Is(err, ErrNoSession):
			s.log.Warn("authenticate", "remote", remoteIP(r), "err", err)
		}
		h.ServeHTTP(w, r)
	}))
}

func (s *Server) page(p Permission, enrolment bool, o PageOptions, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, viaCookie, err := s.authenticate(r)
		if errors.Is(err, ErrNoSession) {
			to := o.SignIn
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				to += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		if err != nil {
			s.log.Error("authenticate", "remote", remoteIP(r), "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, pr))
		if pr.Enrolling() && !enrolment {
			http.Redirect(w, r, o.Enrol, http.StatusSeeOther)
			return
		}
		refuse := func(why Refusal) {
			if o.Refused == nil {
				http.Error(w, "forbidden", http.StatusForbidden)
				return
			}
			o.Refused(w, r, why)
		}
		if viaCookie && !safeMethod(r.Method) {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			tok := r.Header.Get(CSRFHeader)
			if tok == "" {
				// A multipart form (a file upload) is read whole in memory:
				// its body is bounded as above.
				parse := r.ParseForm
				if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
					parse = func() error { return r.ParseMultipartForm(maxBody) }
				}
				if err := parse(); err != nil {
					http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
					return
				}
				tok = r.PostForm.Get(CSRFField)
			}
			if !validCSRF(pr, tok) {
				refuse(RefusedCSRF)
				return
			}
		}
		if !enrolment && pr.Role.Grant(p) == GrantNone {
			refuse(RefusedRole)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// SignInBrowser signs in from a sign-in form: b as the body of
// POST /api/v1/session is checked, always for a cookie session, from r's
// client address. On success the session cookie is set on w. The errors
// are [State.Login]'s, and [ErrInvalid] for a malformed b.
func (s *Server) SignInBrowser(w http.ResponseWriter, r *http.Request, b LoginBody) (NewSession, error) {
	b.Cookie = true
	if err := b.validate(); err != nil {
		return NewSession{}, err
	}
	ns, err := s.st.Login(r.Context(), b.request(remoteIP(r)))
	if err != nil {
		return NewSession{}, err
	}
	setSessionCookie(w, ns)
	return ns, nil
}

// SignOutBrowser ends the session of a page request (registered with
// [Server.HandlePage] or [Server.HandleEnrolment]) and clears its cookie.
func (s *Server) SignOutBrowser(w http.ResponseWriter, r *http.Request) error {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		return ErrNoSession
	}
	if err := s.st.SignOut(r.Context(), p, remoteIP(r)); err != nil {
		return err
	}
	clearSessionCookie(w)
	return nil
}

// RemoteIP is the client address of r as the audit events record it: the
// TCP peer's IP (forwarding headers are not trusted).
func RemoteIP(r *http.Request) string { return remoteIP(r) }

// WebAuthnEnabled reports whether WebAuthn is configured.
func (s *State) WebAuthnEnabled() bool { return s.wa != nil }

func setSessionCookie(w http.ResponseWriter, ns NewSession) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: ns.Token, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Expires: ns.Session.Expires})
}

func clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}
