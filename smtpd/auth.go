// SPDX-License-Identifier: Apache-2.0

package smtpd

import "golang.org/x/crypto/bcrypt"

// Credential verifies the password of one AUTH user. Implementations must
// be safe for concurrent use.
type Credential interface {
	Verify(password string) bool
}

// BcryptHash is a [Credential] holding a bcrypt hash
// (golang.org/x/crypto/bcrypt, "$2a$…"/"$2b$…"), as written by
// `htpasswd -B` or [HashPassword]. A malformed hash matches no password.
type BcryptHash string

// Verify reports whether password matches the hash.
func (h BcryptHash) Verify(password string) bool {
	return bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) == nil
}

// CredentialFunc adapts a function to a [Credential], for example to check
// passwords against an external directory.
type CredentialFunc func(password string) bool

// Verify calls f(password).
func (f CredentialFunc) Verify(password string) bool { return f(password) }

// HashPassword returns a bcrypt hash of password at bcrypt's default cost,
// for configuration tools.
func HashPassword(password string) (BcryptHash, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", err
	}
	return BcryptHash(h), nil
}

// verify checks user and password. An unknown user costs a bcrypt
// comparison too, so that response time does not tell which users exist.
func (s *Server) verify(user, password string) bool {
	cred, ok := s.opts.Auth[user]
	if !ok || cred == nil {
		s.dummyOnce.Do(func() {
			s.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("sealmail-dummy"), bcrypt.DefaultCost)
		})
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return false
	}
	return cred.Verify(password)
}
