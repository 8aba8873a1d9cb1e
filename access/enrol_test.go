// SPDX-License-Identifier: Apache-2.0

package access

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestEnrolment: a user added for enrolment signs in with the password
// alone into a session that can only enrol; enrolling with a code of the
// shown secret makes it a full session, gives recovery codes once, and ends
// password-only sign-in.
func TestEnrolment(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: fastRetry})
	c, err := f.st.AddUser(bg, cli, NewUser{Name: "jane", Role: RoleUser, Addresses: []string{"jane@example.com"}, Enrol: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Password == "" || c.TOTPSecret != "" || c.TOTPURI != "" || len(c.RecoveryCodes) != 0 || !c.User.EnrolPending {
		t.Fatalf("credentials for enrolment = %+v, want a password and nothing else", c)
	}
	// No second factor exists yet: any code fails.
	for _, req := range []LoginRequest{
		{User: "jane", Password: c.Password, TOTP: "123456"},
		{User: "jane", Password: c.Password, RecoveryCode: "AAAA-AAAA-AAAA-AAAA"},
		{User: "jane", Password: "wrong password!"},
	} {
		if _, err := f.st.Login(bg, req); !errors.Is(err, ErrSignInFailed) {
			t.Errorf("Login(%+v) of a user to enrol = %v, want ErrSignInFailed", req, err)
		}
	}
	ns, err := f.st.Login(bg, LoginRequest{User: "jane", Password: c.Password, Remote: "192.0.2.1", Cookie: true})
	if err != nil {
		t.Fatalf("password-only sign-in to enrol: %v", err)
	}
	p, err := f.st.Authenticate(bg, ns.Token)
	if err != nil || !p.Enrolling() || p.Session.Method != MethodEnrol {
		t.Fatalf("Authenticate = %+v, %v; want an enrolment session", p, err)
	}
	e1, err := f.st.BeginEnrolment(bg, p)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := f.st.BeginEnrolment(bg, p)
	if err != nil || e2 != e1 || !strings.HasPrefix(e1.TOTPURI, "otpauth://totp/") || !strings.Contains(e1.TOTPURI, "secret="+e1.TOTPSecret) {
		t.Fatalf("BeginEnrolment twice = %+v, %+v (%v); want the same otpauth URI", e1, e2, err)
	}
	f.rec.take()
	if _, err := f.st.FinishEnrolment(bg, p, "192.0.2.1", "000000"); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("FinishEnrolment with a wrong code = %v, want ErrWrongCode", err)
	}
	code, err := TOTPCode(e1.TOTPSecret, f.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	codes, err := f.st.FinishEnrolment(bg, p, "192.0.2.1", code)
	if err != nil || len(codes) != RecoveryCodes {
		t.Fatalf("FinishEnrolment = %v, %v", codes, err)
	}
	ev := f.rec.take()
	if len(ev) != 1 || ev[0].Action != ActionEnrol || ev[0].User != "jane" || ev[0].Session != p.Session.ID || ev[0].Remote != "192.0.2.1" {
		t.Errorf("events = %+v, want one user.enrol", ev)
	}
	noSecrets(t, ev, c.Password, e1.TOTPSecret, code, codes[0])
	p, err = f.st.Authenticate(bg, ns.Token)
	if err != nil || p.Enrolling() || p.Session.Method != MethodTOTP {
		t.Fatalf("after enrolment Authenticate = %+v, %v; want a full session", p, err)
	}
	if u, _ := f.st.User(bg, "jane"); u.EnrolPending || u.RecoveryCodesLeft != RecoveryCodes {
		t.Errorf("user after enrolment = %+v", u)
	}
	// The code that enrolled is used up; the password alone no longer works;
	// the next step's code and a recovery code do.
	if _, err := f.st.Login(bg, LoginRequest{User: "jane", Password: c.Password, TOTP: code}); !errors.Is(err, ErrSignInFailed) {
		t.Errorf("sign-in with the enrolment code = %v, want ErrSignInFailed (replay)", err)
	}
	if _, err := f.st.Login(bg, LoginRequest{User: "jane", Password: c.Password}); !errors.Is(err, ErrSignInFailed) {
		t.Errorf("password-only sign-in after enrolment = %v, want ErrSignInFailed", err)
	}
	f.clk.Add(totpPeriod * time.Second)
	next, _ := TOTPCode(e1.TOTPSecret, f.clk.Now())
	if _, err := f.st.Login(bg, LoginRequest{User: "jane", Password: c.Password, TOTP: next}); err != nil {
		t.Errorf("TOTP sign-in after enrolment: %v", err)
	}
	if _, err := f.st.Login(bg, LoginRequest{User: "jane", Password: c.Password, RecoveryCode: codes[3]}); err != nil {
		t.Errorf("recovery-code sign-in after enrolment: %v", err)
	}
	// A full session cannot enrol.
	if _, err := f.st.BeginEnrolment(bg, p); !errors.Is(err, ErrNotEnrolling) {
		t.Errorf("BeginEnrolment of a full session = %v, want ErrNotEnrolling", err)
	}
}

// TestEnrolmentRaces: of two enrolment sessions, the first to finish wins
// and ends the other; a reset for enrolment starts over.
func TestEnrolmentRaces(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: fastRetry})
	f.add(t, "root", RoleAdmin)
	c := f.add(t, "olga", RoleOfficer)
	if _, err := f.st.Login(bg, LoginRequest{User: "olga", Password: c.Password}); !errors.Is(err, ErrSignInFailed) {
		t.Fatalf("password-only sign-in of an enrolled user = %v, want ErrSignInFailed", err)
	}
	r, err := f.st.ResetUserForEnrolment(bg, cli, "olga")
	if err != nil || r.TOTPSecret != "" || len(r.RecoveryCodes) != 0 || !r.User.EnrolPending {
		t.Fatalf("ResetUserForEnrolment = %+v, %v", r, err)
	}
	var ps []Principal
	for range 2 {
		ns, err := f.st.Login(bg, LoginRequest{User: "olga", Password: r.Password})
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.st.Authenticate(bg, ns.Token)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	e0, err := f.st.BeginEnrolment(bg, ps[0])
	if err != nil {
		t.Fatal(err)
	}
	e1, err := f.st.BeginEnrolment(bg, ps[1])
	if err != nil || e1.TOTPSecret == e0.TOTPSecret {
		t.Fatalf("two enrolment sessions share a secret: %+v %+v %v", e0, e1, err)
	}
	code, _ := TOTPCode(e1.TOTPSecret, f.clk.Now())
	if _, err := f.st.FinishEnrolment(bg, ps[1], "cli:test", code); err != nil {
		t.Fatal(err)
	}
	code, _ = TOTPCode(e0.TOTPSecret, f.clk.Now())
	if _, err := f.st.FinishEnrolment(bg, ps[0], "cli:test", code); !errors.Is(err, ErrNoSession) {
		t.Errorf("FinishEnrolment of the other session = %v, want ErrNoSession (it ended)", err)
	}
	if sessions, _ := f.st.Sessions(bg, "olga"); len(sessions) != 1 || sessions[0].Method != MethodTOTP {
		t.Errorf("sessions after enrolment = %+v, want the one that enrolled", sessions)
	}
	// Reset for enrolment again: sessions end, and the user enrols anew.
	if _, err := f.st.ResetUserForEnrolment(bg, cli, "olga"); err != nil {
		t.Fatal(err)
	}
	if sessions, _ := f.st.Sessions(bg, "olga"); len(sessions) != 0 {
		t.Errorf("sessions after reset = %+v", sessions)
	}
	if u, _ := f.st.User(bg, "olga"); !u.EnrolPending || u.RecoveryCodesLeft != 0 {
		t.Errorf("user after reset for enrolment = %+v", u)
	}
	// An ordinary reset ends enrolment: the user gets a TOTP secret again.
	r, err = f.st.ResetUser(bg, cli, "olga", "")
	if err != nil || r.TOTPSecret == "" || r.User.EnrolPending {
		t.Fatalf("ResetUser = %+v, %v", r, err)
	}
	if _, err := f.st.Login(bg, LoginRequest{User: "olga", Password: r.Password, TOTP: f.code(t, r)}); err != nil {
		t.Errorf("TOTP sign-in after an ordinary reset: %v", err)
	}
}

// TestEnrolmentSessionRefusedByAPI: an enrolment session's token gets 403
// from every API endpoint.
func TestEnrolmentSessionRefusedByAPI(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	s.start(t)
	c, err := s.st.AddUser(bg, cli, NewUser{Name: "root", Role: RoleAdmin, Enrol: true})
	if err != nil {
		t.Fatal(err)
	}
	resp, data := s.call(t, "POST", "/api/v1/session", "", LoginBody{User: "root", Password: c.Password}, nil)
	var lr LoginReply
	if resp.StatusCode != 200 || json.Unmarshal(data, &lr) != nil {
		t.Fatalf("password-only sign-in to enrol over HTTPS: %s %s", resp.Status, data)
	}
	tok := lr.Token
	for _, path := range []string{"/api/v1/me", "/api/v1/users", "/api/v1/sessions"} {
		if resp, data := s.call(t, "GET", path, tok, nil, nil); resp.StatusCode != 403 || !strings.Contains(string(data), "second factor") {
			t.Errorf("GET %s with an enrolment session: %s %s, want 403", path, resp.Status, data)
		}
	}
	if resp, _ := s.call(t, "POST", "/api/v1/users", tok, AddUserBody{Name: "eve", Role: RoleAdmin}, nil); resp.StatusCode != 403 {
		t.Errorf("add user with an enrolment session: %s, want 403", resp.Status)
	}
	if _, err := s.st.User(bg, "eve"); !errors.Is(err, ErrNoUser) {
		t.Errorf("an enrolment session added a user (User(eve) = %v)", err)
	}
}
