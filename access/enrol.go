// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pquerna/otp"
	bolt "go.etcd.io/bbolt"
)

// Enrolment: a user added or reset with [NewUser].Enrol has a password but
// no second factor. Their sign-in with the password alone opens an
// enrolment session (method [MethodEnrol]), which admits nothing but the
// enrolment itself and signing out: [State.BeginEnrolment] gives it a fresh
// TOTP secret, [State.FinishEnrolment] takes a code of that secret, stores
// it as the user's with new recovery codes, and makes the session a full
// one. So an admin who hands over the password never learns the second
// factor (docs/access.md, "Enrolment").

// MethodEnrol is the sign-in method of an enrolment session.
const MethodEnrol = "password (enrolment)"

// ActionEnrol is a user setting up their second factor.
const ActionEnrol Action = "user.enrol"

// ErrWrongCode refuses an enrolment code that does not belong to the secret
// being set up.
var ErrWrongCode = errors.New("access: wrong code")

// ErrNotEnrolling reports an enrolment call from a session that is not an
// enrolment session, or for a user who has enrolled meanwhile.
var ErrNotEnrolling = errors.New("access: not an enrolment session")

// Enrolling reports whether p's session is an enrolment session.
func (p Principal) Enrolling() bool { return p.Session.Method == MethodEnrol }

// enrolmentFactor decides a sign-in of a user who has not enrolled: the
// password alone opens an enrolment session; any second factor fails, since
// the user has none.
func enrolmentFactor(req LoginRequest) (string, Reason) {
	switch {
	case req.TOTP != "":
		return "", ReasonTOTP
	case req.RecoveryCode != "":
		return "", ReasonRecovery
	case req.WebAuthnCeremony != "":
		return "", ReasonWebAuthn
	}
	return MethodEnrol, ""
}

// Enrolment is the TOTP secret an enrolment session is setting up, for an
// authenticator app: as an otpauth:// URI (for a QR code) and in base32.
type Enrolment struct {
	TOTPURI    string
	TOTPSecret string
}

// BeginEnrolment returns the TOTP secret that p's enrolment session sets up:
// made at the first call and kept in the session, so a reloaded page shows
// the same one.
func (s *State) BeginEnrolment(ctx context.Context, p Principal) (Enrolment, error) {
	var uri string
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := s.enrolmentSession(tx, p)
		if err != nil {
			return err
		}
		if r.EnrolTOTP != "" {
			uri = r.EnrolTOTP
			return nil
		}
		if _, uri, err = newTOTP(s.opts.Issuer, p.User); err != nil {
			return err
		}
		r.EnrolTOTP = uri
		return putSession(tx, p.key, r)
	})
	if err != nil {
		return Enrolment{}, fmt.Errorf("access: begin enrolment of %s: %w", p.User, err)
	}
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return Enrolment{}, fmt.Errorf("access: begin enrolment of %s: %w", p.User, err)
	}
	return Enrolment{TOTPURI: uri, TOTPSecret: key.Secret()}, nil
}

// FinishEnrolment checks code against the secret of p's enrolment session.
// If it matches, the secret becomes the user's, with new recovery codes
// (returned, to be shown once), the code's step counts as used, the
// session becomes a full one (method [MethodTOTP]) and the user's other
// enrolment sessions end. A wrong code gives [ErrWrongCode] and changes
// nothing.
func (s *State) FinishEnrolment(ctx context.Context, p Principal, remote, code string) ([]string, error) {
	codes := newRecoveryCodes()
	salt := make([]byte, recoverySaltLen)
	rand.Read(salt)
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := s.enrolmentSession(tx, p)
		if err != nil {
			return err
		}
		if r.EnrolTOTP == "" {
			return fmt.Errorf("%w: no secret shown yet (begin again)", ErrInvalid)
		}
		key, err := otp.NewKeyFromURL(r.EnrolTOTP)
		if err != nil {
			return err
		}
		now := s.now()
		step, reason := checkTOTP(key.Secret(), code, now, 0)
		if reason != "" {
			return ErrWrongCode
		}
		u, err := getUser(tx, p.User)
		if err != nil {
			return err
		}
		if !u.Enrol {
			return ErrNotEnrolling
		}
		u.Enrol, u.TOTPSecret, u.RecoverySalt, u.Recovery, u.Changed = false, key.Secret(), salt, nil, now
		for _, c := range codes {
			u.Recovery = append(u.Recovery, hashRecovery(salt, c))
		}
		if err := putUser(tx, u); err != nil {
			return err
		}
		if err := tx.Bucket(bucketSteps).Put([]byte(u.Name), binary.BigEndian.AppendUint64(nil, step)); err != nil {
			return err
		}
		if err := deleteSessionsIf(tx, func(o *sessionRecord) bool { return o != nil && o.User == u.Name && o.Method == MethodEnrol }); err != nil {
			return err
		}
		r.Method, r.EnrolTOTP = MethodTOTP, ""
		if err := putSession(tx, p.key, r); err != nil {
			return err
		}
		return s.audit(ctx, tx, Event{Action: ActionEnrol, Outcome: OutcomeOK, User: u.Name, Role: u.Role, Remote: remote,
			Session: r.ID, Method: MethodTOTP})
	})
	if err != nil {
		return nil, fmt.Errorf("access: finish enrolment of %s: %w", p.User, err)
	}
	return codes, nil
}

// enrolmentSession returns p's session record if it is a live enrolment
// session.
func (s *State) enrolmentSession(tx *bolt.Tx, p Principal) (*sessionRecord, error) {
	v := tx.Bucket(bucketSessions).Get(p.key)
	if v == nil {
		return nil, ErrNoSession
	}
	r, err := decodeSession(v)
	if err != nil {
		return nil, err
	}
	if r.Method != MethodEnrol || !r.live(s.opts.Sessions, s.now()) {
		return nil, ErrNotEnrolling
	}
	return r, nil
}

// ResetUserForEnrolment is [State.ResetUser] with a generated password and
// no second factor: the user enrols a new one at the next sign-in, and the
// credentials carry only the password.
func (s *State) ResetUserForEnrolment(ctx context.Context, by Actor, name string) (Credentials, error) {
	return s.resetUser(ctx, by, name, "", true)
}
