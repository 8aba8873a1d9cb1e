// SPDX-License-Identifier: Apache-2.0

package access

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeLogin: the sign-in body decoder never panics, accepts only what
// fits its bounds, and round-trips what it accepts.
func FuzzDecodeLogin(f *testing.F) {
	for _, s := range []string{
		`{"user":"alice","password":"correct horse battery","totp":"123456"}`,
		`{"user":"alice","password":"x","recovery_code":"ABCD-EFGH-IJKL-MNOP","cookie":true}`,
		`{"user":"alice","password":"x","totp":"1","recovery_code":"2"}`,
		`{"user":""}`, `{"user":"a","extra":1}`, `{"user":"a"} {"user":"b"}`, `{"user":"a"}   `,
		`[]`, `null`, `"x"`, `{"user":"\u0000"}`, `{"user":"a","password":null}`, `{"User":"a"}`,
		`{"user":"a","cookie":"yes"}`, `{"user":"a"`, ``,
		`{"user":"a","password":"x","webauthn":{"ceremony":"00ff","credential":{"id":"x","response":{}}}}`,
		`{"user":"a","password":"x","webauthn":{"ceremony":"00ff","credential":null}}`,
		`{"user":"a","password":"x","totp":"1","webauthn":{"ceremony":"00ff","credential":{}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeLogin(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("decodeLogin(%q) = %v, not ErrInvalid", data, err)
			}
			return
		}
		factors := 0
		for _, set := range []bool{b.TOTP != "", b.RecoveryCode != "", b.WebAuthn != nil} {
			if set {
				factors++
			}
		}
		if b.User == "" || len(b.User) > 256 || len(b.Password) > MaxPasswordLen || len(b.TOTP) > 16 ||
			len(b.RecoveryCode) > 64 || factors > 1 || (b.WebAuthn != nil && (b.WebAuthn.Ceremony == "" || len(b.WebAuthn.Credential) == 0)) {
			t.Fatalf("decodeLogin(%q) accepted %+v", data, b)
		}
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := decodeLogin(enc)
		if err != nil {
			t.Fatalf("round trip of %+v: %v", b, err)
		}
		enc2, _ := json.Marshal(b2)
		if string(enc) != string(enc2) {
			t.Fatalf("round trip of %s: %s", enc, enc2)
		}
	})
}

// FuzzParseToken: the token parser never panics, accepts only the exact
// form, and what it accepts re-encodes to the same string.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{newToken(), "", "sm1_", "sm1_" + strings.Repeat("A", 43), "sm1_" + strings.Repeat("_", 43),
		"sm1_" + strings.Repeat("A", 42) + "B", "Bearer sm1_x", "sm1_" + strings.Repeat("=", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseToken(s)
		if err != nil {
			if !errors.Is(err, ErrNoSession) {
				t.Fatalf("ParseToken(%q) = %v, not ErrNoSession", s, err)
			}
			return
		}
		if len(b) != tokenBytes || tokenPrefix+tokenEncoding.EncodeToString(b) != s {
			t.Fatalf("ParseToken(%q) = %x: does not re-encode to the input", s, b)
		}
	})
}

// FuzzAddressFailureKey: any remote address, however malformed, maps to a
// counter key.
func FuzzAddressFailureKey(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "fe80::1%eth0", "", "garbage", "1.2.3.4:5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := string(addressFailureKey(s))
		if !strings.HasPrefix(k, "a:") {
			t.Fatalf("addressFailureKey(%q) = %q", s, k)
		}
	})
}
