// SPDX-License-Identifier: Apache-2.0

package access

import (
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters (RFC 6238): HMAC-SHA-1, 6 digits, 30-second steps, a
// 160-bit secret (RFC 4226 §4 recommends 160 bits). These are what every
// authenticator app supports.
const (
	totpPeriod      = 30
	totpDigits      = otp.DigitsSix
	totpSecretBytes = 20
	// totpSkew is how many steps before and after the current one are
	// accepted, for clock drift and typing time (RFC 6238 §5.2 recommends
	// at most one).
	totpSkew = 1
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1}

// newTOTP makes a new secret for account and returns it (base32) with its
// otpauth:// URI for authenticator apps.
func newTOTP(issuer, account string) (secret, uri string, err error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      totpPeriod,
		SecretSize:  totpSecretBytes,
		Digits:      totpDigits,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", "", fmt.Errorf("access: new TOTP secret: %w", err)
	}
	return key.Secret(), key.URL(), nil
}

// TOTPCode returns the code for secret at t. It is what an authenticator app
// shows; tests and the command line's self-check use it.
func TOTPCode(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totpOpts)
}

// checkTOTP finds the time step within ±[totpSkew] of now whose code is
// code. It refuses a step at or before lastUsed (RFC 6238 §5.2: a verifier
// must not accept a second use of a code), so it returns the step to record
// as used, or the reason for refusing.
func checkTOTP(secret, code string, now time.Time, lastUsed uint64) (uint64, Reason) {
	if secret == "" || len(code) != totpDigits.Length() {
		return 0, ReasonTOTP
	}
	cur := now.Unix() / totpPeriod
	replay := false
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		step := cur + d
		if step < 0 {
			continue
		}
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0, ReasonTOTP
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		if uint64(step) <= lastUsed {
			replay = true
			continue
		}
		return uint64(step), ""
	}
	if replay {
		return 0, ReasonTOTPReplay
	}
	return 0, ReasonTOTP
}
