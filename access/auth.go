// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"crypto/hmac"
	"errors"
	"net"
	"net/http"
	"strings"
)

// CookieName is the browser session cookie. The __Host- prefix makes
// browsers accept it only with Secure, Path=/ and no Domain, so no other
// host or plain-HTTP page can set or overwrite it (RFC 6265bis §4.1.3.2).
const CookieName = "__Host-sealmail-session"

// CSRFHeader carries a cookie session's CSRF token on every request that
// changes state.
const CSRFHeader = "X-CSRF-Token"

type principalKey struct{}

// PrincipalFrom returns the caller of a request that passed a permission
// check.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// remoteIP is the client's IP address (the TCP peer; forwarding headers
// are not trusted).
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// requestToken returns the request's session token and whether it came in
// the cookie. A bearer token wins over a cookie.
func requestToken(r *http.Request) (string, bool, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", false, ErrNoSession
		}
		return strings.TrimSpace(tok), false, nil
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value, true, nil
	}
	return "", false, ErrNoSession
}

// safeMethod reports whether m changes nothing (RFC 9110 §9.2.1), so a
// cookie request needs no CSRF token.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// authenticate returns the principal of r's session and whether its token
// came in the cookie. A bearer token planted in the cookie counts as no
// session, so that cookie sessions are only those made for browsers (with a
// CSRF token).
func (s *Server) authenticate(r *http.Request) (Principal, bool, error) {
	tok, viaCookie, err := requestToken(r)
	if err != nil {
		return Principal{}, false, err
	}
	pr, err := s.st.Authenticate(r.Context(), tok)
	if err != nil {
		return Principal{}, false, err
	}
	if viaCookie && !pr.Session.Cookie {
		return Principal{}, false, ErrNoSession
	}
	return pr, viaCookie, nil
}

// validCSRF reports whether tok is pr's CSRF token.
func validCSRF(pr Principal, tok string) bool {
	return pr.CSRF != "" && hmac.Equal([]byte(tok), []byte(pr.CSRF))
}

// require admits a request only with a live session (else 401) whose role
// holds p (else 403), and for a cookie session that changes state, only
// with the session's CSRF token (else 403). An enrolment session is refused
// (403): it may only enrol, through the web pages.
func (s *Server) require(p Permission, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, viaCookie, err := s.authenticate(r)
		if errors.Is(err, ErrNoSession) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sealmail"`)
			writeError(w, http.StatusUnauthorized, "sign in first")
			return
		}
		if err != nil {
			s.log.Error("authenticate", "remote", remoteIP(r), "err", err)
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		}
		if pr.Enrolling() {
			writeError(w, http.StatusForbidden, "set up your second factor first (sign in with a browser)")
			return
		}
		if viaCookie && !safeMethod(r.Method) && !validCSRF(pr, r.Header.Get(CSRFHeader)) {
			writeError(w, http.StatusForbidden, "missing or wrong "+CSRFHeader+" header")
			return
		}
		if pr.Role.Grant(p) == GrantNone {
			writeError(w, http.StatusForbidden, "your role ("+string(pr.Role)+") may not do this")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, pr)))
	})
}
