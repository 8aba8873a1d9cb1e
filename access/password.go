// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// PasswordParams is the argon2id cost (RFC 9106) of new password hashes.
// Each hash records its own parameters, so raising them affects only
// passwords set afterwards. The zero value means the defaults.
type PasswordParams struct {
	// Time is the number of passes. Default 3.
	Time uint32
	// MemoryKiB is the memory per hash in KiB. Default 65536 (64 MiB).
	MemoryKiB uint32
	// Threads is the parallelism. Default 4.
	Threads uint8
	// Concurrency is how many hashes may run at once (each takes MemoryKiB).
	// Default 2.
	Concurrency int
}

// The defaults are RFC 9106 §4's second recommended option (t=3, m=64 MiB,
// p=4): ≈ 0.25 s per hash on the 2-core development machine.
const (
	defaultArgonTime    = 3
	defaultArgonMemory  = 64 * 1024
	defaultArgonThreads = 4
	defaultHashes       = 2

	saltBytes = 16
	hashBytes = 32

	// MinPasswordLen and MaxPasswordLen bound a chosen password (in
	// characters and bytes): long enough to resist guessing with the lockout,
	// short enough that hashing cannot be abused.
	MinPasswordLen = 12
	MaxPasswordLen = 1024
)

func (p PasswordParams) withDefaults() PasswordParams {
	if p.Time == 0 {
		p.Time = defaultArgonTime
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = defaultArgonMemory
	}
	if p.Threads == 0 {
		p.Threads = defaultArgonThreads
	}
	if p.Concurrency <= 0 {
		p.Concurrency = defaultHashes
	}
	return p
}

// passwordHash is a stored argon2id hash with its parameters.
type passwordHash struct {
	Alg       string `json:"alg"` // "argon2id"
	Version   int    `json:"v"`   // argon2 version, 19 (0x13)
	Time      uint32 `json:"t"`
	MemoryKiB uint32 `json:"m"`
	Threads   uint8  `json:"p"`
	Salt      []byte `json:"salt"`
	Hash      []byte `json:"hash"`
}

// hashPassword hashes pw with a new random salt.
func (s *State) hashPassword(ctx context.Context, pw string) (passwordHash, error) {
	salt := make([]byte, saltBytes)
	rand.Read(salt)
	p := s.opts.Password
	h := passwordHash{Alg: "argon2id", Version: argon2.Version, Time: p.Time, MemoryKiB: p.MemoryKiB, Threads: p.Threads, Salt: salt}
	key, err := s.argon(ctx, pw, h)
	if err != nil {
		return passwordHash{}, err
	}
	h.Hash = key
	return h, nil
}

// argon computes h's key for pw, waiting for a free hashing slot.
func (s *State) argon(ctx context.Context, pw string, h passwordHash) ([]byte, error) {
	if h.Alg != "argon2id" || h.Version != argon2.Version || h.Time == 0 || h.MemoryKiB == 0 || h.Threads == 0 {
		return nil, fmt.Errorf("access: password hash %s v%d t=%d m=%d p=%d: %w", h.Alg, h.Version, h.Time, h.MemoryKiB, h.Threads, ErrUnsupportedVersion)
	}
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.hashing }()
	return argon2.IDKey([]byte(pw), h.Salt, h.Time, h.MemoryKiB, h.Threads, hashBytes), nil
}

// checkPassword reports whether pw matches h, comparing in constant time.
func (s *State) checkPassword(ctx context.Context, pw string, h passwordHash) (bool, error) {
	if len(pw) > MaxPasswordLen {
		return false, nil
	}
	key, err := s.argon(ctx, pw, h)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(key, h.Hash) == 1, nil
}

// dummyHash is what an unknown user's password is checked against, so that
// an unknown name takes as long as a known one.
func (s *State) dummyHash() passwordHash {
	p := s.opts.Password
	return passwordHash{Alg: "argon2id", Version: argon2.Version, Time: p.Time, MemoryKiB: p.MemoryKiB, Threads: p.Threads,
		Salt: make([]byte, saltBytes), Hash: make([]byte, hashBytes)}
}

// validPassword checks a chosen password's length.
func validPassword(pw string) error {
	if n := utf8.RuneCountInString(pw); n < MinPasswordLen {
		return fmt.Errorf("%w password: %d characters, at least %d needed", ErrInvalid, n, MinPasswordLen)
	}
	if len(pw) > MaxPasswordLen {
		return fmt.Errorf("%w password: longer than %d bytes", ErrInvalid, MaxPasswordLen)
	}
	if !utf8.ValidString(pw) {
		return fmt.Errorf("%w password: not UTF-8", ErrInvalid)
	}
	return nil
}

// passwordAlphabet has no look-alike characters (0/O, 1/l/I).
const passwordAlphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// generatePassword returns a random password of 4 groups of 6 characters
// from [passwordAlphabet] (≈ 139 bits).
func generatePassword() string {
	return randomString(passwordAlphabet, 24, 6)
}

// randomString draws n characters uniformly from alphabet, with a '-' every
// group characters.
func randomString(alphabet string, n, group int) string {
	out := make([]byte, 0, n+n/group)
	buf := make([]byte, 1)
	// Rejection sampling keeps the draw uniform.
	limit := 256 - 256%len(alphabet)
	for i := 0; i < n; {
		rand.Read(buf)
		if int(buf[0]) >= limit {
			continue
		}
		if i > 0 && i%group == 0 {
			out = append(out, '-')
		}
		out = append(out, alphabet[int(buf[0])%len(alphabet)])
		i++
	}
	return string(out)
}
