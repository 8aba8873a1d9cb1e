// SPDX-License-Identifier: Apache-2.0

package access

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// Recovery codes: 10 per user, each 16 characters of the base32 alphabet
// (80 bits) shown as four groups of four. They are stored as
// SHA-256(salt ‖ code) with a per-user 16-byte salt: with 80 bits of entropy
// a fast hash is enough, and each code works once.
const (
	RecoveryCodes   = 10
	recoveryLen     = 16
	recoveryGroup   = 4
	recoveryAlpha   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	recoverySaltLen = 16
)

// newRecoveryCodes returns RecoveryCodes fresh codes.
func newRecoveryCodes() []string {
	codes := make([]string, RecoveryCodes)
	for i := range codes {
		codes[i] = randomString(recoveryAlpha, recoveryLen, recoveryGroup)
	}
	return codes
}

// normalizeRecovery uppercases a typed code and drops dashes and spaces.
func normalizeRecovery(code string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(code) {
		if c == '-' || c == ' ' {
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func hashRecovery(salt []byte, code string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(normalizeRecovery(code)))
	return h.Sum(nil)
}

// useRecovery returns hashes without the one matching code, and whether one
// matched. Every stored hash is compared, in constant time each.
func useRecovery(salt []byte, hashes [][]byte, code string) ([][]byte, bool) {
	if len(normalizeRecovery(code)) != recoveryLen {
		return hashes, false
	}
	h := hashRecovery(salt, code)
	match := -1
	for i, s := range hashes {
		if subtle.ConstantTimeCompare(h, s) == 1 {
			match = i
		}
	}
	if match < 0 {
		return hashes, false
	}
	rest := make([][]byte, 0, len(hashes)-1)
	rest = append(rest, hashes[:match]...)
	return append(rest, hashes[match+1:]...), true
}
