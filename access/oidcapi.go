// SPDX-License-Identifier: Apache-2.0

package access

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Cookies of the OIDC flow. The binding cookie ties a callback to the
// browser that started the sign-in; it is SameSite=Lax because the
// provider's redirect back is a cross-site navigation, which does not carry
// Strict cookies. The pending cookie carries a sign-in that waits for
// sealmail's second factor to the page that asks for it.
const (
	oidcBindingCookie = "__Host-sealmail-oidc"
	oidcPendingCookie = "__Host-sealmail-oidc-pending"
)

func (s *Server) oidcRoutes() {
	s.mux.HandleFunc("GET "+APIVersion+"/oidc/providers", s.oidcProviders)
	s.mux.HandleFunc("GET "+APIVersion+"/oidc/{provider}/start", s.oidcStart)
	s.mux.HandleFunc("GET "+APIVersion+"/oidc/{provider}/callback", s.oidcCallback)
	s.mux.HandleFunc("POST "+APIVersion+"/session/oidc", s.oidcFinish)
}

// OIDCProvidersReply is the answer to GET /api/v1/oidc/providers.
type OIDCProvidersReply struct {
	Providers []OIDCProviderInfo `json:"providers"`
}

func (s *Server) oidcProviders(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, OIDCProvidersReply{Providers: s.st.OIDCProviders()})
}

// oidcStart answers GET /api/v1/oidc/{provider}/start?session=cookie|token
// &return=PATH with a redirect to the provider and the binding cookie.
func (s *Server) oidcStart(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	mode := q.Get("session")
	if mode != "" && mode != "cookie" && mode != "token" {
		writeError(w, http.StatusBadRequest, "session must be cookie or token")
		return
	}
	st, err := s.st.StartOIDC(r.Context(), r.PathValue("provider"), mode != "token", q.Get("return"))
	if err != nil {
		s.oidcFail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcBindingCookie, Value: st.Binding, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(oidcFlowTTL / time.Second)})
	http.Redirect(w, r, st.URL, http.StatusFound)
}

// OIDCPendingReply is the callback's answer (202) for a token sign-in that
// needs sealmail's second factor: POST /api/v1/session/oidc with Pending
// and one of totp, recovery_code, webauthn before Expires.
type OIDCPendingReply struct {
	Pending string    `json:"pending"`
	Expires time.Time `json:"expires"`
}

// OIDCFinishBody is the body of POST /api/v1/session/oidc. Pending may
// instead come in the pending cookie (browser sign-ins).
type OIDCFinishBody struct {
	Pending      string         `json:"pending,omitempty"`
	TOTP         string         `json:"totp,omitempty"`
	RecoveryCode string         `json:"recovery_code,omitempty"`
	WebAuthn     *WebAuthnLogin `json:"webauthn,omitempty"`
	Cookie       bool           `json:"cookie,omitempty"`
}

func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cb := OIDCCallback{Provider: r.PathValue("provider"), State: q.Get("state"), Code: q.Get("code"),
		Error: q.Get("error"), Remote: remoteIP(r)}
	if c, err := r.Cookie(oidcBindingCookie); err == nil {
		cb.Binding = c.Value
	}
	http.SetCookie(w, &http.Cookie{Name: oidcBindingCookie, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
	res, err := s.st.CallbackOIDC(r.Context(), cb)
	if err != nil {
		if res.Cookie {
			// A browser goes back to its page, told that it failed.
			http.Redirect(w, r, withQuery(res.ReturnPath, "oidc_error", oidcErrorWord(err)), http.StatusSeeOther)
			return
		}
		s.oidcFail(w, r, err)
		return
	}
	switch {
	case res.Pending != "" && res.Cookie:
		http.SetCookie(w, &http.Cookie{Name: oidcPendingCookie, Value: res.Pending, Path: "/", Secure: true, HttpOnly: true,
			SameSite: http.SameSiteStrictMode, MaxAge: int(oidcPendingTTL / time.Second)})
		samePageRedirect(w, withQuery(res.ReturnPath, "oidc", "second-factor"))
	case res.Pending != "":
		writeJSON(w, http.StatusAccepted, OIDCPendingReply{Pending: res.Pending, Expires: res.PendingExpires})
	case res.Cookie:
		setSessionCookie(w, res.Session)
		samePageRedirect(w, res.ReturnPath)
	default:
		writeJSON(w, http.StatusOK, loginReply(res.Session, false))
	}
}

func (s *Server) oidcFinish(w http.ResponseWriter, r *http.Request) {
	data, ok := readBody(w, r)
	if !ok {
		return
	}
	var b OIDCFinishBody
	if err := decodeStrict(data, &b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if b.Pending == "" {
		if c, err := r.Cookie(oidcPendingCookie); err == nil {
			b.Pending = c.Value
		}
	}
	if len(b.Pending) > 64 || len(b.TOTP) > 16 || len(b.RecoveryCode) > 64 {
		writeError(w, http.StatusBadRequest, "field too long")
		return
	}
	req := OIDCSecondFactor{Pending: b.Pending, TOTP: b.TOTP, RecoveryCode: b.RecoveryCode, Remote: remoteIP(r), Cookie: b.Cookie}
	if b.WebAuthn != nil {
		req.WebAuthnCeremony, req.WebAuthn = b.WebAuthn.Ceremony, b.WebAuthn.Credential
	}
	ns, err := s.st.FinishOIDC(r.Context(), req)
	http.SetCookie(w, &http.Cookie{Name: oidcPendingCookie, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	if err != nil {
		s.oidcFail(w, r, err)
		return
	}
	if b.Cookie {
		setSessionCookie(w, ns)
	}
	writeJSON(w, http.StatusOK, loginReply(ns, b.Cookie))
}

// oidcFail answers an OIDC error as JSON.
func (s *Server) oidcFail(w http.ResponseWriter, r *http.Request, err error) {
	var te *ThrottledError
	switch {
	case errors.As(err, &te):
		w.Header().Set("Retry-After", fmt.Sprint(int(te.RetryAfter.Seconds()+0.999)))
		writeError(w, http.StatusTooManyRequests, "too many failed sign-ins; try again later")
	case errors.Is(err, ErrSignInFailed):
		writeError(w, http.StatusUnauthorized, "sign-in failed")
	case errors.Is(err, ErrOIDCUnavailable):
		s.log.Warn("oidc", "remote", remoteIP(r), "err", err)
		writeError(w, http.StatusBadGateway, "the sign-in provider cannot be reached; try again later")
	default:
		s.fail(w, r, err)
	}
}

// oidcErrorWord is what a browser's page is told about a failed sign-in.
func oidcErrorWord(err error) string {
	if errors.Is(err, ErrOIDCUnavailable) {
		return "provider-unavailable"
	}
	return "sign-in-failed"
}

// withQuery adds key=value to a local path's query.
func withQuery(path, key, value string) string {
	u, err := url.Parse(path)
	if err != nil {
		return path
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// samePageRedirect sends a browser on to a local path by a page of ours
// rather than a 302: after the provider's cross-site redirect, a 302 would
// still be a cross-site navigation and the browser would not send the
// SameSite=Strict session cookie with it. path is a [localPath].
func samePageRedirect(w http.ResponseWriter, path string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	// path has only characters that need no escaping (localPathRE).
	_, _ = fmt.Fprintf(w, "<!doctype html>\n<meta http-equiv=\"refresh\" content=\"0;url=%s\">\n<title>sealmail</title>\n<p><a href=\"%s\">Continue</a></p>\n", path, path)
}
