// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

var bg = context.Background()

func TestLoginTOTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: fastRetry})
	c := f.add(t, "alice", RoleOfficer)
	f.rec.take()
	ns, err := f.login(t, c, "192.0.2.1")
	if err != nil {
		t.Fatalf("Login = %v", err)
	}
	if _, err := ParseToken(ns.Token); err != nil {
		t.Errorf("token %q does not parse: %v", ns.Token, err)
	}
	if ns.CSRF != "" {
		t.Errorf("bearer session has a CSRF token")
	}
	p, err := f.st.Authenticate(bg, ns.Token)
	if err != nil {
		t.Fatalf("Authenticate = %v", err)
	}
	if p.User != "alice" || p.Role != RoleOfficer || p.Session.ID != ns.Session.ID || p.Session.Method != MethodTOTP {
		t.Errorf("Authenticate = %+v", p)
	}
	ev := f.rec.take()
	if len(ev) != 1 || ev[0].Action != ActionLogin || ev[0].Outcome != OutcomeOK || ev[0].User != "alice" ||
		ev[0].Role != RoleOfficer || ev[0].Remote != "192.0.2.1" || ev[0].Session != ns.Session.ID || ev[0].Method != MethodTOTP {
		t.Errorf("events = %+v, want one login ok", ev)
	}
	noSecrets(t, ev, c.Password, ns.Token, c.TOTPSecret)
}

// TestLoginTOTPReplay: a code (time step) that was accepted is refused the
// second time, also a code of an earlier step within the skew.
func TestLoginTOTPReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: fastRetry})
	c := f.add(t, "alice", RoleUser, "alice@example.com")
	code := f.code(t, c)
	req := LoginRequest{User: "alice", Password: c.Password, TOTP: code, Remote: "192.0.2.1"}
	if _, err := f.st.Login(bg, req); err != nil {
		t.Fatalf("first Login = %v", err)
	}
	f.rec.take()
	if _, err := f.st.Login(bg, req); !errors.Is(err, ErrSignInFailed) {
		t.Fatalf("replayed Login = %v, want ErrSignInFailed", err)
	}
	if ev := f.rec.take(); len(ev) != 1 || ev[0].Outcome != OutcomeFail || ev[0].Reason != ReasonTOTPReplay {
		t.Errorf("events = %+v, want a totp-replay failure", ev)
	}
	// The previous step's code is within the skew but older than the used
	// step: refused too.
	prev, _ := TOTPCode(c.TOTPSecret, f.clk.Now().Add(-totpPeriod*time.Second))
	req.TOTP = prev
	if _, err := f.st.Login(bg, req); !errors.Is(err, ErrSignInFailed) {
		t.Errorf("Login with the previous step = %v, want ErrSignInFailed", err)
	}
	// The next step is fresh.
	f.clk.Add(totpPeriod * time.Second)
	req.TOTP = f.code(t, c)
	if _, err := f.st.Login(bg, req); err != nil {
		t.Errorf("Login in the next step = %v", err)
	}
}

func TestLoginTOTPSkew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		steps int
		ok    bool
	}{{-2, false}, {-1, true}, {0, true}, {1, true}, {2, false}} {
		f := newFixture(t, StateOptions{Lockout: fastRetry})
		c := f.add(t, "alice", RoleAdmin)
		code, _ := TOTPCode(c.TOTPSecret, f.clk.Now().Add(time.Duration(tc.steps)*totpPeriod*time.Second))
		_, err := f.st.Login(bg, LoginRequest{User: "alice", Password: c.Password, TOTP: code, Remote: "192.0.2.1"})
		if (err == nil) != tc.ok {
			t.Errorf("Login with a code %d steps off = %v, want ok %v", tc.steps, err, tc.ok)
		}
	}
}

func TestLoginRecoveryCode(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: fastRetry})
	c := f.add(t, "alice", RoleAuditor)
	if len(c.RecoveryCodes) != RecoveryCodes {
		t.Fatalf("%d recovery codes, want %d", len(c.RecoveryCodes), RecoveryCodes)
	}
	f.rec.take()
	req := LoginRequest{User: "alice", Password: c.Password, RecoveryCode: c.RecoveryCodes[3], Remote: "192.0.2.1"}
	ns, err := f.st.Login(bg, req)
	if err != nil {
		t.Fatalf("Login with a recovery code = %v", err)
	}
	if ns.Session.Method != MethodRecovery {
		t.Errorf("method = %q", ns.Session.Method)
	}
	u, _ := f.st.User(bg, "alice")
	if u.RecoveryCodesLeft != RecoveryCodes-1 {
		t.Errorf("recovery codes left = %d, want %d", u.RecoveryCodesLeft, RecoveryCodes-1)
	}
	if _, err := f.st.Login(bg, req); !errors.Is(err, ErrSignInFailed) {
		t.Errorf("second use of a recovery code = %v, want ErrSignInFailed", err)
	}
	// Typed in lower case without dashes, another code works.
	req.RecoveryCode = "  " + lowerNoDash(c.RecoveryCodes[0])
	if _, err := f.st.Login(bg, req); err != nil {
		t.Errorf("Login with a retyped recovery code = %v", err)
	}
	ev := f.rec.take()
	noSecrets(t, ev, append([]string{c.Password}, c.RecoveryCodes...)...)
	if len(ev) != 3 || ev[1].Reason != ReasonRecovery || ev[2].Method != MethodRecovery {
		t.Errorf("events = %+v", ev)
	}
}

func lowerNoDash(s string) string {
	var out []byte
	for _, c := range []byte(s) {
		if c == '-' {
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		out = append(out, c)
	}
	return string(out)
}

// TestLoginFailures: every wrong factor and every unusable account gets the
// same ErrSignInFailed; the audit event says which it was.
func TestLoginFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: fastRetry})
	alice := f.add(t, "alice", RoleAdmin)
	f.add(t, "root", RoleAdmin) // so alice can be disabled
	exp, err := f.st.AddUser(bg, cli, NewUser{Name: "tax", Role: RoleAuditor, Expires: f.clk.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	f.rec.take()
	cases := []struct {
		name   string
		req    func() LoginRequest
		reason Reason
		user   string
		before func()
	}{
		{"wrong password", func() LoginRequest {
			return LoginRequest{User: "alice", Password: "wrong password!", TOTP: f.code(t, alice)}
		}, ReasonPassword, "alice", nil},
		{"wrong totp", func() LoginRequest {
			return LoginRequest{User: "alice", Password: alice.Password, TOTP: "000000"}
		}, ReasonTOTP, "alice", nil},
		{"malformed totp", func() LoginRequest {
			return LoginRequest{User: "alice", Password: alice.Password, TOTP: "12345"}
		}, ReasonTOTP, "alice", nil},
		{"no second factor", func() LoginRequest {
			return LoginRequest{User: "alice", Password: alice.Password}
		}, ReasonNoSecondFactor, "alice", nil},
		{"wrong recovery code", func() LoginRequest {
			return LoginRequest{User: "alice", Password: alice.Password, RecoveryCode: "AAAA-AAAA-AAAA-AAAA"}
		}, ReasonRecovery, "alice", nil},
		{"unknown user", func() LoginRequest {
			return LoginRequest{User: "my-secret-password", Password: alice.Password, TOTP: f.code(t, alice)}
		}, ReasonUnknownUser, "", nil},
		{"expired auditor", func() LoginRequest {
			return LoginRequest{User: "tax", Password: exp.Password, TOTP: f.code(t, exp)}
		}, ReasonExpired, "tax", func() { f.clk.Add(2 * time.Hour) }},
		{"disabled", func() LoginRequest {
			return LoginRequest{User: "alice", Password: alice.Password, TOTP: f.code(t, alice)}
		}, ReasonDisabled, "alice", func() {
			if err := f.st.DisableUser(bg, cli, "alice"); err != nil {
				t.Fatal(err)
			}
			f.rec.take()
		}},
	}
	for _, tc := range cases {
		if tc.before != nil {
			tc.before()
		}
		req := tc.req()
		req.Remote = "192.0.2.7"
		_, err := f.st.Login(bg, req)
		if !errors.Is(err, ErrSignInFailed) || err.Error() != ErrSignInFailed.Error() {
			t.Errorf("%s: Login = %v, want exactly ErrSignInFailed", tc.name, err)
		}
		ev := f.rec.take()
		if len(ev) != 1 || ev[0].Action != ActionLogin || ev[0].Outcome != OutcomeFail || ev[0].Reason != tc.reason ||
			ev[0].User != tc.user || ev[0].Remote != "192.0.2.7" {
			t.Errorf("%s: events = %+v, want one failure for %q with reason %s", tc.name, ev, tc.user, tc.reason)
		}
		noSecrets(t, ev, alice.Password, req.TOTP, "my-secret-password")
	}
}

// TestLoginBackoff: after a failure, the next attempt is refused unchecked
// until the backoff has passed; the backoff doubles per failure.
func TestLoginBackoff(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: LockoutOptions{BaseDelay: time.Second, MaxDelay: 4 * time.Second, UserThreshold: 100, AddressThreshold: 100}})
	f.clk.tick = 0
	c := f.add(t, "alice", RoleAdmin)
	bad := LoginRequest{User: "alice", Password: "not the password", TOTP: "000000", Remote: "192.0.2.1"}
	var waits []time.Duration
	for range 4 {
		if _, err := f.st.Login(bg, bad); !errors.Is(err, ErrSignInFailed) {
			t.Fatalf("Login = %v, want ErrSignInFailed", err)
		}
		_, err := f.st.Login(bg, bad)
		var te *ThrottledError
		if !errors.As(err, &te) || te.Locked {
			t.Fatalf("immediate retry = %v, want backoff", err)
		}
		waits = append(waits, te.RetryAfter)
		f.clk.Add(te.RetryAfter)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Errorf("backoff after %d failures = %v, want %v", i+1, waits[i], want[i])
		}
	}
	// A right attempt after the backoff succeeds and forgives the user.
	if _, err := f.login(t, c, "192.0.2.1"); err != nil {
		t.Fatalf("Login after backoff = %v", err)
	}
	ev := f.rec.take()
	throttled := 0
	for _, e := range ev {
		if e.Outcome == OutcomeThrottled {
			throttled++
			if e.User != "alice" || e.RetryAfter <= 0 {
				t.Errorf("throttled event = %+v", e)
			}
		}
	}
	if throttled != 4 {
		t.Errorf("%d throttled events, want 4", throttled)
	}
}

// TestLoginLockoutUser: the threshold'th failure locks the user name out for
// the period, whatever the address; then it works again.
func TestLoginLockoutUser(t *testing.T) {
	t.Parallel()
	lo := LockoutOptions{BaseDelay: time.Second, MaxDelay: time.Second, UserThreshold: 3, AddressThreshold: 100, Period: 10 * time.Minute}
	f := newFixture(t, StateOptions{Lockout: lo})
	c := f.add(t, "alice", RoleAdmin)
	f.rec.take()
	for i := range 3 {
		bad := LoginRequest{User: "alice", Password: "not the password", TOTP: "000000", Remote: "192.0.2." + string(rune('1'+i))}
		if _, err := f.st.Login(bg, bad); !errors.Is(err, ErrSignInFailed) {
			t.Fatalf("failure %d: Login = %v", i+1, err)
		}
		f.clk.Add(2 * time.Second)
	}
	ev := f.rec.take()
	if n := len(ev); n != 4 || ev[3].Action != ActionLockout || ev[3].Outcome != OutcomeLocked || ev[3].User != "alice" ||
		ev[3].Target != "" || ev[3].RetryAfter != lo.Period {
		t.Fatalf("events = %+v, want 3 failures and a user lockout", ev)
	}
	// Locked: even the right factors from another address are refused.
	_, err := f.login(t, c, "198.51.100.1")
	var te *ThrottledError
	if !errors.As(err, &te) || !te.Locked {
		t.Fatalf("Login while locked = %v, want a lockout", err)
	}
	if ev := f.rec.take(); len(ev) != 1 || ev[0].Outcome != OutcomeLocked || ev[0].Action != ActionLogin {
		t.Errorf("events = %+v, want one locked login", ev)
	}
	f.clk.Add(lo.Period)
	if _, err := f.login(t, c, "198.51.100.1"); err != nil {
		t.Errorf("Login after the lockout = %v", err)
	}
}

// TestLoginLockoutAddress: failures under many names from one address lock
// that address (an IPv6 /64 counts as one), not others.
func TestLoginLockoutAddress(t *testing.T) {
	t.Parallel()
	lo := LockoutOptions{BaseDelay: time.Second, MaxDelay: time.Second, UserThreshold: 100, AddressThreshold: 4, Period: 10 * time.Minute}
	f := newFixture(t, StateOptions{Lockout: lo})
	c := f.add(t, "alice", RoleAdmin)
	f.rec.take()
	for i := range 4 {
		bad := LoginRequest{User: "guess" + string(rune('a'+i)), Password: "x", TOTP: "000000", Remote: "2001:db8::" + string(rune('1'+i))}
		if _, err := f.st.Login(bg, bad); !errors.Is(err, ErrSignInFailed) {
			t.Fatalf("failure %d: Login = %v", i+1, err)
		}
		f.clk.Add(2 * time.Second)
	}
	ev := f.rec.take()
	if len(ev) != 5 || ev[4].Action != ActionLockout || ev[4].Target != "2001:db8::4" || ev[4].User != "" {
		t.Fatalf("events = %+v, want 4 failures and an address lockout", ev)
	}
	_, err := f.login(t, c, "2001:db8::99")
	var te *ThrottledError
	if !errors.As(err, &te) || !te.Locked {
		t.Errorf("Login from the locked /64 = %v, want a lockout", err)
	}
	if _, err := f.login(t, c, "2001:db8:1::1"); err != nil {
		t.Errorf("Login from another /64 = %v", err)
	}
}

// TestLoginSuccessKeepsAddressCount: a success takes back only its own
// attempt from the address counter, so one valid account cannot be used to
// reset the address's failures.
func TestLoginSuccessKeepsAddressCount(t *testing.T) {
	t.Parallel()
	lo := LockoutOptions{BaseDelay: time.Second, MaxDelay: time.Second, UserThreshold: 100, AddressThreshold: 3, Period: 10 * time.Minute}
	f := newFixture(t, StateOptions{Lockout: lo})
	c := f.add(t, "mallory", RoleUser, "m@example.com")
	for i := range 3 {
		if _, err := f.st.Login(bg, LoginRequest{User: "victim", Password: "x", TOTP: "000000", Remote: "192.0.2.9"}); !errors.Is(err, ErrSignInFailed) {
			t.Fatalf("failure %d: %v", i, err)
		}
		f.clk.Add(2 * time.Second)
		if i < 2 {
			if _, err := f.login(t, c, "192.0.2.9"); err != nil {
				t.Fatalf("success %d: %v", i, err)
			}
			f.clk.Add(totpPeriod * time.Second)
		}
	}
	_, err := f.st.Login(bg, LoginRequest{User: "victim", Password: "x", TOTP: "000000", Remote: "192.0.2.9"})
	var te *ThrottledError
	if !errors.As(err, &te) || !te.Locked {
		t.Errorf("Login after 3 failures interleaved with successes = %v, want the address locked", err)
	}
}

// TestLoginAuditFailureRollsBack: a sign-in that cannot be audited makes no
// session.
func TestLoginAuditFailureRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: fastRetry})
	c := f.add(t, "alice", RoleAdmin)
	f.rec.fail = errors.New("audit log unavailable")
	if _, err := f.login(t, c, "192.0.2.1"); err == nil || errors.Is(err, ErrSignInFailed) {
		t.Fatalf("Login with a failing audit = %v, want an internal error", err)
	}
	list, err := f.st.Sessions(bg, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("sessions after a failed audit = %+v, want none", list)
	}
}

func TestCheckTOTPTable(t *testing.T) {
	t.Parallel()
	secret, _, err := newTOTP("sealmail", "x")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_015, 0)
	cur := uint64(now.Unix() / totpPeriod)
	code, _ := TOTPCode(secret, now)
	for _, tc := range []struct {
		code   string
		last   uint64
		step   uint64
		reason Reason
	}{
		{code, 0, cur, ""},
		{code, cur - 1, cur, ""},
		{code, cur, 0, ReasonTOTPReplay},
		{code, cur + 1, 0, ReasonTOTPReplay},
		{"", 0, 0, ReasonTOTP},
		{"1234567", 0, 0, ReasonTOTP},
		{"abcdef", 0, 0, ReasonTOTP},
	} {
		step, reason := checkTOTP(secret, tc.code, now, tc.last)
		if step != tc.step || reason != tc.reason {
			t.Errorf("checkTOTP(%q, last %d) = %d, %q; want %d, %q", tc.code, tc.last, step, reason, tc.step, tc.reason)
		}
	}
}

// TestLoginConcurrentGuesses: parallel attempts against one user name are
// counted before they are checked, so only one of them is checked; the
// others are refused by the backoff.
func TestLoginConcurrentGuesses(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: LockoutOptions{BaseDelay: time.Minute, MaxDelay: time.Minute, UserThreshold: 100, AddressThreshold: 100}})
	f.clk.tick = 0
	f.add(t, "alice", RoleAdmin)
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			// Different addresses: only the user name's counter is shared.
			_, err := f.st.Login(bg, LoginRequest{User: "alice", Password: "guess", TOTP: "000000", Remote: fmt.Sprintf("192.0.2.%d", i+1)})
			errs <- err
		}()
	}
	checked, throttled := 0, 0
	for range n {
		err := <-errs
		var te *ThrottledError
		switch {
		case errors.Is(err, ErrSignInFailed):
			checked++
		case errors.As(err, &te):
			throttled++
		default:
			t.Errorf("Login = %v", err)
		}
	}
	if checked != 1 || throttled != n-1 {
		t.Errorf("%d attempts checked, %d throttled; want 1 and %d", checked, throttled, n-1)
	}
}
