// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DBName is the database's file name in the state directory.
const DBName = "access.db"

// dbVersion is access.db's format version (docs/format.md, "Reader state").
// Version 2 added OIDC links, approvals, the audit outbox, users without a
// password and enrolment; a version-1 database is upgraded in place at open.
const dbVersion = 2

// dbKind marks a bbolt file as sealmail's reader state.
const dbKind = "sealmail-access"

var (
	bucketMeta     = []byte("meta")
	bucketUsers    = []byte("users")
	bucketSessions = []byte("sessions")
	bucketSteps    = []byte("totp_steps")
	bucketFailures = []byte("failures")
	// Version 2.
	bucketOIDCLinks = []byte("oidc_links")
	bucketApprovals = []byte("approvals")
	bucketOutbox    = []byte("audit_outbox")

	keyKind    = []byte("kind")
	keyVersion = []byte("version")
)

// StateOptions configures a [State]. The zero value is safe: every field has
// a documented default.
type StateOptions struct {
	// Logger receives diagnostics (never secrets). Nil discards them.
	Logger *slog.Logger
	// Audit receives every sign-in, failure, lockout, sign-out, session
	// revocation, user change and four-eyes transition, inside the
	// transaction that makes it take effect; an error rolls the change back.
	// Nil drops the events (unless AuditOutbox is set).
	Audit func(context.Context, Event) error
	// AuditOutbox keeps every event in access.db's audit outbox, in the
	// transaction of the change, instead of calling Audit: for the command
	// line, which changes the state while no reader runs. The reader sends
	// them on with [State.ForwardOutbox] at its start.
	AuditOutbox bool
	// Execute carries out an approved four-eyes request ([FourEyes]); nil
	// leaves approved requests for the caller to execute and mark.
	Execute func(context.Context, Approval) error
	// FourEyes says which destructive acts need a second officer.
	FourEyes FourEyesOptions
	// OIDC configures sign-in through OpenID Connect providers.
	OIDC OIDCOptions
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
	// Password sets the argon2id cost for new hashes.
	Password PasswordParams
	// Sessions sets session lifetimes.
	Sessions SessionOptions
	// Lockout sets throttling and lockout of failed sign-ins.
	Lockout LockoutOptions
	// Issuer names the service in authenticator apps (otpauth:// URIs).
	// Default "sealmail".
	Issuer string
	// WebAuthn enables security keys and passkeys as a second factor.
	WebAuthn WebAuthnOptions
}

// State is the reader's state directory: users, sessions, used TOTP steps
// and failure counters in access.db.
type State struct {
	dir  string
	db   *bolt.DB
	opts StateOptions
	log  *slog.Logger
	// hashing limits concurrent argon2id computations (memory).
	hashing chan struct{}

	pruneMu   sync.Mutex
	lastPrune time.Time

	// wa is nil unless WebAuthn is configured.
	wa         *webauthn.WebAuthn
	ceremonies onceStore[webauthn.SessionData]

	// oidc holds the configured OIDC providers by name; flows are the
	// sign-ins started and not yet called back, pendingOIDC those that
	// passed the provider and wait for sealmail's second factor.
	oidc        map[string]*relyingParty
	flows       onceStore[oidcFlow]
	pendingOIDC onceStore[oidcPending]
}

// OpenState opens the state in dir, creating dir (mode 0700) and access.db
// if they do not exist. It refuses a directory that others may read or that
// another user owns, and an access.db of an unknown version.
func OpenState(dir string, opts StateOptions) (*State, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Issuer == "" {
		opts.Issuer = "sealmail"
	}
	opts.Password = opts.Password.withDefaults()
	opts.Sessions = opts.Sessions.withDefaults()
	opts.Lockout = opts.Lockout.withDefaults()
	opts.FourEyes = opts.FourEyes.withDefaults()
	wa, err := newWebAuthn(opts.WebAuthn)
	if err != nil {
		return nil, err
	}
	rps, err := newOIDC(opts.OIDC)
	if err != nil {
		return nil, err
	}
	if err := prepareDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, DBName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("access: open %s: in use by another process (a running reader?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("access: open %s: %w", path, err)
	}
	if err := db.Update(initDB); err != nil {
		db.Close()
		return nil, fmt.Errorf("access: open %s: %w", path, err)
	}
	return &State{
		dir:     dir,
		db:      db,
		opts:    opts,
		log:     opts.Logger,
		hashing: make(chan struct{}, opts.Password.Concurrency),
		wa:      wa,
		oidc:    rps,
	}, nil
}

// prepareDir creates dir with mode 0700 or checks that an existing one has
// exactly that mode and belongs to us.
func prepareDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("access: create state directory: %w", err)
		}
		// MkdirAll is subject to the umask; make the mode exact.
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("access: create state directory: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("access: state directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("access: state directory %s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("access: state directory %s belongs to uid %d, not to this process (uid %d): run as its owner, or chown %d %s",
			dir, st.Uid, os.Getuid(), os.Getuid(), dir)
	}
	if m := fi.Mode().Perm(); m != 0o700 {
		return fmt.Errorf("access: state directory %s has mode %04o; it holds password hashes and TOTP secrets and must be 0700: chmod 700 %s",
			dir, m, dir)
	}
	return nil
}

// initDB creates the buckets of a new database or checks an existing one's
// kind and version.
func initDB(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		if tx.Bucket(bucketUsers) != nil {
			return fmt.Errorf("%w: users but no meta bucket", ErrUnsupportedVersion)
		}
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return err
		}
		if err := meta.Put(keyKind, []byte(dbKind)); err != nil {
			return err
		}
		if err := meta.Put(keyVersion, binary.BigEndian.AppendUint32(nil, dbVersion)); err != nil {
			return err
		}
	}
	if k := meta.Get(keyKind); string(k) != dbKind {
		return fmt.Errorf("%w: kind %q, want %q", ErrUnsupportedVersion, k, dbKind)
	}
	v := meta.Get(keyVersion)
	if len(v) != 4 {
		return fmt.Errorf("%w: version field of %d bytes", ErrUnsupportedVersion, len(v))
	}
	switch n := binary.BigEndian.Uint32(v); n {
	case dbVersion:
	case 1:
		// Version 2 adds buckets (made below), users without a password
		// (provisioned by OIDC) and enrolment sessions, which version 1
		// cannot read or would take for full sessions: mark the upgrade so
		// an older sealmail refuses the database.
		if err := meta.Put(keyVersion, binary.BigEndian.AppendUint32(nil, dbVersion)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w %d (this sealmail reads 1 and %d)", ErrUnsupportedVersion, n, dbVersion)
	}
	for _, b := range [][]byte{bucketUsers, bucketSessions, bucketSteps, bucketFailures, bucketOIDCLinks, bucketApprovals, bucketOutbox} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

// Dir returns the state directory.
func (s *State) Dir() string { return s.dir }

// Close closes access.db. It is idempotent.
func (s *State) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("access: close: %w", err)
	}
	return nil
}

func (s *State) now() time.Time { return s.opts.Now().UTC() }

// audit reports ev, stamping its time, to the Audit callback or, with
// AuditOutbox, into the outbox in tx.
func (s *State) audit(ctx context.Context, tx *bolt.Tx, ev Event) error {
	if ev.Time.IsZero() {
		ev.Time = s.now()
	}
	if s.opts.AuditOutbox {
		if err := putOutbox(tx, ev); err != nil {
			return fmt.Errorf("access: audit %s: outbox: %w", ev.Action, err)
		}
		return nil
	}
	if s.opts.Audit == nil {
		return nil
	}
	if err := s.opts.Audit(ctx, ev); err != nil {
		return fmt.Errorf("access: audit %s: %w", ev.Action, err)
	}
	return nil
}
