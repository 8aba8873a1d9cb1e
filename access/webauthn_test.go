// SPDX-License-Identifier: Apache-2.0

package access

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// softKey is a software WebAuthn authenticator: an ECDSA P-256 key that
// answers navigator.credentials.create() and .get() as a security key
// would (attestation "none", flags UP and UV).
type softKey struct {
	priv       *ecdsa.PrivateKey
	id         []byte
	userHandle []byte
	rpID       string
	origin     string
	counter    uint32
}

var b64 = base64.RawURLEncoding

// cbor encodes the few CBOR items WebAuthn needs (RFC 8949): unsigned and
// negative integers, byte and text strings, maps given as key/value pairs.
type cborMap [][2]any

func cbor(v any) []byte {
	head := func(major byte, n uint64) []byte {
		switch {
		case n < 24:
			return []byte{major<<5 | byte(n)}
		case n < 1<<8:
			return []byte{major<<5 | 24, byte(n)}
		default:
			return []byte{major<<5 | 25, byte(n >> 8), byte(n)}
		}
	}
	switch v := v.(type) {
	case int:
		if v >= 0 {
			return head(0, uint64(v))
		}
		return head(1, uint64(-1-v))
	case []byte:
		return append(head(2, uint64(len(v))), v...)
	case string:
		return append(head(3, uint64(len(v))), v...)
	case cborMap:
		out := head(5, uint64(len(v)))
		for _, kv := range v {
			out = append(out, cbor(kv[0])...)
			out = append(out, cbor(kv[1])...)
		}
		return out
	}
	panic(fmt.Sprintf("cbor: %T", v))
}

func newSoftKey(t *testing.T, rpID, origin string) *softKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &softKey{priv: priv, id: id, rpID: rpID, origin: origin}
}

// options is the part of a publicKey options object the key reads.
type options struct {
	Challenge string `json:"challenge"`
	RPID      string `json:"rpId"`
	RP        struct {
		ID string `json:"id"`
	} `json:"rp"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	AuthenticatorSelection struct {
		ResidentKey string `json:"residentKey"`
	} `json:"authenticatorSelection"`
}

func (k *softKey) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": k.origin, "crossOrigin": false})
	return b
}

// create answers a registration challenge.
func (k *softKey) create(t *testing.T, publicKey json.RawMessage) json.RawMessage {
	t.Helper()
	var o options
	if err := json.Unmarshal(publicKey, &o); err != nil {
		t.Fatal(err)
	}
	if o.RP.ID != k.rpID {
		t.Fatalf("registration for RP %q, want %q", o.RP.ID, k.rpID)
	}
	uh, err := b64.DecodeString(o.User.ID)
	if err != nil {
		t.Fatalf("user.id %q: %v", o.User.ID, err)
	}
	k.userHandle = uh
	pub, err := k.priv.PublicKey.Bytes() // 0x04 ‖ x ‖ y
	if err != nil {
		t.Fatal(err)
	}
	x, y := pub[1:33], pub[33:65]
	// RFC 9053 §7.1.1: EC2 key, ES256, curve P-256.
	cose := cbor(cborMap{{1, 2}, {3, -7}, {-1, 1}, {-2, x}, {-3, y}})
	rp := sha256.Sum256([]byte(k.rpID))
	auth := append(rp[:], 0x45) // UP | UV | AT
	auth = binary.BigEndian.AppendUint32(auth, 0)
	auth = append(auth, make([]byte, 16)...) // AAGUID
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(k.id)))
	auth = append(auth, k.id...)
	auth = append(auth, cose...)
	att := cbor(cborMap{{"fmt", "none"}, {"attStmt", cborMap{}}, {"authData", auth}})
	cd := k.clientData("webauthn.create", o.Challenge)
	out, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64.EncodeToString(cd), "attestationObject": b64.EncodeToString(att)},
	})
	return out
}

// get answers a sign-in challenge with the given signature counter.
func (k *softKey) get(t *testing.T, publicKey json.RawMessage, counter uint32) json.RawMessage {
	t.Helper()
	var o options
	if err := json.Unmarshal(publicKey, &o); err != nil {
		t.Fatal(err)
	}
	rp := sha256.Sum256([]byte(k.rpID))
	auth := append(rp[:], 0x05) // UP | UV
	auth = binary.BigEndian.AppendUint32(auth, counter)
	cd := k.clientData("webauthn.get", o.Challenge)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte(nil), auth...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(auth),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(k.userHandle)},
	})
	return out
}

// webauthnLogin asks for a sign-in challenge and answers it with key.
func (s *server) webauthnLogin(t *testing.T, user, password string, key *softKey, counter uint32) (int, LoginReply) {
	t.Helper()
	resp, data := s.call(t, "POST", "/api/v1/session/webauthn", "", nil, nil)
	var ch struct {
		Ceremony  string          `json:"ceremony"`
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(data, &ch) != nil || ch.Ceremony == "" {
		t.Fatalf("begin WebAuthn sign-in: %s %s", resp.Status, data)
	}
	if strings.Contains(string(ch.PublicKey), "allowCredentials") {
		t.Errorf("sign-in challenge lists credentials: %s", ch.PublicKey)
	}
	resp, data = s.call(t, "POST", "/api/v1/session", "", LoginBody{User: user, Password: password,
		WebAuthn: &WebAuthnLogin{Ceremony: ch.Ceremony, Credential: key.get(t, ch.PublicKey, counter)}}, nil)
	var lr LoginReply
	json.Unmarshal(data, &lr)
	return resp.StatusCode, lr
}

func TestHTTPSWebAuthn(t *testing.T) {
	t.Parallel()
	const origin = "https://localhost"
	s := newServer(t, Options{WebAuthn: WebAuthnOptions{RPID: "localhost", Origins: []string{origin}}})
	s.start(t)
	alice := s.add(t, "alice", RoleOfficer)
	bob := s.add(t, "bob", RoleOfficer)
	tok := s.signIn(t, alice)
	key := newSoftKey(t, "localhost", origin)

	// Register: only with a session.
	if resp, _ := s.call(t, "POST", "/api/v1/webauthn/register", "", nil, nil); resp.StatusCode != 401 {
		t.Errorf("register without a session: %s, want 401", resp.Status)
	}
	resp, data := s.call(t, "POST", "/api/v1/webauthn/register", tok, nil, nil)
	var reg struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(data, &reg) != nil {
		t.Fatalf("begin registration: %s %s", resp.Status, data)
	}
	var o options
	json.Unmarshal(reg.PublicKey, &o)
	if o.AuthenticatorSelection.ResidentKey != "required" {
		t.Errorf("registration does not ask for a discoverable credential: %s", reg.PublicKey)
	}
	// An answer for another origin is refused.
	evil := *key
	evil.origin = "https://evil.example"
	resp, data = s.call(t, "POST", "/api/v1/webauthn/register/finish", tok, WebAuthnRegisterBody{Name: "evil", Credential: evil.create(t, reg.PublicKey)}, nil)
	if resp.StatusCode != 400 {
		t.Errorf("registration from another origin: %s %s, want 400", resp.Status, data)
	}
	// The challenge was used up by that attempt: begin again.
	_, data = s.call(t, "POST", "/api/v1/webauthn/register", tok, nil, nil)
	json.Unmarshal(data, &reg)
	resp, data = s.call(t, "POST", "/api/v1/webauthn/register/finish", tok, WebAuthnRegisterBody{Name: "soft key", Credential: key.create(t, reg.PublicKey)}, nil)
	var wc WebAuthnCredential
	if resp.StatusCode != 201 || json.Unmarshal(data, &wc) != nil || wc.ID != b64.EncodeToString(key.id) || wc.Name != "soft key" {
		t.Fatalf("finish registration: %s %s", resp.Status, data)
	}
	resp, data = s.call(t, "GET", "/api/v1/webauthn/credentials", tok, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(data), wc.ID) {
		t.Errorf("credentials: %s %s", resp.Status, data)
	}
	s.rec.take()

	// Sign in with password and key.
	code, lr := s.webauthnLogin(t, "alice", alice.Password, key, 1)
	if code != 200 || lr.Token == "" {
		t.Fatalf("WebAuthn sign-in: %d", code)
	}
	_, data = s.call(t, "GET", "/api/v1/me", lr.Token, nil, nil)
	var me MeReply
	if json.Unmarshal(data, &me) != nil || me.User != "alice" || me.Session.Method != MethodWebAuthn {
		t.Errorf("me after WebAuthn sign-in: %s", data)
	}
	// Refused: wrong password, a replayed counter (a cloned key), another
	// user's name, another origin.
	if code, _ := s.webauthnLogin(t, "alice", "wrong password!", key, 2); code != 401 {
		t.Errorf("WebAuthn with a wrong password: %d, want 401", code)
	}
	if code, _ := s.webauthnLogin(t, "alice", alice.Password, key, 1); code != 401 {
		t.Errorf("WebAuthn with a repeated signature counter: %d, want 401", code)
	}
	if code, _ := s.webauthnLogin(t, "bob", bob.Password, key, 3); code != 401 {
		t.Errorf("bob with alice's key: %d, want 401", code)
	}
	evil.userHandle, evil.counter = key.userHandle, 0
	if code, _ := s.webauthnLogin(t, "alice", alice.Password, &evil, 4); code != 401 {
		t.Errorf("WebAuthn answer for another origin: %d, want 401", code)
	}
	if code, _ := s.webauthnLogin(t, "alice", alice.Password, key, 5); code != 200 {
		t.Errorf("WebAuthn sign-in with a fresh counter: %d, want 200", code)
	}
	// A challenge is good once.
	_, data = s.call(t, "POST", "/api/v1/session/webauthn", "", nil, nil)
	var ch struct {
		Ceremony  string          `json:"ceremony"`
		PublicKey json.RawMessage `json:"publicKey"`
	}
	json.Unmarshal(data, &ch)
	body := LoginBody{User: "alice", Password: alice.Password, WebAuthn: &WebAuthnLogin{Ceremony: ch.Ceremony, Credential: key.get(t, ch.PublicKey, 6)}}
	if resp, _ := s.call(t, "POST", "/api/v1/session", "", body, nil); resp.StatusCode != 200 {
		t.Errorf("first answer: %s", resp.Status)
	}
	if resp, _ := s.call(t, "POST", "/api/v1/session", "", body, nil); resp.StatusCode != 401 {
		t.Errorf("replayed answer: %s, want 401", resp.Status)
	}

	var got []string
	for _, e := range s.rec.take() {
		got = append(got, fmt.Sprintf("%s/%s/%s/%s%s", e.Action, e.Outcome, e.User, e.Reason, e.Method))
	}
	want := "login/ok/alice/password+webauthn login/fail/alice/password login/fail/alice/webauthn login/fail/bob/webauthn " +
		"login/fail/alice/webauthn login/ok/alice/password+webauthn login/ok/alice/password+webauthn login/fail/alice/webauthn"
	if strings.Join(got, " ") != want {
		t.Errorf("events:\n got %s\nwant %s", strings.Join(got, " "), want)
	}

	// Removing the credential ends its use; bob cannot remove alice's.
	bobTok := s.signIn(t, bob)
	if resp, _ := s.call(t, "DELETE", "/api/v1/webauthn/credentials/"+wc.ID, bobTok, nil, nil); resp.StatusCode != 404 {
		t.Errorf("bob removes alice's credential: %s, want 404", resp.Status)
	}
	if resp, _ := s.call(t, "DELETE", "/api/v1/webauthn/credentials/"+wc.ID, tok, nil, nil); resp.StatusCode != 204 {
		t.Errorf("remove credential: %s", resp.Status)
	}
	if code, _ := s.webauthnLogin(t, "alice", alice.Password, key, 7); code != 401 {
		t.Errorf("WebAuthn with a removed credential: %d, want 401", code)
	}
	if ev := s.rec.take(); len(ev) < 2 || ev[len(ev)-2].Action != ActionWebAuthnRemove || ev[len(ev)-2].Target != "alice" {
		t.Errorf("events = %+v, want webauthn.remove", ev)
	}
}

// TestWebAuthnOff: without an RP id, the WebAuthn endpoints say so and a
// WebAuthn answer never signs in.
func TestWebAuthnOff(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	s.start(t)
	c := s.add(t, "alice", RoleUser, "a@example.com")
	if resp, _ := s.call(t, "POST", "/api/v1/session/webauthn", "", nil, nil); resp.StatusCode != 404 {
		t.Errorf("begin WebAuthn sign-in when off: %s, want 404", resp.Status)
	}
	tok := s.signIn(t, c)
	if resp, _ := s.call(t, "POST", "/api/v1/webauthn/register", tok, nil, nil); resp.StatusCode != 404 {
		t.Errorf("begin registration when off: %s, want 404", resp.Status)
	}
	body := LoginBody{User: "alice", Password: c.Password, WebAuthn: &WebAuthnLogin{Ceremony: "00", Credential: json.RawMessage(`{}`)}}
	if resp, _ := s.call(t, "POST", "/api/v1/session", "", body, nil); resp.StatusCode != 401 {
		t.Errorf("WebAuthn sign-in when off: %s, want 401", resp.Status)
	}
}

// TestWebAuthnResetRemovesCredentials: a reset issues new factors, so the
// registered keys go too.
func TestWebAuthnResetRemovesCredentials(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{WebAuthn: WebAuthnOptions{RPID: "localhost"}})
	s.start(t)
	c := s.add(t, "alice", RoleAuditor)
	tok := s.signIn(t, c)
	key := newSoftKey(t, "localhost", "https://localhost")
	_, data := s.call(t, "POST", "/api/v1/webauthn/register", tok, nil, nil)
	var reg struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	json.Unmarshal(data, &reg)
	if resp, data := s.call(t, "POST", "/api/v1/webauthn/register/finish", tok, WebAuthnRegisterBody{Name: "k", Credential: key.create(t, reg.PublicKey)}, nil); resp.StatusCode != 201 {
		t.Fatalf("register: %s %s", resp.Status, data)
	}
	if u, _ := s.st.User(bg, "alice"); u.WebAuthnCredentials != 1 {
		t.Fatalf("credentials = %d", u.WebAuthnCredentials)
	}
	c2, err := s.st.ResetUser(bg, cli, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if c2.User.WebAuthnCredentials != 0 {
		t.Errorf("credentials after reset = %d, want 0", c2.User.WebAuthnCredentials)
	}
	if code, _ := s.webauthnLogin(t, "alice", c2.Password, key, 1); code != 401 {
		t.Errorf("old key after reset: %d, want 401", code)
	}
}
