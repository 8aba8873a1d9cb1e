// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SessionOptions sets session lifetimes. The zero value means the defaults.
type SessionOptions struct {
	// Idle ends a session not used for this long. Default 30 min. Use is
	// recorded at most once a minute (or every Idle/10 if that is shorter),
	// so a session may end up to that much early.
	Idle time.Duration
	// Absolute ends a session this long after sign-in, used or not.
	// Default 12 h.
	Absolute time.Duration
}

func (o SessionOptions) withDefaults() SessionOptions {
	if o.Idle <= 0 {
		o.Idle = 30 * time.Minute
	}
	if o.Absolute <= 0 {
		o.Absolute = 12 * time.Hour
	}
	return o
}

func (o SessionOptions) touchEvery() time.Duration { return min(time.Minute, o.Idle/10) }

// Token format: "sm1_" and the base64url (no padding) of 32 random bytes.
// The prefix names the kind and version, and lets secret scanners find
// leaked tokens.
const (
	tokenPrefix = "sm1_"
	tokenBytes  = 32
)

var tokenEncoding = base64.RawURLEncoding.Strict()

// tokenLen is the length of a token string.
var tokenLen = len(tokenPrefix) + tokenEncoding.EncodedLen(tokenBytes)

// newToken returns a fresh token string.
func newToken() string {
	b := make([]byte, tokenBytes)
	rand.Read(b)
	return tokenPrefix + tokenEncoding.EncodeToString(b)
}

// ParseToken checks a token's form and returns its random bytes.
func ParseToken(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok || len(s) != tokenLen {
		return nil, ErrNoSession
	}
	b, err := tokenEncoding.DecodeString(rest)
	if err != nil || len(b) != tokenBytes {
		return nil, ErrNoSession
	}
	return b, nil
}

// tokenKey is the sessions bucket key of a token: SHA-256 of its bytes, so
// that a copy of access.db does not hold usable tokens.
func tokenKey(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// csrfToken is the CSRF token that goes with a session token: an HMAC of a
// fixed label under the token. A page that can read it can send requests,
// but it reveals nothing about the token itself.
func csrfToken(token []byte) string {
	m := hmac.New(sha256.New, token)
	m.Write([]byte("sealmail csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Session is a signed-in session as others may see it: its id, never its
// token.
type Session struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Role     Role      `json:"role"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	// Expires is the absolute end; IdleExpires the end if unused from now.
	Expires     time.Time `json:"expires"`
	IdleExpires time.Time `json:"idle_expires"`
	Remote      string    `json:"remote"`
	Method      string    `json:"method"`
	// Cookie says the session is a browser's (cookie and CSRF token).
	Cookie bool `json:"cookie"`
}

// sessionRecord is a session as stored in the sessions bucket.
type sessionRecord struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Role     Role      `json:"role"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	Expires  time.Time `json:"expires"`
	Remote   string    `json:"remote"`
	Method   string    `json:"method"`
	Cookie   bool      `json:"cookie,omitempty"`
	// EnrolTOTP is, in an enrolment session, the otpauth:// URI of the TOTP
	// secret being set up ([State.BeginEnrolment]).
	EnrolTOTP string `json:"enrol_totp,omitempty"`
}

func (r *sessionRecord) public(o SessionOptions) Session {
	idle := r.LastSeen.Add(o.Idle)
	return Session{ID: r.ID, User: r.User, Role: r.Role, Created: r.Created, LastSeen: r.LastSeen,
		Expires: r.Expires, IdleExpires: earliest(idle, r.Expires), Remote: r.Remote, Method: r.Method, Cookie: r.Cookie}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// live reports whether r is still valid at now.
func (r *sessionRecord) live(o SessionOptions, now time.Time) bool {
	return now.Before(r.Expires) && now.Sub(r.LastSeen) < o.Idle
}

func decodeSession(v []byte) (*sessionRecord, error) {
	var r sessionRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("decode session record: %w", err)
	}
	return &r, nil
}

func putSession(tx *bolt.Tx, key []byte, r *sessionRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketSessions).Put(key, v)
}

// Principal is who a request comes from: a live session's user.
type Principal struct {
	User      string
	Role      Role
	Addresses []string
	// Scope and Expires are an auditor's limits (empty/zero: none).
	Scope   string
	Expires time.Time
	Session Session
	// CSRF is the CSRF token a cookie session must send with state-changing
	// requests (empty for bearer sessions).
	CSRF string

	key []byte
}

// Actor returns p as the actor of a change it makes from remote.
func (p Principal) Actor(remote string) Actor {
	return Actor{User: p.User, Role: p.Role, Remote: remote}
}

// Authenticate returns the principal of a live session token. A token that
// is malformed, unknown, expired or whose user is disabled, expired or has
// changed role yields [ErrNoSession].
func (s *State) Authenticate(ctx context.Context, token string) (Principal, error) {
	b, err := ParseToken(token)
	if err != nil {
		return Principal{}, err
	}
	key := tokenKey(b)
	now := s.now()
	var p Principal
	var dead, touch bool
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSessions).Get(key)
		if v == nil {
			return ErrNoSession
		}
		r, err := decodeSession(v)
		if err != nil {
			return err
		}
		if !r.live(s.opts.Sessions, now) {
			dead = true
			return ErrNoSession
		}
		u, err := getUser(tx, r.User)
		if errors.Is(err, ErrNoUser) || err == nil && (u.Disabled || u.expired(now) || u.Role != r.Role) {
			dead = true
			return ErrNoSession
		}
		if err != nil {
			return err
		}
		touch = now.Sub(r.LastSeen) >= s.opts.Sessions.touchEvery()
		if touch {
			r.LastSeen = now
		}
		p = Principal{User: u.Name, Role: u.Role, Addresses: u.Addresses, Scope: u.Scope, Expires: u.Expires,
			Session: r.public(s.opts.Sessions), key: key}
		if r.Cookie {
			p.CSRF = csrfToken(b)
		}
		return nil
	})
	if dead {
		if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSessions).Delete(key) }); err != nil {
			s.log.Warn("delete ended session", "err", err)
		}
	}
	if errors.Is(err, ErrNoSession) {
		return Principal{}, ErrNoSession
	}
	if err != nil {
		return Principal{}, fmt.Errorf("access: authenticate: %w", err)
	}
	if touch {
		err := s.db.Update(func(tx *bolt.Tx) error {
			v := tx.Bucket(bucketSessions).Get(key)
			if v == nil {
				return ErrNoSession // signed out meanwhile
			}
			r, err := decodeSession(v)
			if err != nil {
				return err
			}
			r.LastSeen = now
			return putSession(tx, key, r)
		})
		if errors.Is(err, ErrNoSession) {
			return Principal{}, ErrNoSession
		}
		if err != nil {
			return Principal{}, fmt.Errorf("access: authenticate: %w", err)
		}
	}
	return p, nil
}

// SignOut ends p's session.
func (s *State) SignOut(ctx context.Context, p Principal, remote string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketSessions).Delete(p.key); err != nil {
			return err
		}
		return s.audit(ctx, tx, Event{Action: ActionLogout, Outcome: OutcomeOK, User: p.User, Role: p.Role, Remote: remote, Session: p.Session.ID})
	})
	if err != nil {
		return fmt.Errorf("access: sign out: %w", err)
	}
	return nil
}

// Sessions lists the live sessions of user, or of everyone if user is empty,
// oldest first.
func (s *State) Sessions(ctx context.Context, user string) ([]Session, error) {
	now := s.now()
	var out []Session
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			r, err := decodeSession(v)
			if err != nil {
				return err
			}
			if (user == "" || r.User == user) && r.live(s.opts.Sessions, now) {
				out = append(out, r.public(s.opts.Sessions))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("access: list sessions: %w", err)
	}
	slices.SortFunc(out, func(a, b Session) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// RevokeSession ends the session with id. If owner is not empty, only a
// session of that user is found (others yield [ErrNoSuchSession]).
func (s *State) RevokeSession(ctx context.Context, by Actor, id, owner string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		var key []byte
		var user string
		err := b.ForEach(func(k, v []byte) error {
			r, err := decodeSession(v)
			if err != nil {
				return err
			}
			if r.ID == id && (owner == "" || r.User == owner) {
				key, user = append([]byte(nil), k...), r.User
			}
			return nil
		})
		if err != nil {
			return err
		}
		if key == nil {
			return ErrNoSuchSession
		}
		if err := b.Delete(key); err != nil {
			return err
		}
		return s.audit(ctx, tx, Event{Action: ActionSessionRevoke, Outcome: OutcomeOK, User: by.User, Role: by.Role, Remote: by.Remote, Target: user, Session: id})
	})
	if err != nil {
		return fmt.Errorf("access: revoke session %s: %w", id, err)
	}
	return nil
}

// deleteSessionsOf ends every session of user.
func deleteSessionsOf(tx *bolt.Tx, user string) error {
	return deleteSessionsIf(tx, func(r *sessionRecord) bool { return r == nil || r.User == user })
}

// pruneSessions deletes sessions that have ended.
func (s *State) pruneSessions(tx *bolt.Tx, now time.Time) error {
	return deleteSessionsIf(tx, func(r *sessionRecord) bool { return r == nil || !r.live(s.opts.Sessions, now) })
}

// deleteSessionsIf deletes the sessions for which end is true; end gets nil
// for a value that does not decode.
func deleteSessionsIf(tx *bolt.Tx, end func(*sessionRecord) bool) error {
	b := tx.Bucket(bucketSessions)
	var keys [][]byte
	err := b.ForEach(func(k, v []byte) error {
		r, err := decodeSession(v)
		if err != nil {
			r = nil
		}
		if end(r) {
			keys = append(keys, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// newSessionID returns a random session id (16 bytes, hex).
func newSessionID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
