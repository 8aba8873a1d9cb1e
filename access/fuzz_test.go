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

// FuzzApprovalRecord: a stored four-eyes request decodes to a known action
// and state or fails, and what decodes re-encodes to the same request.
func FuzzApprovalRecord(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"action":"erase","state":"requested","requester":"alice","requester_role":"officer","reason":"r","payload":{"ids":[1]},"requested":"2026-01-02T03:04:05Z","expires":"2026-01-05T03:04:05Z"}`,
		`{"id":2,"action":"hold.release","state":"executed","requester":"root","reason":"x","payload":{},"decider":"bob","decided":"2026-01-02T03:04:05Z","finished":"2026-01-02T03:04:06Z"}`,
		`{"id":3,"action":"purge","state":"requested"}`, `{"action":"erase","state":"pending"}`, `{"action":"erase","state":"failed","error":"x"}`,
		`{"id":-1}`, `[]`, `null`, ``, `{"payload":[1,2]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := decodeApproval(data)
		if err != nil {
			return
		}
		if _, err := parseApprovalAction(string(a.Action)); err != nil {
			t.Fatalf("decodeApproval(%q) accepted action %q", data, a.Action)
		}
		enc, err := json.Marshal(&a)
		if err != nil {
			t.Fatalf("marshal %+v: %v", a, err)
		}
		b, err := decodeApproval(enc)
		if err != nil {
			t.Fatalf("round trip of %s: %v", enc, err)
		}
		if enc2, _ := json.Marshal(&b); string(enc) != string(enc2) {
			t.Fatalf("round trip of %s: %s", enc, enc2)
		}
	})
}

// FuzzApprovalPayload: a request's payload is accepted only as one JSON
// object within the bound, and stored compacted (a fixed point).
func FuzzApprovalPayload(f *testing.F) {
	for _, s := range []string{`{"ids":[1,2]}`, ` { "a" : "b" } `, `{}`, `[]`, `null`, `1`, `{} {}`, `{"a":1`, `{"a":"\u0000"}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := checkPayload(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("checkPayload(%q) = %v, not ErrInvalid", data, err)
			}
			return
		}
		if len(p) > MaxApprovalPayload || len(p) == 0 || p[0] != '{' {
			t.Fatalf("checkPayload(%q) = %q", data, p)
		}
		q, err := checkPayload(p)
		if err != nil || string(q) != string(p) {
			t.Fatalf("checkPayload(%q) = %q, %v; not a fixed point", p, q, err)
		}
	})
}

// FuzzClaims: whatever claims an ID token or userinfo carries, deciding
// MFA and provisioning never panics, and a provisioned role comes from a
// rule and has a valid address when it is user.
func FuzzClaims(f *testing.F) {
	for _, s := range []string{
		`{"amr":["pwd","otp"],"groups":["officers"],"email":"a@example.org","email_verified":true}`,
		`{"amr":"mfa","acr":"gold","roles":"reader","email":"B@EXAMPLE.ORG","email_verified":"true","aliases":["x","c@example.org"]}`,
		`{"amr":[1,{}],"groups":null,"email":7}`, `{"email":"\"a\" <a@example.org>","email_verified":true,"roles":["reader"]}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	rps, err := newOIDC(OIDCOptions{Providers: []OIDCProvider{{Name: "p", Issuer: "https://id.example.org", ClientID: "c",
		RedirectURL: "https://h" + oidcCallbackPath("p"), ACRValues: []string{"gold"},
		Provision: &OIDCProvisioning{AddressClaims: []string{"aliases"}, Roles: []OIDCRoleRule{
			{Claim: "groups", Value: "officers", Role: RoleOfficer}, {Claim: "roles", Value: "reader", Role: RoleUser}}}}}})
	if err != nil {
		f.Fatal(err)
	}
	rp := rps["p"]
	f.Fuzz(func(t *testing.T, data []byte) {
		var c claims
		if json.Unmarshal(data, &c) != nil {
			return
		}
		rp.providerMFA(c)
		role, addrs, ok := rp.provisioning(c)
		if !ok {
			return
		}
		if role != RoleOfficer && role != RoleUser || role == RoleUser && len(addrs) == 0 {
			t.Fatalf("provisioning(%s) = %s %v", data, role, addrs)
		}
		if _, err := normalizeAddresses(addrs); err != nil {
			t.Fatalf("provisioning(%s) gave addresses %v: %v", data, addrs, err)
		}
	})
}
