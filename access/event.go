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
)

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
)

// Sign-in methods, for [Event].Method and [Session].Method.
const (
	MethodTOTP     = "password+totp"
	MethodRecovery = "password+recovery-code"
)

// Event is one audited fact. It has no field for a password, a TOTP or
// recovery code or a token: those never leave this package.
type Event struct {
	Time    time.Time
	Action  Action
	Outcome Outcome
	// User is who signed in or tried to, or who made a change. For a
	// sign-in under a name that is not a user it is empty: people type
	// passwords into the user field, and the audit log is kept for years.
	User string
	// Role is User's role, if User is a user.
	Role Role
	// Remote is the client's address (IP, no port) or, for the command line,
	// who ran it ("cli:root(uid 0)").
	Remote string
	// Target is the user a change applied to, or for a lockout of a client
	// address, that address.
	Target string
	// Session is the id (not the token) of the session created, ended or
	// revoked.
	Session string
	// Method is the sign-in method of a successful login.
	Method string
	// Reason says why a login failed.
	Reason Reason
	// RetryAfter is, for a throttled or locked attempt or a lockout, how long
	// attempts are refused.
	RetryAfter time.Duration
}

// Actor is who makes a change: a signed-in user or the command line.
type Actor struct {
	// User is the acting user's name; empty for the command line.
	User string
	Role Role
	// Remote is the client address, or "cli:NAME(uid N)" for the command line.
	Remote string
}
