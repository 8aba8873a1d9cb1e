// SPDX-License-Identifier: Apache-2.0

package access

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSessionIdleTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: fastRetry})
	c := f.add(t, "alice", RoleAdmin)
	ns, err := f.login(t, c, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	// Used every 20 minutes, a session with 30 minutes idle timeout lives on.
	for range 3 {
		f.clk.Add(20 * time.Minute)
		if _, err := f.st.Authenticate(bg, ns.Token); err != nil {
			t.Fatalf("Authenticate after 20 min = %v", err)
		}
	}
	f.clk.Add(30 * time.Minute)
	if _, err := f.st.Authenticate(bg, ns.Token); !errors.Is(err, ErrNoSession) {
		t.Errorf("Authenticate after 30 idle minutes = %v, want ErrNoSession", err)
	}
	if list, _ := f.st.Sessions(bg, ""); len(list) != 0 {
		t.Errorf("idle session still listed: %+v", list)
	}
}

func TestSessionAbsoluteTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: fastRetry, Sessions: SessionOptions{Idle: time.Hour, Absolute: 3 * time.Hour}})
	c := f.add(t, "alice", RoleAdmin)
	ns, err := f.login(t, c, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if want := ns.Session.Created.Add(3 * time.Hour); !ns.Session.Expires.Equal(want) {
		t.Errorf("expires = %v, want %v", ns.Session.Expires, want)
	}
	for range 5 {
		f.clk.Add(30 * time.Minute)
		if _, err := f.st.Authenticate(bg, ns.Token); err != nil {
			t.Fatalf("Authenticate = %v", err)
		}
	}
	f.clk.Add(30 * time.Minute)
	if _, err := f.st.Authenticate(bg, ns.Token); !errors.Is(err, ErrNoSession) {
		t.Errorf("Authenticate after the absolute timeout = %v, want ErrNoSession", err)
	}
}

// TestSessionAuditorExpiry: an auditor's session ends at the account's
// expiry even if the session would last longer.
func TestSessionAuditorExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: fastRetry})
	c, err := f.st.AddUser(bg, cli, NewUser{Name: "tax", Role: RoleAuditor, Expires: f.clk.Now().Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := f.login(t, c, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if !ns.Session.Expires.Equal(c.User.Expires) {
		t.Errorf("session expires %v, want the account's expiry %v", ns.Session.Expires, c.User.Expires)
	}
	f.clk.Add(10 * time.Minute)
	if _, err := f.st.Authenticate(bg, ns.Token); !errors.Is(err, ErrNoSession) {
		t.Errorf("Authenticate after the auditor's expiry = %v, want ErrNoSession", err)
	}
}

func TestSessionsRevokeAndSignOut(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: fastRetry})
	a := f.add(t, "alice", RoleOfficer)
	b := f.add(t, "bob", RoleOfficer)
	s1, err := f.login(t, a, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Add(totpPeriod * time.Second)
	s2, err := f.login(t, a, "192.0.2.2")
	if err != nil {
		t.Fatal(err)
	}
	sb, err := f.login(t, b, "192.0.2.3")
	if err != nil {
		t.Fatal(err)
	}
	list, err := f.st.Sessions(bg, "alice")
	if err != nil || len(list) != 2 || list[0].ID != s1.Session.ID || list[1].ID != s2.Session.ID {
		t.Fatalf("Sessions(alice) = %+v, %v", list, err)
	}
	if all, _ := f.st.Sessions(bg, ""); len(all) != 3 {
		t.Errorf("Sessions() = %d, want 3", len(all))
	}
	f.rec.take()
	// Bob cannot revoke alice's session by id.
	if err := f.st.RevokeSession(bg, Actor{User: "bob"}, s1.Session.ID, "bob"); !errors.Is(err, ErrNoSuchSession) {
		t.Errorf("RevokeSession(other's) = %v, want ErrNoSuchSession", err)
	}
	if err := f.st.RevokeSession(bg, Actor{User: "alice", Role: RoleOfficer, Remote: "192.0.2.2"}, s1.Session.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Authenticate(bg, s1.Token); !errors.Is(err, ErrNoSession) {
		t.Errorf("revoked session = %v, want ErrNoSession", err)
	}
	p, err := f.st.Authenticate(bg, s2.Token)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.SignOut(bg, p, "192.0.2.2"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Authenticate(bg, s2.Token); !errors.Is(err, ErrNoSession) {
		t.Errorf("signed-out session = %v, want ErrNoSession", err)
	}
	if _, err := f.st.Authenticate(bg, sb.Token); err != nil {
		t.Errorf("bob's session = %v", err)
	}
	ev := f.rec.take()
	if len(ev) != 2 || ev[0].Action != ActionSessionRevoke || ev[0].Session != s1.Session.ID || ev[0].Target != "alice" ||
		ev[1].Action != ActionLogout || ev[1].Session != s2.Session.ID || ev[1].User != "alice" {
		t.Errorf("events = %+v", ev)
	}
	noSecrets(t, ev, s1.Token, s2.Token)
}

func TestParseToken(t *testing.T) {
	t.Parallel()
	good := newToken()
	if b, err := ParseToken(good); err != nil || len(b) != 32 {
		t.Fatalf("ParseToken(new) = %x, %v", b, err)
	}
	for _, s := range []string{
		"", "sm1_", good[:len(good)-1], good + "A", "sm2_" + good[4:], "SM1_" + good[4:],
		"sm1_" + strings.Repeat("!", 43), "sm1_" + strings.Repeat("A", 42) + "B", // non-canonical last character
		"Bearer " + good,
	} {
		if _, err := ParseToken(s); !errors.Is(err, ErrNoSession) {
			t.Errorf("ParseToken(%q) = %v, want ErrNoSession", s, err)
		}
	}
}

func TestCSRFTokenDiffers(t *testing.T) {
	t.Parallel()
	a, _ := ParseToken(newToken())
	b, _ := ParseToken(newToken())
	again := append([]byte(nil), a...)
	if csrfToken(a) == csrfToken(b) || csrfToken(a) != csrfToken(again) || len(csrfToken(a)) != 43 {
		t.Errorf("CSRF tokens do not depend on their session tokens alone")
	}
}

func TestAddressFailureKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.1", "a:192.0.2.1"},
		{"::ffff:192.0.2.1", "a:192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "a:2001:db8:1:2::/64"},
		{"2001:db8:1:2::ffff", "a:2001:db8:1:2::/64"},
		{"cli", "a:cli"},
	} {
		if got := string(addressFailureKey(tc.in)); got != tc.want {
			t.Errorf("addressFailureKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
