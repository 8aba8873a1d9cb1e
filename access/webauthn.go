// SPDX-License-Identifier: Apache-2.0

package access

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	bolt "go.etcd.io/bbolt"
)

// WebAuthnOptions enables WebAuthn (security keys, passkeys) as a second
// factor in place of a TOTP code. The zero value leaves it off.
type WebAuthnOptions struct {
	// RPID is the relying party id: the domain name people use to reach the
	// reader (archive.example.org). Credentials are bound to it. Empty: off.
	RPID string
	// Origins are the web origins the reader is reached at
	// (https://archive.example.org:8443). Default https://RPID.
	Origins []string
	// DisplayName names the service in the browser's dialog. Default
	// "sealmail".
	DisplayName string
}

// MethodWebAuthn is the sign-in method with a WebAuthn assertion.
const MethodWebAuthn = "password+webauthn"

// ReasonWebAuthn says the WebAuthn assertion was missing, unknown, expired,
// invalid, of another user or of a cloned authenticator.
const ReasonWebAuthn Reason = "webauthn"

// Audit actions for WebAuthn credentials.
const (
	ActionWebAuthnAdd    Action = "webauthn.add"
	ActionWebAuthnRemove Action = "webauthn.remove"
)

// ErrWebAuthnOff reports a WebAuthn call on a reader without
// [WebAuthnOptions].RPID.
var ErrWebAuthnOff = errors.New("access: WebAuthn is not configured")

// ErrBusy refuses a new WebAuthn ceremony while too many are pending.
var ErrBusy = errors.New("access: too many pending sign-ins; try again later")

// ceremonyTTL is how long a WebAuthn challenge may be answered.
const (
	ceremonyTTL  = 5 * time.Minute
	webauthnIDSz = 32
)

// webauthnCred is a registered credential as stored in a user value.
type webauthnCred struct {
	Name       string              `json:"name"`
	Created    time.Time           `json:"created"`
	LastUsed   time.Time           `json:"last_used,omitzero"`
	Credential webauthn.Credential `json:"credential"`
}

// WebAuthnCredential is a registered credential as others may see it.
type WebAuthnCredential struct {
	// ID is the credential id, base64url.
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

func (c *webauthnCred) public() WebAuthnCredential {
	return WebAuthnCredential{ID: base64.RawURLEncoding.EncodeToString(c.Credential.ID), Name: c.Name, Created: c.Created, LastUsed: c.LastUsed}
}

// waUser adapts a user record to the library's User.
type waUser struct{ rec *userRecord }

func (u waUser) WebAuthnID() []byte          { return u.rec.WebAuthnID }
func (u waUser) WebAuthnName() string        { return u.rec.Name }
func (u waUser) WebAuthnDisplayName() string { return u.rec.Name }
func (u waUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(u.rec.WebAuthn))
	for i, c := range u.rec.WebAuthn {
		out[i] = c.Credential
	}
	return out
}

func newWebAuthn(o WebAuthnOptions) (*webauthn.WebAuthn, error) {
	if o.RPID == "" {
		return nil, nil
	}
	if len(o.Origins) == 0 {
		o.Origins = []string{"https://" + o.RPID}
	}
	if o.DisplayName == "" {
		o.DisplayName = "sealmail"
	}
	wa, err := webauthn.New(&webauthn.Config{RPID: o.RPID, RPDisplayName: o.DisplayName, RPOrigins: o.Origins})
	if err != nil {
		return nil, fmt.Errorf("access: WebAuthn: %w", err)
	}
	return wa, nil
}

// BeginWebAuthnRegistration starts registering a new credential for p's
// user. The returned options go to navigator.credentials.create(); the
// answer to [State.FinishWebAuthnRegistration] within 5 minutes, from the
// same session.
func (s *State) BeginWebAuthnRegistration(ctx context.Context, p Principal) (*protocol.CredentialCreation, error) {
	if s.wa == nil {
		return nil, ErrWebAuthnOff
	}
	var rec *userRecord
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if rec, err = getUser(tx, p.User); err != nil {
			return err
		}
		if len(rec.WebAuthnID) == 0 {
			// The user handle: random, so it says nothing about the user.
			rec.WebAuthnID = make([]byte, webauthnIDSz)
			rand.Read(rec.WebAuthnID)
			return putUser(tx, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("access: begin WebAuthn registration: %w", err)
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range rec.WebAuthn {
		exclude = append(exclude, c.Credential.Descriptor())
	}
	// Discoverable credentials (resident keys) let sign-in start without a
	// user name, so that starting one reveals nothing about who has keys.
	creation, data, err := s.wa.BeginRegistration(waUser{rec},
		webauthn.WithExclusions(exclude),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
	if err != nil {
		return nil, fmt.Errorf("access: begin WebAuthn registration: %w", err)
	}
	if err := s.ceremonies.put("r:"+p.Session.ID, *data, s.now(), ceremonyTTL); err != nil {
		return nil, err
	}
	return creation, nil
}

// FinishWebAuthnRegistration checks the authenticator's answer (the JSON of
// the PublicKeyCredential) and stores the credential under name.
func (s *State) FinishWebAuthnRegistration(ctx context.Context, p Principal, remote, name string, response []byte) (WebAuthnCredential, error) {
	if s.wa == nil {
		return WebAuthnCredential{}, ErrWebAuthnOff
	}
	if name == "" || len(name) > 64 {
		return WebAuthnCredential{}, fmt.Errorf("%w credential name: 1–64 bytes", ErrInvalid)
	}
	data, ok := s.ceremonies.take("r:"+p.Session.ID, s.now())
	if !ok {
		return WebAuthnCredential{}, fmt.Errorf("%w: no pending WebAuthn registration for this session (begin again)", ErrInvalid)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return WebAuthnCredential{}, fmt.Errorf("%w WebAuthn response: %w", ErrInvalid, err)
	}
	var out WebAuthnCredential
	err = s.db.Update(func(tx *bolt.Tx) error {
		rec, err := getUser(tx, p.User)
		if err != nil {
			return err
		}
		cred, err := s.wa.CreateCredential(waUser{rec}, data, parsed)
		if err != nil {
			return fmt.Errorf("%w WebAuthn response: %w", ErrInvalid, err)
		}
		for _, c := range rec.WebAuthn {
			if bytes.Equal(c.Credential.ID, cred.ID) {
				return fmt.Errorf("%w: credential already registered", ErrInvalid)
			}
		}
		now := s.now()
		c := webauthnCred{Name: name, Created: now, Credential: *cred}
		rec.WebAuthn = append(rec.WebAuthn, c)
		rec.Changed = now
		if err := putUser(tx, rec); err != nil {
			return err
		}
		out = c.public()
		return s.audit(ctx, tx, Event{Action: ActionWebAuthnAdd, Outcome: OutcomeOK, User: p.User, Role: p.Role, Remote: remote,
			Target: p.User, Session: p.Session.ID})
	})
	if err != nil {
		return WebAuthnCredential{}, fmt.Errorf("access: finish WebAuthn registration: %w", err)
	}
	return out, nil
}

// WebAuthnCredentials lists user's registered credentials.
func (s *State) WebAuthnCredentials(ctx context.Context, user string) ([]WebAuthnCredential, error) {
	var out []WebAuthnCredential
	err := s.db.View(func(tx *bolt.Tx) error {
		rec, err := getUser(tx, user)
		if err != nil {
			return err
		}
		for _, c := range rec.WebAuthn {
			out = append(out, c.public())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("access: WebAuthn credentials of %s: %w", user, err)
	}
	return out, nil
}

// RemoveWebAuthnCredential removes user's credential with id (base64url).
func (s *State) RemoveWebAuthnCredential(ctx context.Context, by Actor, user, id string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		rec, err := getUser(tx, user)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(rec.WebAuthn, func(c webauthnCred) bool { return c.public().ID == id })
		if i < 0 {
			return ErrNoSuchCredential
		}
		rec.WebAuthn = slices.Delete(rec.WebAuthn, i, i+1)
		rec.Changed = s.now()
		if err := putUser(tx, rec); err != nil {
			return err
		}
		return s.audit(ctx, tx, Event{Action: ActionWebAuthnRemove, Outcome: OutcomeOK, User: by.User, Role: by.Role, Remote: by.Remote, Target: user})
	})
	if err != nil {
		return fmt.Errorf("access: remove WebAuthn credential: %w", err)
	}
	return nil
}

// ErrNoSuchCredential reports a WebAuthn credential id the user does not
// have.
var ErrNoSuchCredential = errors.New("access: no such WebAuthn credential")

// BeginWebAuthnLogin starts a WebAuthn sign-in. It needs no user name (the
// credentials are discoverable), so it reveals nothing about users. The
// options go to navigator.credentials.get(); the answer goes with the
// ceremony id, the user name and the password to [State.Login] within 5
// minutes.
func (s *State) BeginWebAuthnLogin(ctx context.Context) (string, *protocol.CredentialAssertion, error) {
	if s.wa == nil {
		return "", nil, ErrWebAuthnOff
	}
	assertion, data, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return "", nil, fmt.Errorf("access: begin WebAuthn sign-in: %w", err)
	}
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b)
	if err := s.ceremonies.put("l:"+id, *data, s.now(), ceremonyTTL); err != nil {
		return "", nil, err
	}
	return id, assertion, nil
}

// checkWebAuthn checks a sign-in's WebAuthn assertion against rec and
// records the credential's new signature counter.
func (s *State) checkWebAuthn(tx *bolt.Tx, rec *userRecord, ceremonyID string, response json.RawMessage, now time.Time) (Reason, error) {
	if s.wa == nil {
		return ReasonWebAuthn, nil
	}
	data, ok := s.ceremonies.take("l:"+ceremonyID, now)
	if !ok || len(rec.WebAuthnID) == 0 {
		return ReasonWebAuthn, nil
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return ReasonWebAuthn, nil
	}
	_, cred, err := s.wa.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
		// The credential must be the signing-in user's.
		if !bytes.Equal(userHandle, rec.WebAuthnID) {
			return nil, errors.New("credential of another user")
		}
		return waUser{rec}, nil
	}, data, parsed)
	if err != nil || cred.Authenticator.CloneWarning {
		return ReasonWebAuthn, nil
	}
	for i := range rec.WebAuthn {
		if bytes.Equal(rec.WebAuthn[i].Credential.ID, cred.ID) {
			rec.WebAuthn[i].Credential = *cred
			rec.WebAuthn[i].LastUsed = now
		}
	}
	return "", putUser(tx, rec)
}
