// SPDX-License-Identifier: Apache-2.0

package access

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrUnsupportedVersion reports an access.db written by a newer sealmail
	// (or not by sealmail at all).
	ErrUnsupportedVersion = errors.New("access: unsupported access.db version")
	// ErrUserExists reports an add of a name that is taken.
	ErrUserExists = errors.New("access: user exists")
	// ErrNoUser reports a user name that is not in the state.
	ErrNoUser = errors.New("access: no such user")
	// ErrSignInFailed is the one answer to every wrong or missing factor, an
	// unknown or disabled user and an expired account, so that a client
	// learns nothing about which it was. The audit event says which
	// ([Event].Reason).
	ErrSignInFailed = errors.New("access: sign-in failed")
	// ErrNoSession reports a missing, malformed, unknown, expired or revoked
	// session token.
	ErrNoSession = errors.New("access: no valid session")
	// ErrNoSuchSession reports a session id that is not there (or not the
	// caller's).
	ErrNoSuchSession = errors.New("access: no such session")
	// ErrLastAdmin refuses to disable the last enabled admin: nobody could
	// manage users any more.
	ErrLastAdmin = errors.New("access: that is the last enabled admin")
	// ErrInvalid reports a malformed user name, role, address, password or
	// option.
	ErrInvalid = errors.New("access: invalid")
)

// ThrottledError refuses a sign-in attempt that came too soon after failed
// ones, or while the user or client address is locked out. The attempt was
// not checked.
type ThrottledError struct {
	// RetryAfter is how long until an attempt will be checked again.
	RetryAfter time.Duration
	// Locked is true during a lockout, false during backoff.
	Locked bool
}

func (e *ThrottledError) Error() string {
	what := "too many failed sign-ins"
	if e.Locked {
		what = "locked out after too many failed sign-ins"
	}
	return fmt.Sprintf("access: %s; try again in %s", what, e.RetryAfter.Round(time.Second))
}
