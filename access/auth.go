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

// require admits a request only with a live session (else 401) whose role
// holds p (else 403), and for a cookie session that changes state, only
// with the session's CSRF token (else 403).
func (s *Server) require(p Permission, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, viaCookie, err := requestToken(r)
		var pr Principal
		if err == nil {
			pr, err = s.st.Authenticate(r.Context(), tok)
		}
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
		if viaCookie && !pr.Session.Cookie {
			// A bearer token planted in the cookie: refuse, so that cookie
			// sessions are only those made for browsers (with a CSRF token).
			w.Header().Set("WWW-Authenticate", `Bearer realm="sealmail"`)
			writeError(w, http.StatusUnauthorized, "sign in first")
			return
		}
		if viaCookie && !safeMethod(r.Method) && !hmac.Equal([]byte(r.Header.Get(CSRFHeader)), []byte(pr.CSRF)) {
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
