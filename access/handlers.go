// SPDX-License-Identifier: Apache-2.0

package access

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// APIVersion is the path prefix of this version of the API.
const APIVersion = "/api/v1"

// maxBody bounds a JSON request body.
const maxBody = 16 << 10

func (s *Server) routes() {
	s.mux.HandleFunc("POST "+APIVersion+"/session", s.login)
	s.Handle("DELETE "+APIVersion+"/session", PermSession, http.HandlerFunc(s.logout))
	s.Handle("GET "+APIVersion+"/me", PermSession, http.HandlerFunc(s.me))
	s.Handle("GET "+APIVersion+"/sessions", PermSession, http.HandlerFunc(s.sessions))
	s.Handle("DELETE "+APIVersion+"/sessions/{id}", PermSession, http.HandlerFunc(s.revoke))
	s.Handle("GET "+APIVersion+"/users", PermUsers, http.HandlerFunc(s.users))
	s.Handle("POST "+APIVersion+"/users", PermUsers, http.HandlerFunc(s.addUser))
	s.Handle("POST "+APIVersion+"/users/{name}/disable", PermUsers, http.HandlerFunc(s.disableUser))
	s.Handle("POST "+APIVersion+"/users/{name}/enable", PermUsers, http.HandlerFunc(s.enableUser))
	s.Handle("POST "+APIVersion+"/users/{name}/reset", PermUsers, http.HandlerFunc(s.resetUser))
	s.Handle("POST "+APIVersion+"/users/{name}/oidc", PermUsers, http.HandlerFunc(s.linkUser))
	s.Handle("DELETE "+APIVersion+"/users/{name}/oidc", PermUsers, http.HandlerFunc(s.unlinkUser))
	s.mux.HandleFunc("POST "+APIVersion+"/session/webauthn", s.beginWebAuthnLogin)
	s.Handle("POST "+APIVersion+"/webauthn/register", PermSession, http.HandlerFunc(s.beginWebAuthnRegistration))
	s.Handle("POST "+APIVersion+"/webauthn/register/finish", PermSession, http.HandlerFunc(s.finishWebAuthnRegistration))
	s.Handle("GET "+APIVersion+"/webauthn/credentials", PermSession, http.HandlerFunc(s.webAuthnCredentials))
	s.Handle("DELETE "+APIVersion+"/webauthn/credentials/{id}", PermSession, http.HandlerFunc(s.removeWebAuthnCredential))
	s.approvalRoutes()
	s.oidcRoutes()
}

// LoginBody is the body of POST /api/v1/session.
type LoginBody struct {
	User         string `json:"user"`
	Password     string `json:"password"`
	TOTP         string `json:"totp,omitempty"`
	RecoveryCode string `json:"recovery_code,omitempty"`
	// WebAuthn is the answer to a WebAuthn challenge from
	// POST /api/v1/session/webauthn.
	WebAuthn *WebAuthnLogin `json:"webauthn,omitempty"`
	// Cookie asks for a browser session: the token goes into an HttpOnly
	// cookie instead of the response, which carries a CSRF token instead.
	Cookie bool `json:"cookie,omitempty"`
}

// WebAuthnLogin is a WebAuthn second factor: the ceremony id and the
// PublicKeyCredential that navigator.credentials.get() returned.
type WebAuthnLogin struct {
	Ceremony   string          `json:"ceremony"`
	Credential json.RawMessage `json:"credential"`
}

// LoginReply is the answer to a successful sign-in.
type LoginReply struct {
	// Token is the bearer token (absent for a cookie session).
	Token string `json:"token,omitempty"`
	// Expires is the session's absolute end; IdleExpires its end if unused.
	Expires     time.Time `json:"expires"`
	IdleExpires time.Time `json:"idle_expires"`
	Session     string    `json:"session"`
	// CSRF is a cookie session's CSRF token, for the X-CSRF-Token header.
	CSRF string `json:"csrf,omitempty"`
}

// decodeLogin parses a sign-in body: one JSON object with known fields only,
// each within its length bound, and nothing after it.
func decodeLogin(data []byte) (LoginBody, error) {
	var b LoginBody
	if err := decodeStrict(data, &b); err != nil {
		return LoginBody{}, err
	}
	if err := b.validate(); err != nil {
		return LoginBody{}, err
	}
	return b, nil
}

// validate checks b's fields against their length bounds and that it has
// at most one second factor.
func (b *LoginBody) validate() error {
	switch {
	case b.User == "":
		return fmt.Errorf("%w: no user", ErrInvalid)
	case len(b.User) > 256:
		return fmt.Errorf("%w: user name too long", ErrInvalid)
	case len(b.Password) > MaxPasswordLen:
		return fmt.Errorf("%w: password too long", ErrInvalid)
	case len(b.TOTP) > 16 || len(b.RecoveryCode) > 64:
		return fmt.Errorf("%w: code too long", ErrInvalid)
	}
	factors := 0
	for _, set := range []bool{b.TOTP != "", b.RecoveryCode != "", b.WebAuthn != nil} {
		if set {
			factors++
		}
	}
	if factors > 1 {
		return fmt.Errorf("%w: send one of totp, recovery_code and webauthn", ErrInvalid)
	}
	if w := b.WebAuthn; w != nil && (w.Ceremony == "" || len(w.Ceremony) > 64 || len(w.Credential) == 0) {
		return fmt.Errorf("%w: webauthn needs a ceremony and a credential", ErrInvalid)
	}
	return nil
}

// request is b as a sign-in attempt from remote.
func (b *LoginBody) request(remote string) LoginRequest {
	req := LoginRequest{User: b.User, Password: b.Password, TOTP: b.TOTP,
		RecoveryCode: b.RecoveryCode, Remote: remote, Cookie: b.Cookie}
	if b.WebAuthn != nil {
		req.WebAuthnCeremony, req.WebAuthn = b.WebAuthn.Ceremony, b.WebAuthn.Credential
	}
	return req
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w JSON: %w", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w JSON: data after the object", ErrInvalid)
	}
	return nil
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	return readBodyMax(w, r, maxBody)
}

// readBodyMax reads a request body of at most limit bytes; false (after
// answering 413) if it is longer.
func readBodyMax(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
		return nil, false
	}
	return data, true
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	data, ok := readBody(w, r)
	if !ok {
		return
	}
	b, err := decodeLogin(data)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ns, err := s.st.Login(r.Context(), b.request(remoteIP(r)))
	var te *ThrottledError
	switch {
	case errors.As(err, &te):
		w.Header().Set("Retry-After", fmt.Sprint(int(te.RetryAfter.Seconds()+0.999)))
		writeError(w, http.StatusTooManyRequests, "too many failed sign-ins; try again later")
		return
	case errors.Is(err, ErrSignInFailed):
		writeError(w, http.StatusUnauthorized, "sign-in failed")
		return
	case err != nil:
		s.log.Error("login", "remote", remoteIP(r), "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	if b.Cookie {
		setSessionCookie(w, ns)
	}
	writeJSON(w, http.StatusOK, loginReply(ns, b.Cookie))
}

// loginReply is the answer to a sign-in: the token, or for a cookie
// session the CSRF token instead.
func loginReply(ns NewSession, cookie bool) LoginReply {
	reply := LoginReply{Token: ns.Token, Expires: ns.Session.Expires, IdleExpires: ns.Session.IdleExpires, Session: ns.Session.ID}
	if cookie {
		reply.Token, reply.CSRF = "", ns.CSRF
	}
	return reply
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	if err := s.st.SignOut(r.Context(), p, remoteIP(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	if p.Session.Cookie {
		clearSessionCookie(w)
	}
	w.WriteHeader(http.StatusNoContent)
}

// MeReply is the answer to GET /api/v1/me.
type MeReply struct {
	User      string    `json:"user"`
	Role      Role      `json:"role"`
	Addresses []string  `json:"addresses"`
	Scope     string    `json:"scope,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
	Session   Session   `json:"session"`
	// CSRF is repeated for a cookie session, so a reloaded page finds it.
	CSRF string `json:"csrf,omitempty"`
	// Permissions lists what the role may do, with its grant.
	Permissions map[Permission]string `json:"permissions"`
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	perms := map[Permission]string{}
	for _, row := range Matrix() {
		if g := p.Role.Grant(row.Permission); g != GrantNone {
			perms[row.Permission] = g.String()
		}
	}
	addrs := p.Addresses
	if addrs == nil {
		addrs = []string{}
	}
	writeJSON(w, http.StatusOK, MeReply{User: p.User, Role: p.Role, Addresses: addrs, Scope: p.Scope,
		Expires: p.Expires, Session: p.Session, CSRF: p.CSRF, Permissions: perms})
}

// SessionsReply is the answer to GET /api/v1/sessions.
type SessionsReply struct {
	Sessions []Session `json:"sessions"`
	// Current is the id of the session the request came with.
	Current string `json:"current"`
}

// sessions lists the caller's sessions; with ?user=NAME or ?all=1 (admins
// only) someone else's or everyone's.
func (s *Server) sessions(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	user := p.User
	q := r.URL.Query()
	if q.Has("user") || q.Has("all") {
		if p.Role.Grant(PermUsers) == GrantNone {
			writeError(w, http.StatusForbidden, "your role ("+string(p.Role)+") may see only its own sessions")
			return
		}
		user = q.Get("user")
	}
	list, err := s.st.Sessions(r.Context(), user)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []Session{}
	}
	writeJSON(w, http.StatusOK, SessionsReply{Sessions: list, Current: p.Session.ID})
}

// revoke ends a session by id: the caller's own, or anyone's for admins.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	owner := p.User
	if p.Role.Grant(PermUsers) != GrantNone {
		owner = ""
	}
	if err := s.st.RevokeSession(r.Context(), p.Actor(remoteIP(r)), r.PathValue("id"), owner); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// UsersReply is the answer to GET /api/v1/users.
type UsersReply struct {
	Users []User `json:"users"`
}

func (s *Server) users(w http.ResponseWriter, r *http.Request) {
	list, err := s.st.Users(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []User{}
	}
	writeJSON(w, http.StatusOK, UsersReply{Users: list})
}

// AddUserBody is the body of POST /api/v1/users. The password is always
// generated: it is in the reply, once, for the admin to hand over.
type AddUserBody struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Addresses []string  `json:"addresses,omitempty"`
	Scope     string    `json:"scope,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
}

func (s *Server) addUser(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	data, ok := readBody(w, r)
	if !ok {
		return
	}
	var b AddUserBody
	if err := decodeStrict(data, &b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	cred, err := s.st.AddUser(r.Context(), p.Actor(remoteIP(r)), NewUser{Name: b.Name, Role: b.Role,
		Addresses: b.Addresses, Scope: b.Scope, Expires: b.Expires})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, cred)
}

func (s *Server) disableUser(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	s.userChanged(w, r, s.st.DisableUser(r.Context(), p.Actor(remoteIP(r)), r.PathValue("name")))
}

func (s *Server) enableUser(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	s.userChanged(w, r, s.st.EnableUser(r.Context(), p.Actor(remoteIP(r)), r.PathValue("name")))
}

func (s *Server) userChanged(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.st.User(r.Context(), r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// LinkBody is the body of POST /api/v1/users/{name}/oidc.
type LinkBody struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
}

func (s *Server) linkUser(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	data, ok := readBody(w, r)
	if !ok {
		return
	}
	var b LinkBody
	if err := decodeStrict(data, &b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.userChanged(w, r, s.st.LinkOIDC(r.Context(), p.Actor(remoteIP(r)), r.PathValue("name"), b.Issuer, b.Subject))
}

// unlinkUser answers DELETE /api/v1/users/{name}/oidc?issuer=URL.
func (s *Server) unlinkUser(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	s.userChanged(w, r, s.st.UnlinkOIDC(r.Context(), p.Actor(remoteIP(r)), r.PathValue("name"), r.URL.Query().Get("issuer")))
}

func (s *Server) resetUser(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	cred, err := s.st.ResetUser(r.Context(), p.Actor(remoteIP(r)), r.PathValue("name"), "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cred)
}

// fail answers err with its status: the caller's mistakes are explained,
// anything else is logged and answered "internal error".
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNoUser), errors.Is(err, ErrNoSuchSession), errors.Is(err, ErrNoSuchCredential), errors.Is(err, ErrWebAuthnOff),
		errors.Is(err, ErrNoApproval), errors.Is(err, ErrNoOIDCProvider):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrUserExists), errors.Is(err, ErrLastAdmin), errors.Is(err, ErrApprovalDecided):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrSameOfficer), errors.Is(err, ErrNotOfficer):
		writeError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, ErrBusy):
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusTooManyRequests, err.Error())
	default:
		s.log.Error("request", "path", r.URL.Path, "remote", remoteIP(r), "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

// ErrorReply is the body of every error answer.
type ErrorReply struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorReply{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// The status is sent; a failed body write is the client's broken
	// connection and nothing more can be told to it.
	_ = json.NewEncoder(w).Encode(v)
}

// WebAuthnChallenge is the answer to the begin calls of WebAuthn: PublicKey
// goes to navigator.credentials.get() or .create() (as "publicKey").
type WebAuthnChallenge struct {
	// Ceremony identifies a sign-in challenge; it goes back with the answer.
	Ceremony  string `json:"ceremony,omitempty"`
	PublicKey any    `json:"publicKey"`
}

func (s *Server) beginWebAuthnLogin(w http.ResponseWriter, r *http.Request) {
	id, assertion, err := s.st.BeginWebAuthnLogin(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, WebAuthnChallenge{Ceremony: id, PublicKey: assertion.Response})
}

func (s *Server) beginWebAuthnRegistration(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	creation, err := s.st.BeginWebAuthnRegistration(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, WebAuthnChallenge{PublicKey: creation.Response})
}

// WebAuthnRegisterBody is the body of POST /api/v1/webauthn/register/finish.
type WebAuthnRegisterBody struct {
	// Name tells the user's credentials apart ("YubiKey 5", "laptop").
	Name       string          `json:"name"`
	Credential json.RawMessage `json:"credential"`
}

func (s *Server) finishWebAuthnRegistration(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	data, ok := readBody(w, r)
	if !ok {
		return
	}
	var b WebAuthnRegisterBody
	if err := decodeStrict(data, &b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := s.st.FinishWebAuthnRegistration(r.Context(), p, remoteIP(r), b.Name, b.Credential)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

// WebAuthnCredentialsReply is the answer to GET /api/v1/webauthn/credentials.
type WebAuthnCredentialsReply struct {
	Credentials []WebAuthnCredential `json:"credentials"`
}

func (s *Server) webAuthnCredentials(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	list, err := s.st.WebAuthnCredentials(r.Context(), p.User)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []WebAuthnCredential{}
	}
	writeJSON(w, http.StatusOK, WebAuthnCredentialsReply{Credentials: list})
}

func (s *Server) removeWebAuthnCredential(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	if err := s.st.RemoveWebAuthnCredential(r.Context(), p.Actor(remoteIP(r)), p.User, r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
