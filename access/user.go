// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sealmail/sealmail/index/query"
)

// User is a user as others may see it: no secrets.
type User struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Addresses []string  `json:"addresses,omitempty"`
	Scope     string    `json:"scope,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
	Disabled  bool      `json:"disabled,omitempty"`
	Created   time.Time `json:"created"`
	Changed   time.Time `json:"changed"`
	// RecoveryCodesLeft is how many unused recovery codes the user has.
	RecoveryCodesLeft int `json:"recovery_codes_left"`
	// WebAuthnCredentials is how many WebAuthn credentials are registered.
	WebAuthnCredentials int `json:"webauthn_credentials"`
	// OIDC are the user's links to OIDC subjects; ProvisionedBy the issuer
	// that provisioned the user (whose claims set role and addresses).
	OIDC          []OIDCLink `json:"oidc,omitempty"`
	ProvisionedBy string     `json:"provisioned_by,omitempty"`
	// EnrolPending says the user sets up their second factor at the next
	// sign-in (docs/access.md, "Enrolment").
	EnrolPending bool `json:"enrol_pending,omitempty"`
}

// userRecord is a user as stored in the users bucket (docs/format.md).
type userRecord struct {
	Name         string       `json:"name"`
	Role         Role         `json:"role"`
	Addresses    []string     `json:"addresses,omitempty"`
	Scope        string       `json:"scope,omitempty"`
	Expires      time.Time    `json:"expires,omitzero"`
	Disabled     bool         `json:"disabled,omitempty"`
	Password     passwordHash `json:"password"`
	TOTPSecret   string       `json:"totp_secret"`
	RecoverySalt []byte       `json:"recovery_salt"`
	Recovery     [][]byte     `json:"recovery"`
	// WebAuthnID is the user handle for WebAuthn (random, 32 bytes), made
	// at the first registration; WebAuthn are the registered credentials.
	WebAuthnID []byte         `json:"webauthn_id,omitempty"`
	WebAuthn   []webauthnCred `json:"webauthn,omitempty"`
	// OIDC links the user to OIDC subjects; ProvisionedBy is the issuer
	// that made the user (it has no password until an admin resets it).
	OIDC          []OIDCLink `json:"oidc,omitempty"`
	ProvisionedBy string     `json:"provisioned_by,omitempty"`
	Created       time.Time  `json:"created"`
	Changed       time.Time  `json:"changed"`
	// Enrol: the user has no second factor yet and sets one up at the next
	// sign-in, with the password alone ([MethodEnrol]).
	Enrol bool `json:"enrol,omitempty"`
}

func (r *userRecord) public() User {
	return User{Name: r.Name, Role: r.Role, Addresses: r.Addresses, Scope: r.Scope, Expires: r.Expires,
		Disabled: r.Disabled, Created: r.Created, Changed: r.Changed, RecoveryCodesLeft: len(r.Recovery),
		WebAuthnCredentials: len(r.WebAuthn), OIDC: r.OIDC, ProvisionedBy: r.ProvisionedBy, EnrolPending: r.Enrol}
}

// expired reports whether r's account has passed its expiry date.
func (r *userRecord) expired(now time.Time) bool {
	return !r.Expires.IsZero() && !now.Before(r.Expires)
}

// NewUser describes a user to add.
type NewUser struct {
	Name string
	Role Role
	// Addresses are the user's mail addresses (role user: the messages they
	// may read; other roles: informational).
	Addresses []string
	// Scope limits an auditor to messages matching this query (the search
	// query language); empty means everything.
	Scope string
	// Expires ends an auditor's access at this time; zero means never.
	Expires time.Time
	// Password is the user's password; empty generates one.
	Password string
	// Enrol leaves the user without a second factor: they set up their own
	// at the first sign-in, with the password alone ([MethodEnrol]), and the
	// credentials carry only the password.
	Enrol bool
}

// Credentials are what a new or reset user needs to sign in. They are shown
// once: the state keeps only hashes (and the TOTP secret).
type Credentials struct {
	User User `json:"user"`
	// Password is the generated password, to hand to the user; empty (and
	// Generated false) when the caller chose it.
	Password  string `json:"password,omitempty"`
	Generated bool   `json:"password_generated"`
	// TOTPURI is the otpauth:// URI to put into an authenticator app (as a
	// QR code or typed); TOTPSecret is its secret in base32.
	TOTPURI       string   `json:"totp_uri"`
	TOTPSecret    string   `json:"totp_secret"`
	RecoveryCodes []string `json:"recovery_codes"`
}

var userNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// validName checks a user name: 1–64 of a-z 0-9 . _ @ -, starting with a
// letter or digit.
func validName(name string) error {
	if !userNameRE.MatchString(name) {
		return fmt.Errorf("%w user name %q: use 1–64 of a-z 0-9 . _ @ -, starting with a letter or digit", ErrInvalid, name)
	}
	return nil
}

// normalizeAddresses checks and lowercases addresses, dropping duplicates.
func normalizeAddresses(in []string) ([]string, error) {
	var out []string
	for _, a := range in {
		p, err := mail.ParseAddress(a)
		if err != nil || p.Name != "" || p.Address != strings.TrimSpace(a) {
			return nil, fmt.Errorf("%w address %q: want a bare address such as jane@example.com", ErrInvalid, a)
		}
		lc := strings.ToLower(p.Address)
		if !slices.Contains(out, lc) {
			out = append(out, lc)
		}
	}
	return out, nil
}

func (nu *NewUser) validate(now time.Time) error {
	if err := validName(nu.Name); err != nil {
		return err
	}
	if _, err := ParseRole(string(nu.Role)); err != nil {
		return err
	}
	addrs, err := normalizeAddresses(nu.Addresses)
	if err != nil {
		return err
	}
	nu.Addresses = addrs
	if nu.Role == RoleUser && len(nu.Addresses) == 0 {
		return fmt.Errorf("%w: a user of role user needs at least one --address (the messages they may read)", ErrInvalid)
	}
	if nu.Role != RoleAuditor && (nu.Scope != "" || !nu.Expires.IsZero()) {
		return fmt.Errorf("%w: only auditors have a scope or an expiry date", ErrInvalid)
	}
	if !nu.Expires.IsZero() && !nu.Expires.After(now) {
		return fmt.Errorf("%w: expiry date %s is not in the future", ErrInvalid, nu.Expires.Format(time.RFC3339))
	}
	if nu.Scope != "" {
		if _, err := query.Parse(nu.Scope); err != nil {
			return fmt.Errorf("%w scope: %w", ErrInvalid, err)
		}
	}
	if nu.Password != "" {
		return validPassword(nu.Password)
	}
	return nil
}

// secrets makes a user's factors: password hash (generating the password if
// pw is empty), TOTP secret, recovery codes; or, if enrol, the password alone
// (the user enrols a second factor at sign-in).
func (s *State) secrets(ctx context.Context, rec *userRecord, pw string, enrol bool) (Credentials, error) {
	generated := pw == ""
	if generated {
		pw = generatePassword()
	}
	h, err := s.hashPassword(ctx, pw)
	if err != nil {
		return Credentials{}, err
	}
	secret, uri, err := newTOTP(s.opts.Issuer, rec.Name)
	if err != nil {
		return Credentials{}, err
	}
	codes := newRecoveryCodes()
	salt := make([]byte, recoverySaltLen)
	rand.Read(salt)
	rec.Password = h
	rec.TOTPSecret = secret
	rec.RecoverySalt = salt
	rec.Recovery = rec.Recovery[:0]
	rec.Enrol = enrol
	cred := Credentials{Generated: generated, TOTPURI: uri, TOTPSecret: secret, RecoveryCodes: codes}
	if enrol {
		// No second factor: the TOTP secret is one nobody is shown, and
		// there are no recovery codes, so that a reader that does not know
		// enrolment (an older sealmail) cannot sign the user in either.
		cred.TOTPURI, cred.TOTPSecret, cred.RecoveryCodes = "", "", nil
	}
	for _, c := range cred.RecoveryCodes {
		rec.Recovery = append(rec.Recovery, hashRecovery(salt, c))
	}
	if generated {
		cred.Password = pw
	}
	return cred, nil
}

// AddUser adds a user and returns the credentials to hand over.
func (s *State) AddUser(ctx context.Context, by Actor, nu NewUser) (Credentials, error) {
	if err := nu.validate(s.now()); err != nil {
		return Credentials{}, err
	}
	now := s.now()
	rec := &userRecord{Name: nu.Name, Role: nu.Role, Addresses: nu.Addresses, Scope: nu.Scope,
		Expires: nu.Expires.UTC(), Created: now, Changed: now}
	cred, err := s.secrets(ctx, rec, nu.Password, nu.Enrol)
	if err != nil {
		return Credentials{}, fmt.Errorf("access: add user %s: %w", nu.Name, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b.Get([]byte(nu.Name)) != nil {
			return ErrUserExists
		}
		if err := putUser(tx, rec); err != nil {
			return err
		}
		return s.audit(ctx, tx, Event{Action: ActionUserAdd, Outcome: OutcomeOK, User: by.User, Role: by.Role, Remote: by.Remote, Target: nu.Name})
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("access: add user %s: %w", nu.Name, err)
	}
	cred.User = rec.public()
	return cred, nil
}

// Users lists every user, by name.
func (s *State) Users(ctx context.Context) ([]User, error) {
	var out []User
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			rec, err := decodeUser(v)
			if err != nil {
				return fmt.Errorf("user %q: %w", k, err)
			}
			out = append(out, rec.public())
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("access: list users: %w", err)
	}
	return out, nil
}

// User returns the user called name.
func (s *State) User(ctx context.Context, name string) (User, error) {
	var u User
	err := s.db.View(func(tx *bolt.Tx) error {
		rec, err := getUser(tx, name)
		if err != nil {
			return err
		}
		u = rec.public()
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("access: user %s: %w", name, err)
	}
	return u, nil
}

// DisableUser disables name and ends all of their sessions. The last
// enabled admin cannot be disabled.
func (s *State) DisableUser(ctx context.Context, by Actor, name string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		rec, err := getUser(tx, name)
		if err != nil {
			return err
		}
		if rec.Role == RoleAdmin && !rec.Disabled {
			n, err := enabledAdmins(tx)
			if err != nil {
				return err
			}
			if n <= 1 {
				return ErrLastAdmin
			}
		}
		rec.Disabled = true
		rec.Changed = s.now()
		if err := putUser(tx, rec); err != nil {
			return err
		}
		if err := deleteSessionsOf(tx, name); err != nil {
			return err
		}
		return s.audit(ctx, tx, Event{Action: ActionUserDisable, Outcome: OutcomeOK, User: by.User, Role: by.Role, Remote: by.Remote, Target: name})
	})
	if err != nil {
		return fmt.Errorf("access: disable user %s: %w", name, err)
	}
	return nil
}

// EnableUser enables a disabled user.
func (s *State) EnableUser(ctx context.Context, by Actor, name string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		rec, err := getUser(tx, name)
		if err != nil {
			return err
		}
		rec.Disabled = false
		rec.Changed = s.now()
		if err := putUser(tx, rec); err != nil {
			return err
		}
		return s.audit(ctx, tx, Event{Action: ActionUserEnable, Outcome: OutcomeOK, User: by.User, Role: by.Role, Remote: by.Remote, Target: name})
	})
	if err != nil {
		return fmt.Errorf("access: enable user %s: %w", name, err)
	}
	return nil
}

// ResetUser gives name a new password (pw, or a generated one if empty), a
// new TOTP secret and new recovery codes, removes their WebAuthn
// credentials, ends their sessions and clears their lockout. It does not enable a disabled user.
func (s *State) ResetUser(ctx context.Context, by Actor, name, pw string) (Credentials, error) {
	return s.resetUser(ctx, by, name, pw, false)
}

// resetUser is [State.ResetUser]; with enrol, the user gets no second
// factor but enrols one at the next sign-in.
func (s *State) resetUser(ctx context.Context, by Actor, name, pw string, enrol bool) (Credentials, error) {
	if pw != "" {
		if err := validPassword(pw); err != nil {
			return Credentials{}, err
		}
	}
	var rec *userRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		rec, err = getUser(tx, name)
		return err
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("access: reset user %s: %w", name, err)
	}
	cred, err := s.secrets(ctx, rec, pw, enrol)
	if err != nil {
		return Credentials{}, fmt.Errorf("access: reset user %s: %w", name, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		cur, err := getUser(tx, name)
		if err != nil {
			return err
		}
		// Keep changes made meanwhile (disable) and replace the factors.
		cur.Password, cur.TOTPSecret, cur.RecoverySalt, cur.Recovery = rec.Password, rec.TOTPSecret, rec.RecoverySalt, rec.Recovery
		cur.Enrol = rec.Enrol
		cur.WebAuthn = nil
		cur.Changed = s.now()
		rec = cur
		if err := putUser(tx, cur); err != nil {
			return err
		}
		if err := deleteSessionsOf(tx, name); err != nil {
			return err
		}
		if err := tx.Bucket(bucketSteps).Delete([]byte(name)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketFailures).Delete(userFailureKey(name)); err != nil {
			return err
		}
		return s.audit(ctx, tx, Event{Action: ActionUserReset, Outcome: OutcomeOK, User: by.User, Role: by.Role, Remote: by.Remote, Target: name})
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("access: reset user %s: %w", name, err)
	}
	cred.User = rec.public()
	return cred, nil
}

func enabledAdmins(tx *bolt.Tx) (int, error) {
	n := 0
	err := tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
		rec, err := decodeUser(v)
		if err != nil {
			return fmt.Errorf("user %q: %w", k, err)
		}
		if rec.Role == RoleAdmin && !rec.Disabled {
			n++
		}
		return nil
	})
	return n, err
}

func getUser(tx *bolt.Tx, name string) (*userRecord, error) {
	v := tx.Bucket(bucketUsers).Get([]byte(name))
	if v == nil {
		return nil, ErrNoUser
	}
	return decodeUser(v)
}

func decodeUser(v []byte) (*userRecord, error) {
	var rec userRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("decode user record: %w", err)
	}
	if _, err := ParseRole(string(rec.Role)); err != nil {
		return nil, fmt.Errorf("decode user record: %w", err)
	}
	return &rec, nil
}

func putUser(tx *bolt.Tx, rec *userRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketUsers).Put([]byte(rec.Name), v)
}
