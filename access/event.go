// SPDX-License-Identifier: Apache-2.0

package access

import "time"

// Action names what an [Event] reports.
type Action string

// The actions. A later wiring maps them onto the receiver's audit log.
const (
	// ActionLogin is a sign-in attempt (outcome ok, fail, throttled or locked).
	ActionLogin Action = "login"
	// ActionLockout is a user or a client address reaching the failure
	// threshold: further attempts are refused for the lockout period.
	ActionLockout Action = "lockout"
	// ActionLogout is a sign-out of the session in use.
	ActionLogout Action = "logout"
	// ActionSessionRevoke is a revocation of a session by its id.
	ActionSessionRevoke Action = "session.revoke"
	// ActionUserAdd, ActionUserDisable, ActionUserEnable and ActionUserReset
	// are user changes; Target names the user changed.
	ActionUserAdd     Action = "user.add"
	ActionUserDisable Action = "user.disable"
	ActionUserEnable  Action = "user.enable"
	ActionUserReset   Action = "user.reset"
	// ActionUserUpdate is a change of a user's role or addresses, made when
	// an OIDC-provisioned user signs in with other claims than before.
	ActionUserUpdate Action = "user.update"
	// ActionOIDCLink and ActionOIDCUnlink link a user to an OIDC subject or
	// remove the link; Target names the user, Provider the provider.
	ActionOIDCLink   Action = "oidc.link"
	ActionOIDCUnlink Action = "oidc.unlink"
	// The four-eyes transitions ([FourEyes]); Approval says which request.
	ActionApprovalRequest Action = "approval.request"
	ActionApprovalApprove Action = "approval.approve"
	ActionApprovalDeny    Action = "approval.deny"
	ActionApprovalExpire  Action = "approval.expire"
	// ActionApprovalExecute is the outcome of executing an approved request:
	// ok (executed) or fail (failed).
	ActionApprovalExecute Action = "approval.execute"
)

// Actions lists every action, in the order above (with the WebAuthn ones).
func Actions() []Action {
	return []Action{ActionLogin, ActionLockout, ActionLogout, ActionSessionRevoke, ActionUserAdd, ActionUserDisable,
		ActionUserEnable, ActionUserReset, ActionUserUpdate, ActionOIDCLink, ActionOIDCUnlink, ActionWebAuthnAdd,
		ActionWebAuthnRemove, ActionApprovalRequest, ActionApprovalApprove, ActionApprovalDeny, ActionApprovalExpire,
		ActionApprovalExecute, ActionEnrol}
}

// Outcome is how an action ended.
type Outcome string

// The outcomes.
const (
	OutcomeOK   Outcome = "ok"
	OutcomeFail Outcome = "fail"
	// OutcomeThrottled: refused unchecked, too soon after failed attempts.
	OutcomeThrottled Outcome = "throttled"
	// OutcomeLocked: refused unchecked during a lockout, or (for
	// ActionLockout) a lockout began.
	OutcomeLocked Outcome = "locked"
)

// Reason says why a sign-in failed. The client is told only "sign-in
// failed"; the audit log says which factor it was.
type Reason string

// The failure reasons.
const (
	ReasonUnknownUser Reason = "unknown-user"
	ReasonDisabled    Reason = "disabled"
	ReasonExpired     Reason = "expired"
	ReasonPassword    Reason = "password"
	ReasonTOTP        Reason = "totp"
	// ReasonTOTPReplay: the code was right but its time step was used already.
	ReasonTOTPReplay Reason = "totp-replay"
	ReasonRecovery   Reason = "recovery-code"
	// ReasonNoSecondFactor: neither a TOTP code nor a recovery code was sent.
	ReasonNoSecondFactor Reason = "no-second-factor"
	// ReasonOIDCState: the callback's state is unknown, expired, used
	// already or was started by another browser (its binding cookie differs).
	ReasonOIDCState Reason = "oidc-state"
	// ReasonOIDCProvider: the provider answered the callback with an error
	// (the person cancelled, or the provider refused them).
	ReasonOIDCProvider Reason = "oidc-provider-error"
	// ReasonOIDCExchange: the provider refused the code (replayed, expired,
	// wrong PKCE verifier) or could not be reached.
	ReasonOIDCExchange Reason = "oidc-exchange"
	// ReasonOIDCToken: the ID token failed verification (signature, issuer,
	// audience, authorized party, expiry, nonce, access-token hash).
	ReasonOIDCToken Reason = "oidc-token"
	// ReasonOIDCUnknown: no user is linked to the subject, none could be
	// linked by a verified email, and provisioning is off or no rule
	// matched.
	ReasonOIDCUnknown Reason = "oidc-unknown-user"
	// ReasonOIDCMFA: the ID token shows no MFA and the provider's MFA is
	// required (or the user has no sealmail second factor to ask for).
	ReasonOIDCMFA Reason = "oidc-no-mfa"
)

// Sign-in methods, for [Event].Method and [Session].Method.
const (
	MethodTOTP     = "password+totp"
	MethodRecovery = "password+recovery-code"
	// MethodOIDC is an OIDC sign-in whose ID token showed MFA. After an
	// OIDC sign-in without it, sealmail's own second factor completes it:
	// "oidc+totp", "oidc+webauthn" or "oidc+recovery-code".
	MethodOIDC = "oidc"
)

// Event is one audited fact. It has no field for a password, a TOTP or
// recovery code or a token: those never leave this package. Its JSON form
// is the Fields of its audit entry ([Event.AuditEntry]) and the outbox's
// value (docs/format.md).
type Event struct {
	Time    time.Time `json:"at"`
	Action  Action    `json:"action"`
	Outcome Outcome   `json:"outcome"`
	// User is who signed in or tried to, or who made a change. For a
	// sign-in under a name that is not a user it is empty: people type
	// passwords into the user field, and the audit log is kept for years.
	User string `json:"user,omitempty"`
	// Role is User's role, if User is a user.
	Role Role `json:"role,omitempty"`
	// Remote is the client's address (IP, no port) or, for the command line,
	// who ran it ("cli:root(uid 0)").
	Remote string `json:"remote,omitempty"`
	// Target is the user a change applied to, or for a lockout of a client
	// address, that address.
	Target string `json:"target,omitempty"`
	// Session is the id (not the token) of the session created, ended or
	// revoked.
	Session string `json:"session,omitempty"`
	// Method is the sign-in method of a successful login.
	Method string `json:"method,omitempty"`
	// Reason says why a login failed.
	Reason Reason `json:"reason,omitempty"`
	// RetryAfter is, for a throttled or locked attempt or a lockout, how long
	// attempts are refused.
	RetryAfter time.Duration `json:"retry_after_ns,omitempty"`
	// Provider is the OIDC provider's name of an OIDC sign-in or link (for a
	// link an admin made, the issuer URL); Subject the provider's subject of
	// a refused sign-in (so an admin can link it) or of a link.
	Provider string `json:"provider,omitempty"`
	Subject  string `json:"subject,omitempty"`
	// Approval is the four-eyes request an approval.* event is about.
	Approval *ApprovalFacts `json:"approval,omitempty"`
}

// ApprovalFacts is what an audit event records of a four-eyes request: not
// its payload (which may be large), but the payload's SHA-256.
type ApprovalFacts struct {
	ID        uint64         `json:"id"`
	Action    ApprovalAction `json:"action"`
	State     ApprovalState  `json:"state"`
	Requester string         `json:"requester"`
	// Comment is the request's, the approval's or the denial's reason.
	Comment       string `json:"comment,omitempty"`
	PayloadSHA256 string `json:"payload_sha256"`
	// Error is why execution failed.
	Error string `json:"error,omitempty"`
}

// Actor is who makes a change: a signed-in user or the command line.
type Actor struct {
	// User is the acting user's name; empty for the command line.
	User string
	Role Role
	// Remote is the client address, or "cli:NAME(uid N)" for the command line.
	Remote string
}
