// SPDX-License-Identifier: Apache-2.0

package access

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// LoginRequest is one sign-in attempt: a password and either a TOTP code, a
// recovery code or a WebAuthn assertion.
type LoginRequest struct {
	User         string
	Password     string
	TOTP         string
	RecoveryCode string
	// WebAuthnCeremony is the id [State.BeginWebAuthnLogin] returned;
	// WebAuthn the authenticator's answer (PublicKeyCredential JSON).
	WebAuthnCeremony string
	WebAuthn         json.RawMessage
	// Remote is the client's address (an IP, no port): failures are counted
	// against it as well as against User.
	Remote string
	// Cookie makes a browser session (it gets a CSRF token).
	Cookie bool
}

// NewSession is a session just signed in. Token is its bearer token, shown
// once: the state keeps only its hash.
type NewSession struct {
	Token   string
	Session Session
	// CSRF is the CSRF token of a cookie session.
	CSRF string
}

// Login checks req and opens a session. It returns [ErrSignInFailed] for
// every wrong factor, unknown, disabled or expired user alike, and a
// [*ThrottledError] (without checking anything) for an attempt during
// backoff or lockout.
func (s *State) Login(ctx context.Context, req LoginRequest) (NewSession, error) {
	// Step 1: throttle, and count the attempt as a failure before checking
	// it, so that concurrent guesses cannot slip past the backoff.
	now := s.now()
	lo := s.opts.Lockout
	ukey, akey := userFailureKey(req.User), addressFailureKey(req.Remote)
	var rec *userRecord
	var refused *ThrottledError
	err := s.db.Update(func(tx *bolt.Tx) error {
		if s.pruneDue(now) {
			if err := lo.pruneFailures(tx, now); err != nil {
				return err
			}
			if err := s.pruneSessions(tx, now); err != nil {
				return err
			}
		}
		if u, err := getUser(tx, req.User); err == nil {
			rec = u
		} else if !errors.Is(err, ErrNoUser) {
			return err
		}
		var err error
		refused, err = countAttempt(tx, lo, ukey, akey, now)
		return err
	})
	if err != nil {
		return NewSession{}, fmt.Errorf("access: login: %w", err)
	}
	ev := Event{Action: ActionLogin, Remote: req.Remote}
	if rec != nil {
		ev.User, ev.Role = rec.Name, rec.Role
	}
	if refused != nil {
		s.auditRefusal(ctx, refused.event(ev))
		return NewSession{}, refused
	}

	// Step 2: the password, outside any transaction (it takes a while). An
	// unknown user is checked against a dummy hash to take as long.
	// A user provisioned by OIDC has no password: checked against the
	// dummy hash too, and refused.
	h := s.dummyHash()
	hasPassword := rec != nil && rec.Password.Alg != ""
	if hasPassword {
		h = rec.Password
	}
	pwOK, err := s.checkPassword(ctx, req.Password, h)
	if err != nil {
		return NewSession{}, fmt.Errorf("access: login: %w", err)
	}
	pwOK = pwOK && hasPassword

	// Step 3: the second factor and the session, or the failure.
	now = s.now()
	var ns NewSession
	var reason Reason
	var lockouts []Event
	err = s.db.Update(func(tx *bolt.Tx) error {
		reason = ""
		cur, err := getUser(tx, req.User)
		switch {
		case errors.Is(err, ErrNoUser) || rec == nil:
			reason = ReasonUnknownUser
		case err != nil:
			return err
		case !pwOK || !bytes.Equal(cur.Password.Hash, rec.Password.Hash):
			// (a reset between the steps changed the password)
			reason = ReasonPassword
		case cur.Disabled:
			reason = ReasonDisabled
		case cur.expired(now):
			reason = ReasonExpired
		}
		if reason != "" {
			lockouts, err = s.confirmFailure(tx, ukey, akey, now, ev)
			return err
		}
		ns, reason, lockouts, err = s.secondStep(ctx, tx, cur, req, ev, ukey, akey, now, "")
		return err
	})
	if err != nil {
		return NewSession{}, fmt.Errorf("access: login: %w", err)
	}
	if reason != "" {
		return NewSession{}, s.refuse(ctx, ev, reason, lockouts)
	}
	return ns, nil
}

// refuse audits a failed sign-in ev for reason and the lockouts it began,
// and returns [ErrSignInFailed].
func (s *State) refuse(ctx context.Context, ev Event, reason Reason, lockouts []Event) error {
	ev.Outcome, ev.Reason = OutcomeFail, reason
	s.auditRefusal(ctx, ev)
	for _, l := range lockouts {
		s.auditRefusal(ctx, l)
	}
	return ErrSignInFailed
}

// countAttempt refuses an attempt against the user name's or the
// address's counter during backoff or lockout, and otherwise counts it as a
// failure before it is checked, so that concurrent guesses cannot slip past
// the backoff.
func countAttempt(tx *bolt.Tx, lo LockoutOptions, ukey, akey []byte, now time.Time) (*ThrottledError, error) {
	uf, af := lo.current(getFailure(tx, ukey), now), lo.current(getFailure(tx, akey), now)
	refused := lo.refusal(uf, now)
	if r := lo.refusal(af, now); r != nil && (refused == nil || r.RetryAfter > refused.RetryAfter) {
		refused = r
	}
	if refused != nil {
		return refused, nil
	}
	uf.Count++
	uf.Last = now
	af.Count++
	af.Last = now
	if err := putFailure(tx, ukey, uf); err != nil {
		return nil, err
	}
	return nil, putFailure(tx, akey, af)
}

// event is ev as the audit event of the refused attempt.
func (e *ThrottledError) event(ev Event) Event {
	ev.Outcome, ev.RetryAfter = OutcomeThrottled, e.RetryAfter
	if e.Locked {
		ev.Outcome = OutcomeLocked
	}
	return ev
}

// secondStep checks req's second factor against cur, whose first factor
// (password, or the OIDC provider) passed, and opens the session, or
// confirms the failure. prefix replaces the method's "password" (for
// OIDC).
func (s *State) secondStep(ctx context.Context, tx *bolt.Tx, cur *userRecord, req LoginRequest, ev Event, ukey, akey []byte, now time.Time, prefix string) (NewSession, Reason, []Event, error) {
	method, reason, err := s.secondFactor(tx, cur, req, now)
	if err != nil {
		return NewSession{}, "", nil, err
	}
	if reason != "" {
		lockouts, err := s.confirmFailure(tx, ukey, akey, now, ev)
		return NewSession{}, reason, lockouts, err
	}
	if prefix != "" {
		method = prefix + method[strings.IndexByte(method, '+'):]
	}
	// Success: the user's failures are forgiven; the address's counter
	// takes back only this attempt (an attacker with one account must not
	// reset it).
	if err := putFailure(tx, ukey, failureRecord{}); err != nil {
		return NewSession{}, "", nil, err
	}
	af := getFailure(tx, akey)
	af.Count--
	if err := putFailure(tx, akey, af); err != nil {
		return NewSession{}, "", nil, err
	}
	ns, err := s.openSession(ctx, tx, cur, method, ev, req.Cookie, now)
	return ns, "", nil, err
}

// openSession writes a new session of rec signed in by method and audits
// ev as its successful sign-in.
func (s *State) openSession(ctx context.Context, tx *bolt.Tx, rec *userRecord, method string, ev Event, cookie bool, now time.Time) (NewSession, error) {
	token := newToken()
	b, _ := ParseToken(token)
	sr := &sessionRecord{ID: newSessionID(), User: rec.Name, Role: rec.Role, Created: now, LastSeen: now,
		Expires: now.Add(s.opts.Sessions.Absolute), Remote: ev.Remote, Method: method, Cookie: cookie}
	if !rec.Expires.IsZero() && rec.Expires.Before(sr.Expires) {
		sr.Expires = rec.Expires
	}
	if err := putSession(tx, tokenKey(b), sr); err != nil {
		return NewSession{}, err
	}
	ns := NewSession{Token: token, Session: sr.public(s.opts.Sessions)}
	if cookie {
		ns.CSRF = csrfToken(b)
	}
	ev.Outcome, ev.Session, ev.Method = OutcomeOK, sr.ID, method
	ev.User, ev.Role = rec.Name, rec.Role
	return ns, s.audit(ctx, tx, ev)
}

// secondFactor checks req's TOTP or recovery code against rec and records
// its use. It returns the sign-in method, or the reason it failed.
func (s *State) secondFactor(tx *bolt.Tx, rec *userRecord, req LoginRequest, now time.Time) (string, Reason, error) {
	if rec.Enrol {
		method, reason := enrolmentFactor(req)
		return method, reason, nil
	}
	switch {
	case req.TOTP != "":
		var last uint64
		if v := tx.Bucket(bucketSteps).Get([]byte(rec.Name)); len(v) == 8 {
			last = binary.BigEndian.Uint64(v)
		}
		step, reason := checkTOTP(rec.TOTPSecret, req.TOTP, now, last)
		if reason != "" {
			return "", reason, nil
		}
		if err := tx.Bucket(bucketSteps).Put([]byte(rec.Name), binary.BigEndian.AppendUint64(nil, step)); err != nil {
			return "", "", err
		}
		return MethodTOTP, "", nil
	case req.WebAuthnCeremony != "":
		reason, err := s.checkWebAuthn(tx, rec, req.WebAuthnCeremony, req.WebAuthn, now)
		if reason != "" || err != nil {
			return "", reason, err
		}
		return MethodWebAuthn, "", nil
	case req.RecoveryCode != "":
		rest, ok := useRecovery(rec.RecoverySalt, rec.Recovery, req.RecoveryCode)
		if !ok {
			return "", ReasonRecovery, nil
		}
		rec.Recovery = rest
		rec.Changed = now
		if err := putUser(tx, rec); err != nil {
			return "", "", err
		}
		return MethodRecovery, "", nil
	}
	return "", ReasonNoSecondFactor, nil
}

// confirmFailure locks out the user name and the address if this failure
// reached their thresholds, returning the lockout events.
func (s *State) confirmFailure(tx *bolt.Tx, ukey, akey []byte, now time.Time, ev Event) ([]Event, error) {
	lo := s.opts.Lockout
	var out []Event
	for _, c := range []struct {
		key       []byte
		threshold int
		target    string
	}{{ukey, lo.UserThreshold, ""}, {akey, lo.AddressThreshold, ev.Remote}} {
		f := getFailure(tx, c.key)
		if f.Count < c.threshold || now.Before(f.LockedUntil) {
			continue
		}
		f.LockedUntil = now.Add(lo.Period)
		if err := putFailure(tx, c.key, f); err != nil {
			return nil, err
		}
		l := ev
		l.Action, l.Outcome, l.Target, l.RetryAfter = ActionLockout, OutcomeLocked, c.target, lo.Period
		if c.target != "" {
			// An address lockout is about the address, whoever tried.
			l.User, l.Role = "", ""
		}
		out = append(out, l)
	}
	return out, nil
}

// auditRefusal reports an event whose effect does not depend on being
// audited (a refusal stands either way): a failing callback is logged.
func (s *State) auditRefusal(ctx context.Context, ev Event) {
	var err error
	if s.opts.AuditOutbox {
		err = s.db.Update(func(tx *bolt.Tx) error { return s.audit(ctx, tx, ev) })
	} else {
		err = s.audit(ctx, nil, ev)
	}
	if err != nil {
		s.log.Error("audit", "action", string(ev.Action), "outcome", string(ev.Outcome), "err", err)
	}
}

// pruneDue reports whether ended sessions and stale failure counters should
// be pruned now (at most once a minute).
func (s *State) pruneDue(now time.Time) bool {
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	if now.Sub(s.lastPrune) < time.Minute && !now.Before(s.lastPrune) {
		return false
	}
	s.lastPrune = now
	return true
}
