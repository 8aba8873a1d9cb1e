// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/oauth2"
)

// OIDCMFA says what makes an OIDC sign-in multi-factor.
type OIDCMFA string

// The MFA modes of a provider.
const (
	// MFAProviderOrSealmail (the default): the provider's MFA counts if the
	// ID token shows it (amr, acr); otherwise sealmail's own second factor
	// (TOTP, WebAuthn, recovery code) completes the sign-in.
	MFAProviderOrSealmail OIDCMFA = "provider-or-sealmail"
	// MFAProvider: the ID token must show MFA; without it the sign-in is
	// refused.
	MFAProvider OIDCMFA = "provider"
	// MFASealmail: sealmail's own second factor always, whatever the token
	// says.
	MFASealmail OIDCMFA = "sealmail"
)

// DefaultMFAMethods are the amr values (RFC 8176) that show MFA unless a
// provider configures others: "mfa" (multiple factors), "otp" (a one-time
// code), "hwk" (a hardware key), "sc" (a smart card). A one-factor method
// such as "pwd" or "swk" alone does not count.
func DefaultMFAMethods() []string { return []string{"mfa", "otp", "hwk", "sc"} }

// OIDCProvider is one OpenID Connect provider people may sign in with
// (Entra ID, Keycloak, Google, …): the authorization code flow with PKCE,
// state and nonce.
type OIDCProvider struct {
	// Name identifies the provider in URLs: 1–32 of a-z 0-9 -.
	Name string
	// DisplayName is shown on the sign-in page. Default: Name.
	DisplayName string
	// Issuer is the provider's issuer URL; its discovery document is at
	// Issuer/.well-known/openid-configuration. https, except for a
	// loopback address (tests, development).
	Issuer string
	// ClientID and ClientSecret are sealmail's credentials at the provider.
	ClientID     string
	ClientSecret string
	// Scopes are requested besides "openid". Default email, profile.
	Scopes []string
	// RedirectURL is the callback registered at the provider: the reader's
	// public URL and /api/v1/oidc/NAME/callback.
	RedirectURL string
	// LinkByEmail links a person the reader does not know yet to the one
	// user that has their email address, if the provider vouches for it
	// (email_verified true, or TrustEmail).
	LinkByEmail bool
	// TrustEmail takes the email claim as verified without email_verified.
	// Only for a provider whose every address its tenant controls; a
	// multi-tenant provider lets anyone claim any address.
	TrustEmail bool
	// EmailDomains, if set, limit linking and provisioning by email to
	// addresses in these domains.
	EmailDomains []string
	// Provision, if set, adds people the reader does not know as users, by
	// the rules in it.
	Provision *OIDCProvisioning
	// MFA says what makes the sign-in multi-factor. Default
	// MFAProviderOrSealmail.
	MFA OIDCMFA
	// MFAMethods are the amr values that show MFA. Default
	// [DefaultMFAMethods].
	MFAMethods []string
	// ACRValues are acr values that show MFA; they are also sent to the
	// provider as acr_values, so that it asks for them (Keycloak's
	// step-up). Empty: acr is not used.
	ACRValues []string
	// UserInfo also reads claims from the provider's userinfo endpoint, for
	// providers that put email or groups only there. The ID token's claims
	// win; amr and acr are taken only from the ID token.
	UserInfo bool
}

// OIDCProvisioning makes users of people a provider vouches for.
type OIDCProvisioning struct {
	// NameClaim holds the new user's name (lowercased; it must be a valid
	// user name and not taken). Default preferred_username.
	NameClaim string
	// AddressClaims hold further mail addresses (a string or an array of
	// strings each) besides a verified email. They are taken as the
	// provider gives them.
	AddressClaims []string
	// Roles map claims to a role; the first rule that matches wins. No
	// match: the person is refused. The rules are applied again at every
	// sign-in, so a person who leaves a group loses its role.
	Roles []OIDCRoleRule
}

// OIDCRoleRule gives Role to a person whose claim Claim is Value or (an
// array) contains it.
type OIDCRoleRule struct {
	Claim string
	Value string
	Role  Role
}

// OIDCOptions configures OIDC sign-in. The zero value has no providers.
type OIDCOptions struct {
	Providers []OIDCProvider
	// ReturnPath is where a browser goes after signing in, unless the start
	// asked for another local path. Default "/".
	ReturnPath string
	// SecondFactorPath is the page that asks for sealmail's second factor
	// after the provider's step (it posts to /api/v1/session/oidc). Default
	// ReturnPath.
	SecondFactorPath string
}

// Lifetimes and bounds of the OIDC flow.
const (
	// oidcFlowTTL is how long a started sign-in may be called back.
	oidcFlowTTL = 10 * time.Minute
	// oidcPendingTTL is how long sealmail's second factor may follow the
	// provider's step.
	oidcPendingTTL = 5 * time.Minute
	// oidcTimeout bounds each call to a provider; oidcMaxBody the bytes of
	// each answer (discovery, keys, token, userinfo).
	oidcTimeout = 15 * time.Second
	oidcMaxBody = 1 << 20
)

// Errors of OIDC sign-in.
var (
	// ErrNoOIDCProvider reports a provider name that is not configured.
	ErrNoOIDCProvider = errors.New("access: no such OIDC provider")
	// ErrOIDCUnavailable reports a provider whose discovery document or
	// keys could not be fetched.
	ErrOIDCUnavailable = errors.New("access: OIDC provider unavailable")
)

var providerNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// relyingParty is sealmail as the client of one provider. Discovery is
// lazy (at the first sign-in, and again after a failure), so that a
// provider down at start does not stop the reader.
type relyingParty struct {
	cfg    OIDCProvider
	client *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

// newOIDC checks the providers and makes their relying parties.
func newOIDC(o OIDCOptions) (map[string]*relyingParty, error) {
	out := map[string]*relyingParty{}
	var errs []error
	for i, p := range o.Providers {
		if err := p.validate(); err != nil {
			errs = append(errs, fmt.Errorf("oidc provider %d (%s): %w", i+1, p.Name, err))
			continue
		}
		if out[p.Name] != nil {
			errs = append(errs, fmt.Errorf("%w: oidc provider %q configured twice", ErrInvalid, p.Name))
			continue
		}
		if p.DisplayName == "" {
			p.DisplayName = p.Name
		}
		if p.Scopes == nil {
			p.Scopes = []string{"email", "profile"}
		}
		if p.MFA == "" {
			p.MFA = MFAProviderOrSealmail
		}
		if p.MFAMethods == nil {
			p.MFAMethods = DefaultMFAMethods()
		}
		if pr := p.Provision; pr != nil && pr.NameClaim == "" {
			c := *pr
			c.NameClaim = "preferred_username"
			p.Provision = &c
		}
		out[p.Name] = &relyingParty{cfg: p, client: newOIDCClient()}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// validate checks a provider's configuration.
func (p *OIDCProvider) validate() error {
	if !providerNameRE.MatchString(p.Name) {
		return fmt.Errorf("%w name %q: use 1–32 of a-z 0-9 -", ErrInvalid, p.Name)
	}
	if err := checkProviderURL("issuer", p.Issuer); err != nil {
		return err
	}
	if err := checkProviderURL("redirect URL", p.RedirectURL); err != nil {
		return err
	}
	if u, _ := url.Parse(p.RedirectURL); u.Path != oidcCallbackPath(p.Name) {
		return fmt.Errorf("%w redirect URL %s: its path must be %s", ErrInvalid, p.RedirectURL, oidcCallbackPath(p.Name))
	}
	if p.ClientID == "" {
		return fmt.Errorf("%w: no client id", ErrInvalid)
	}
	switch p.MFA {
	case "", MFAProviderOrSealmail, MFAProvider, MFASealmail:
	default:
		return fmt.Errorf("%w mfa %q (want provider-or-sealmail, provider or sealmail)", ErrInvalid, p.MFA)
	}
	if pr := p.Provision; pr != nil {
		if len(pr.Roles) == 0 {
			return fmt.Errorf("%w provisioning: no role rules (nobody would be provisioned)", ErrInvalid)
		}
		for _, r := range pr.Roles {
			if _, err := ParseRole(string(r.Role)); err != nil {
				return fmt.Errorf("provisioning rule %s=%s: %w", r.Claim, r.Value, err)
			}
			if r.Claim == "" || r.Value == "" {
				return fmt.Errorf("%w provisioning rule: claim and value are required", ErrInvalid)
			}
			if r.Role == RoleAuditor {
				// An auditor's scope and expiry are set by an admin.
				return fmt.Errorf("%w provisioning rule %s=%s: auditors are added by an admin (scope, expiry), not provisioned", ErrInvalid, r.Claim, r.Value)
			}
		}
	}
	return nil
}

// checkProviderURL accepts an absolute https URL, or http to a loopback
// address.
func checkProviderURL(what, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w %s %q: want an absolute https URL", ErrInvalid, what, s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("%w %s %q: want https (http only to a loopback address)", ErrInvalid, what, s)
}

func oidcCallbackPath(name string) string { return APIVersion + "/oidc/" + name + "/callback" }

// newOIDCClient is the HTTP client for a provider: bounded in time and in
// the size of each answer (go-oidc reads whole bodies).
func newOIDCClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{
		Timeout:   oidcTimeout,
		Transport: limitBody{tr},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

// limitBody cuts every response body at oidcMaxBody bytes (reading past it
// is an error).
type limitBody struct{ rt http.RoundTripper }

func (l limitBody) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: oidcMaxBody}
	return resp, nil
}

type cappedBody struct {
	io.ReadCloser
	left int64
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("oidc: provider answer longer than %d bytes", oidcMaxBody)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	return n, err
}

// discover returns the provider's metadata, fetching it if not yet done.
func (rp *relyingParty) discover(ctx context.Context) (*oidc.Provider, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.provider != nil {
		return rp.provider, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, rp.client), rp.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: discovery: %w", ErrOIDCUnavailable, rp.cfg.Name, err)
	}
	rp.provider = p
	return p, nil
}

func (rp *relyingParty) oauth2(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: rp.cfg.ClientID, ClientSecret: rp.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: rp.cfg.RedirectURL, Scopes: append([]string{oidc.ScopeOpenID}, rp.cfg.Scopes...)}
}

// oidcFlow is a started sign-in, kept under its state until the callback.
type oidcFlow struct {
	provider string
	nonce    string
	verifier string
	// binding is the SHA-256 of the binding cookie's value: the callback
	// must come from the browser that started the flow (login CSRF).
	binding    [sha256.Size]byte
	cookie     bool
	returnPath string
}

// oidcPending is a sign-in that passed the provider and waits for
// sealmail's second factor.
type oidcPending struct {
	user, provider, subject string
	returnPath              string
}

// OIDCProviderInfo is a provider as the sign-in page shows it.
type OIDCProviderInfo struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	// Start is the path that starts a browser sign-in.
	Start string `json:"start"`
}

// OIDCProviders lists the configured providers, by name.
func (s *State) OIDCProviders() []OIDCProviderInfo {
	out := []OIDCProviderInfo{}
	for _, rp := range s.oidc {
		out = append(out, OIDCProviderInfo{Name: rp.cfg.Name, DisplayName: rp.cfg.DisplayName, Start: APIVersion + "/oidc/" + rp.cfg.Name + "/start"})
	}
	slices.SortFunc(out, func(a, b OIDCProviderInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// OIDCStart is a started sign-in: send the browser to URL, with the binding
// cookie (its value Binding) set.
type OIDCStart struct {
	URL     string
	Binding string
}

// randomToken returns n random bytes in base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// localPathRE is a path on this server with an optional query, in
// characters that need no escaping in HTML or a Location header.
var localPathRE = regexp.MustCompile(`^/([A-Za-z0-9._~%=&+-][A-Za-z0-9/._~%?=&+-]*)?$`)

// localPath returns p if it is a path on this server ("/…", not "//…"),
// else def.
func localPath(p, def string) string {
	if len(p) > 1024 || !localPathRE.MatchString(p) {
		return def
	}
	return p
}

// StartOIDC starts a sign-in with provider: the authorization code flow
// with PKCE (S256), a random state and nonce. cookie asks for a browser
// session at the end; returnPath is where the browser goes then (a local
// path; else [OIDCOptions].ReturnPath).
func (s *State) StartOIDC(ctx context.Context, provider string, cookie bool, returnPath string) (OIDCStart, error) {
	rp := s.oidc[provider]
	if rp == nil {
		return OIDCStart{}, ErrNoOIDCProvider
	}
	p, err := rp.discover(ctx)
	if err != nil {
		return OIDCStart{}, err
	}
	state, nonce, binding := randomToken(32), randomToken(32), randomToken(32)
	f := oidcFlow{provider: provider, nonce: nonce, verifier: oauth2.GenerateVerifier(),
		binding: sha256.Sum256([]byte(binding)), cookie: cookie,
		returnPath: localPath(returnPath, s.oidcReturnPath())}
	if err := s.flows.put(state, f, s.now(), oidcFlowTTL); err != nil {
		return OIDCStart{}, err
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(nonce)}
	if len(rp.cfg.ACRValues) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", strings.Join(rp.cfg.ACRValues, " ")))
	}
	return OIDCStart{URL: rp.oauth2(p).AuthCodeURL(state, opts...), Binding: binding}, nil
}

func (s *State) oidcReturnPath() string { return localPath(s.opts.OIDC.ReturnPath, "/") }

func (s *State) oidcSecondFactorPath() string {
	return localPath(s.opts.OIDC.SecondFactorPath, s.oidcReturnPath())
}

// OIDCCallback is the provider's answer at the redirect URL.
type OIDCCallback struct {
	Provider string
	// State, Code and Error are the query parameters (Error and
	// ErrorDescription when the provider refused).
	State, Code, Error string
	// Binding is the binding cookie's value.
	Binding string
	Remote  string
}

// OIDCResult is a callback's outcome: a session, or (Pending not empty) a
// sign-in that needs sealmail's second factor: [State.FinishOIDC] with
// Pending before PendingExpires.
type OIDCResult struct {
	Session        NewSession
	Pending        string
	PendingExpires time.Time
	// Cookie and ReturnPath are what the start asked for.
	Cookie     bool
	ReturnPath string
}

// refusal is a callback refused for reason, with what is known of who.
type refusal struct {
	reason  Reason
	subject string
}

func (r *refusal) Error() string { return "oidc sign-in refused: " + string(r.reason) }

// CallbackOIDC completes a sign-in at the callback: it takes the flow by its
// state (once; from the browser that started it), exchanges the code with
// the PKCE verifier, verifies the ID token (signature, issuer, audience,
// authorized party, expiry, nonce, access-token hash), finds the user
// (linked subject, verified email, or provisioning) and decides MFA. Every
// refusal is [ErrSignInFailed], audited with its reason.
func (s *State) CallbackOIDC(ctx context.Context, cb OIDCCallback) (OIDCResult, error) {
	ev := Event{Action: ActionLogin, Remote: cb.Remote, Provider: cb.Provider}
	f, ok := s.flows.take(cb.State, s.now())
	bind := sha256.Sum256([]byte(cb.Binding))
	if !ok || f.provider != cb.Provider || subtle.ConstantTimeCompare(bind[:], f.binding[:]) != 1 {
		return OIDCResult{ReturnPath: s.oidcReturnPath()}, s.refuse(ctx, ev, ReasonOIDCState, nil)
	}
	res := OIDCResult{Cookie: f.cookie, ReturnPath: f.returnPath}
	rp := s.oidc[f.provider]
	if cb.Error != "" {
		return res, s.refuse(ctx, ev, ReasonOIDCProvider, nil)
	}
	p, err := rp.discover(ctx)
	if err != nil {
		return res, err
	}
	cctx := oidc.ClientContext(ctx, rp.client)
	tok, err := rp.oauth2(p).Exchange(cctx, cb.Code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		s.log.Warn("oidc code exchange", "provider", f.provider, "err", err)
		return res, s.refuse(ctx, ev, ReasonOIDCExchange, nil)
	}
	claims, subject, err := rp.verify(cctx, p, tok, f.nonce, s.now)
	if err != nil {
		s.log.Warn("oidc token", "provider", f.provider, "err", err)
		return res, s.refuse(ctx, ev, ReasonOIDCToken, nil)
	}
	mfa := rp.providerMFA(claims)
	now := s.now()
	var rec *userRecord
	var pending bool
	err = s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if rec, err = s.oidcUser(ctx, tx, rp, subject, claims, cb.Remote, now); err != nil {
			return err
		}
		ev.User, ev.Role = rec.Name, rec.Role
		switch {
		case rec.Disabled:
			return &refusal{reason: ReasonDisabled}
		case rec.expired(now):
			return &refusal{reason: ReasonExpired}
		case mfa && rp.cfg.MFA != MFASealmail:
			if err := putFailure(tx, userFailureKey(rec.Name), failureRecord{}); err != nil {
				return err
			}
			res.Session, err = s.openSession(ctx, tx, rec, MethodOIDC, ev, f.cookie, now)
			return err
		case rp.cfg.MFA == MFAProvider || !rec.hasSecondFactor():
			return &refusal{reason: ReasonOIDCMFA}
		}
		pending = true
		return nil
	})
	var ref *refusal
	if errors.As(err, &ref) {
		ev.Subject = ref.subject
		return res, s.refuse(ctx, ev, ref.reason, nil)
	}
	if err != nil {
		return res, fmt.Errorf("access: oidc sign-in: %w", err)
	}
	if pending {
		res.Pending, res.PendingExpires, res.ReturnPath = randomToken(32), now.Add(oidcPendingTTL), s.oidcSecondFactorPath()
		pd := oidcPending{user: rec.Name, provider: f.provider, subject: subject, returnPath: f.returnPath}
		if err := s.pendingOIDC.put(res.Pending, pd, now, oidcPendingTTL); err != nil {
			return OIDCResult{}, err
		}
	}
	return res, nil
}

// hasSecondFactor reports whether r has a sealmail second factor to ask
// for after an OIDC step.
func (r *userRecord) hasSecondFactor() bool {
	return r.TOTPSecret != "" || len(r.WebAuthn) > 0 || len(r.Recovery) > 0
}

// claims are an ID token's claims (with the userinfo's added).
type claims map[string]any

func (c claims) str(name string) string {
	v, _ := c[name].(string)
	return v
}

// strs returns a claim that is a string or an array of strings.
func (c claims) strs(name string) []string {
	switch v := c[name].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// truth reports whether a claim is true (or "true", as some providers
// send it).
func (c claims) truth(name string) bool {
	switch v := c[name].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// protocolClaims are never taken from the userinfo endpoint: they describe
// the sign-in, which only the ID token vouches for.
var protocolClaims = []string{"iss", "sub", "aud", "azp", "exp", "iat", "nbf", "nonce", "amr", "acr", "auth_time", "at_hash", "c_hash", "sid"}

// verify checks the token answer's ID token and returns its claims (with
// the userinfo's, if configured) and its subject.
func (rp *relyingParty) verify(ctx context.Context, p *oidc.Provider, tok *oauth2.Token, nonce string, now func() time.Time) (claims, string, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, "", errors.New("no id_token in the token answer")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: rp.cfg.ClientID, Now: now}).Verify(ctx, raw)
	if err != nil {
		return nil, "", err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, "", errors.New("nonce differs from the one sent")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, "", err
		}
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		return nil, "", err
	}
	// OIDC Core §3.1.3.7: with several audiences, azp must be present; if
	// present, it must be this client.
	if azp, ok := c["azp"]; ok && azp != rp.cfg.ClientID || !ok && len(idt.Audience) > 1 {
		return nil, "", fmt.Errorf("authorized party %v is not this client", azp)
	}
	if idt.Subject == "" || len(idt.Subject) > 255 {
		return nil, "", errors.New("no or an overlong subject")
	}
	if rp.cfg.UserInfo {
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, "", fmt.Errorf("userinfo: %w", err)
		}
		// OIDC Core §5.3.4: the userinfo's sub must be the ID token's.
		if ui.Subject != idt.Subject {
			return nil, "", errors.New("userinfo is about another subject")
		}
		var uc claims
		if err := ui.Claims(&uc); err != nil {
			return nil, "", fmt.Errorf("userinfo: %w", err)
		}
		for k, v := range uc {
			if _, have := c[k]; !have && !slices.Contains(protocolClaims, k) {
				c[k] = v
			}
		}
	}
	return c, idt.Subject, nil
}

// providerMFA reports whether the ID token's claims show MFA.
func (rp *relyingParty) providerMFA(c claims) bool {
	for _, m := range c.strs("amr") {
		if slices.Contains(rp.cfg.MFAMethods, m) {
			return true
		}
	}
	acr := c.str("acr")
	return acr != "" && slices.Contains(rp.cfg.ACRValues, acr)
}

// verifiedEmail returns the email claim, lowercased, if the provider
// vouches for it and it is in an allowed domain; else "".
func (rp *relyingParty) verifiedEmail(c claims) string {
	email := strings.ToLower(c.str("email"))
	if email == "" || !rp.cfg.TrustEmail && !c.truth("email_verified") {
		return ""
	}
	addrs, err := normalizeAddresses([]string{email})
	if err != nil {
		return ""
	}
	if d := rp.cfg.EmailDomains; len(d) > 0 {
		_, domain, _ := strings.Cut(addrs[0], "@")
		if !slices.ContainsFunc(d, func(x string) bool { return strings.EqualFold(x, domain) }) {
			return ""
		}
	}
	return addrs[0]
}

// provisioning returns the role and addresses the rules give the person
// with claims c, or false if no rule matches (or a user would have no
// address).
func (rp *relyingParty) provisioning(c claims) (Role, []string, bool) {
	pr := rp.cfg.Provision
	var role Role
	for _, r := range pr.Roles {
		if slices.Contains(c.strs(r.Claim), r.Value) {
			role = r.Role
			break
		}
	}
	if role == "" {
		return "", nil, false
	}
	var raw []string
	if e := rp.verifiedEmail(c); e != "" {
		raw = append(raw, e)
	}
	for _, name := range pr.AddressClaims {
		raw = append(raw, c.strs(name)...)
	}
	var addrs []string
	for _, a := range raw {
		if n, err := normalizeAddresses([]string{a}); err == nil && !slices.Contains(addrs, n[0]) {
			addrs = append(addrs, n[0])
		}
	}
	if role == RoleUser && len(addrs) == 0 {
		return "", nil, false
	}
	return role, addrs, true
}

// oidcUser finds (or links, or provisions) the user of subject at rp, in
// tx. A refusal is a *refusal.
func (s *State) oidcUser(ctx context.Context, tx *bolt.Tx, rp *relyingParty, subject string, c claims, remote string, now time.Time) (*userRecord, error) {
	iss := rp.cfg.Issuer
	links := tx.Bucket(bucketOIDCLinks)
	if name := links.Get(linkKey(iss, subject)); name != nil {
		rec, err := getUser(tx, string(name))
		if err != nil {
			return nil, err
		}
		if rec.ProvisionedBy != iss || rp.cfg.Provision == nil {
			return rec, nil
		}
		// A provisioned user follows the provider's claims.
		role, addrs, ok := rp.provisioning(c)
		if !ok {
			return nil, &refusal{reason: ReasonOIDCUnknown, subject: subject}
		}
		if role != rec.Role || !slices.Equal(addrs, rec.Addresses) {
			rec.Role, rec.Addresses, rec.Changed = role, addrs, now
			if err := putUser(tx, rec); err != nil {
				return nil, err
			}
			if err := s.audit(ctx, tx, Event{Action: ActionUserUpdate, Outcome: OutcomeOK, User: rec.Name, Role: role,
				Remote: remote, Target: rec.Name, Provider: rp.cfg.Name, Subject: subject}); err != nil {
				return nil, err
			}
		}
		return rec, nil
	}
	link := func(rec *userRecord) error {
		rec.OIDC = append(rec.OIDC, OIDCLink{Issuer: iss, Subject: subject, Linked: now})
		rec.Changed = now
		if err := putUser(tx, rec); err != nil {
			return err
		}
		if err := links.Put(linkKey(iss, subject), []byte(rec.Name)); err != nil {
			return err
		}
		return s.audit(ctx, tx, Event{Action: ActionOIDCLink, Outcome: OutcomeOK, User: rec.Name, Role: rec.Role,
			Remote: remote, Target: rec.Name, Provider: rp.cfg.Name, Subject: subject})
	}
	if email := rp.verifiedEmail(c); email != "" && rp.cfg.LinkByEmail {
		var found []*userRecord
		err := tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			rec, err := decodeUser(v)
			if err != nil {
				return fmt.Errorf("user %q: %w", k, err)
			}
			if slices.Contains(rec.Addresses, email) {
				found = append(found, rec)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		// Exactly one user, not linked to another subject of this issuer
		// (that would be a second account claiming the same address).
		if len(found) == 1 && !slices.ContainsFunc(found[0].OIDC, func(l OIDCLink) bool { return l.Issuer == iss }) {
			return found[0], link(found[0])
		}
	}
	if rp.cfg.Provision == nil {
		return nil, &refusal{reason: ReasonOIDCUnknown, subject: subject}
	}
	role, addrs, ok := rp.provisioning(c)
	name := strings.ToLower(c.str(rp.cfg.Provision.NameClaim))
	if !ok || validName(name) != nil || tx.Bucket(bucketUsers).Get([]byte(name)) != nil {
		return nil, &refusal{reason: ReasonOIDCUnknown, subject: subject}
	}
	rec := &userRecord{Name: name, Role: role, Addresses: addrs, ProvisionedBy: iss, Created: now, Changed: now}
	if err := putUser(tx, rec); err != nil {
		return nil, err
	}
	if err := s.audit(ctx, tx, Event{Action: ActionUserAdd, Outcome: OutcomeOK, Remote: remote, Target: name,
		Provider: rp.cfg.Name, Subject: subject}); err != nil {
		return nil, err
	}
	return rec, link(rec)
}

// OIDCSecondFactor is sealmail's second factor after an OIDC step: one of
// a TOTP code, a recovery code or a WebAuthn assertion.
type OIDCSecondFactor struct {
	// Pending is [OIDCResult].Pending.
	Pending          string
	TOTP             string
	RecoveryCode     string
	WebAuthnCeremony string
	WebAuthn         json.RawMessage
	Remote           string
	Cookie           bool
}

// FinishOIDC completes a sign-in that passed the provider with sealmail's
// second factor. A pending sign-in works once: a wrong code ends it (the
// person signs in at the provider again), and counts against the user's
// and the address's failures as a password sign-in's would.
func (s *State) FinishOIDC(ctx context.Context, req OIDCSecondFactor) (NewSession, error) {
	now := s.now()
	ev := Event{Action: ActionLogin, Remote: req.Remote}
	pd, ok := s.pendingOIDC.take(req.Pending, now)
	if !ok {
		return NewSession{}, s.refuse(ctx, ev, ReasonOIDCState, nil)
	}
	ev.Provider = pd.provider
	ukey, akey := userFailureKey(pd.user), addressFailureKey(req.Remote)
	var ns NewSession
	var reason Reason
	var lockouts []Event
	var refused *ThrottledError
	err := s.db.Update(func(tx *bolt.Tx) error {
		cur, err := getUser(tx, pd.user)
		if err != nil {
			return err
		}
		ev.User, ev.Role = cur.Name, cur.Role
		if refused, err = countAttempt(tx, s.opts.Lockout, ukey, akey, now); err != nil || refused != nil {
			return err
		}
		switch {
		case cur.Disabled:
			reason = ReasonDisabled
		case cur.expired(now):
			reason = ReasonExpired
		}
		if reason != "" {
			lockouts, err = s.confirmFailure(tx, ukey, akey, now, ev)
			return err
		}
		lr := LoginRequest{TOTP: req.TOTP, RecoveryCode: req.RecoveryCode, WebAuthnCeremony: req.WebAuthnCeremony,
			WebAuthn: req.WebAuthn, Remote: req.Remote, Cookie: req.Cookie}
		ns, reason, lockouts, err = s.secondStep(ctx, tx, cur, lr, ev, ukey, akey, now, MethodOIDC)
		return err
	})
	if err != nil {
		return NewSession{}, fmt.Errorf("access: oidc sign-in: %w", err)
	}
	if refused != nil {
		s.auditRefusal(ctx, refused.event(ev))
		return NewSession{}, refused
	}
	if reason != "" {
		return NewSession{}, s.refuse(ctx, ev, reason, lockouts)
	}
	return ns, nil
}

// OIDCLink is a user's link to a subject at an issuer, as stored in the
// user value (and, reversed, in the oidc_links bucket).
type OIDCLink struct {
	Issuer  string    `json:"issuer"`
	Subject string    `json:"subject"`
	Linked  time.Time `json:"linked"`
}

// linkKey is the oidc_links key of a subject at an issuer.
func linkKey(issuer, subject string) []byte {
	return []byte(issuer + "\x00" + subject)
}

// LinkOIDC links user to subject at issuer, so that signing in there as
// subject signs in as user. It refuses a subject linked to someone already.
func (s *State) LinkOIDC(ctx context.Context, by Actor, user, issuer, subject string) error {
	if err := checkProviderURL("issuer", issuer); err != nil {
		return err
	}
	if subject == "" || len(subject) > 255 || strings.ContainsRune(subject, 0) {
		return fmt.Errorf("%w subject: 1–255 bytes", ErrInvalid)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		rec, err := getUser(tx, user)
		if err != nil {
			return err
		}
		links := tx.Bucket(bucketOIDCLinks)
		if other := links.Get(linkKey(issuer, subject)); other != nil {
			return fmt.Errorf("%w: that subject is linked to %s", ErrUserExists, other)
		}
		now := s.now()
		rec.OIDC = append(rec.OIDC, OIDCLink{Issuer: issuer, Subject: subject, Linked: now})
		rec.Changed = now
		if err := putUser(tx, rec); err != nil {
			return err
		}
		if err := links.Put(linkKey(issuer, subject), []byte(user)); err != nil {
			return err
		}
		return s.audit(ctx, tx, Event{Action: ActionOIDCLink, Outcome: OutcomeOK, User: by.User, Role: by.Role, Remote: by.Remote,
			Target: user, Provider: issuer, Subject: subject})
	})
	if err != nil {
		return fmt.Errorf("access: link %s to %s: %w", user, issuer, err)
	}
	return nil
}

// UnlinkOIDC removes user's links to subjects at issuer.
func (s *State) UnlinkOIDC(ctx context.Context, by Actor, user, issuer string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		rec, err := getUser(tx, user)
		if err != nil {
			return err
		}
		keep := rec.OIDC[:0]
		var gone []OIDCLink
		for _, l := range rec.OIDC {
			if l.Issuer == issuer {
				gone = append(gone, l)
			} else {
				keep = append(keep, l)
			}
		}
		if len(gone) == 0 {
			return fmt.Errorf("%w: %s has no link to %s", ErrInvalid, user, issuer)
		}
		rec.OIDC, rec.Changed = keep, s.now()
		if err := putUser(tx, rec); err != nil {
			return err
		}
		for _, l := range gone {
			if err := tx.Bucket(bucketOIDCLinks).Delete(linkKey(l.Issuer, l.Subject)); err != nil {
				return err
			}
			if err := s.audit(ctx, tx, Event{Action: ActionOIDCUnlink, Outcome: OutcomeOK, User: by.User, Role: by.Role,
				Remote: by.Remote, Target: user, Provider: issuer, Subject: l.Subject}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("access: unlink %s from %s: %w", user, issuer, err)
	}
	return nil
}
