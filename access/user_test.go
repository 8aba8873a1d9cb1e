// SPDX-License-Identifier: Apache-2.0

package access

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestAddUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Issuer: "Example Archive"})
	c := f.add(t, "jane", RoleUser, "Jane@Example.com", "jane@example.com", "j.doe@example.org")
	if !c.Generated || len(c.Password) != 27 {
		t.Errorf("generated password %q (generated %v), want 24 characters in 4 groups", c.Password, c.Generated)
	}
	u, err := url.Parse(c.TOTPURI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != c.TOTPSecret ||
		u.Query().Get("issuer") != "Example Archive" || u.Query().Get("digits") != "6" || u.Query().Get("period") != "30" {
		t.Errorf("TOTP URI %q", c.TOTPURI)
	}
	if len(c.RecoveryCodes) != 10 {
		t.Errorf("%d recovery codes", len(c.RecoveryCodes))
	}
	seen := map[string]bool{}
	for _, rc := range c.RecoveryCodes {
		if len(rc) != 19 || seen[rc] {
			t.Errorf("recovery code %q malformed or repeated", rc)
		}
		seen[rc] = true
	}
	want := []string{"jane@example.com", "j.doe@example.org"}
	if strings.Join(c.User.Addresses, ",") != strings.Join(want, ",") {
		t.Errorf("addresses = %v, want %v", c.User.Addresses, want)
	}
	if ev := f.rec.take(); len(ev) != 1 || ev[0].Action != ActionUserAdd || ev[0].Target != "jane" || ev[0].Remote != "cli:test" {
		t.Errorf("events = %+v, want one user.add", ev)
	}
	if _, err := f.st.AddUser(bg, cli, NewUser{Name: "jane", Role: RoleAdmin}); !errors.Is(err, ErrUserExists) {
		t.Errorf("second AddUser(jane) = %v, want ErrUserExists", err)
	}
	chosen, err := f.st.AddUser(bg, cli, NewUser{Name: "bob", Role: RoleOfficer, Password: "correct horse battery"})
	if err != nil || chosen.Generated || chosen.Password != "" {
		t.Errorf("AddUser with a password = %+v, %v", chosen, err)
	}
	list, err := f.st.Users(bg)
	if err != nil || len(list) != 2 || list[0].Name != "bob" || list[1].Name != "jane" {
		t.Errorf("Users = %+v, %v", list, err)
	}
}

func TestAddUserInvalid(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{})
	for _, nu := range []NewUser{
		{Name: "", Role: RoleAdmin},
		{Name: "Alice", Role: RoleAdmin},
		{Name: "-x", Role: RoleAdmin},
		{Name: strings.Repeat("a", 65), Role: RoleAdmin},
		{Name: "a b", Role: RoleAdmin},
		{Name: "alice", Role: "root"},
		{Name: "alice", Role: RoleUser},
		{Name: "alice", Role: RoleUser, Addresses: []string{"not an address"}},
		{Name: "alice", Role: RoleUser, Addresses: []string{"Alice <a@example.com>"}},
		{Name: "alice", Role: RoleAdmin, Scope: "from:x@example.com"},
		{Name: "alice", Role: RoleOfficer, Expires: time.Now().Add(time.Hour)},
		{Name: "alice", Role: RoleAuditor, Expires: f.clk.Now().Add(-time.Second)},
		{Name: "alice", Role: RoleAuditor, Scope: "(unbalanced"},
		{Name: "alice", Role: RoleAdmin, Password: "short"},
		{Name: "alice", Role: RoleAdmin, Password: strings.Repeat("x", MaxPasswordLen+1)},
	} {
		if _, err := f.st.AddUser(bg, cli, nu); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddUser(%+v) = %v, want ErrInvalid", nu, err)
		}
	}
	if list, _ := f.st.Users(bg); len(list) != 0 {
		t.Errorf("invalid adds left users: %+v", list)
	}
	c, err := f.st.AddUser(bg, cli, NewUser{Name: "tax.auditor", Role: RoleAuditor, Scope: "from:acme.example", Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil || c.User.Scope != "from:acme.example" || c.User.Expires.Year() != 2030 {
		t.Errorf("AddUser(auditor with scope) = %+v, %v", c.User, err)
	}
}

func TestDisableEnableUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: fastRetry})
	f.add(t, "root", RoleAdmin)
	c := f.add(t, "alice", RoleAdmin)
	ns, err := f.login(t, c, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	f.rec.take()
	if err := f.st.DisableUser(bg, cli, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Authenticate(bg, ns.Token); !errors.Is(err, ErrNoSession) {
		t.Errorf("Authenticate after disable = %v, want ErrNoSession", err)
	}
	if u, _ := f.st.User(bg, "alice"); !u.Disabled {
		t.Errorf("alice not disabled")
	}
	// root is now the last enabled admin.
	if err := f.st.DisableUser(bg, cli, "root"); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("DisableUser(last admin) = %v, want ErrLastAdmin", err)
	}
	if err := f.st.EnableUser(bg, cli, "alice"); err != nil {
		t.Fatal(err)
	}
	f.clk.Add(totpPeriod * time.Second)
	if _, err := f.login(t, c, "192.0.2.1"); err != nil {
		t.Errorf("Login after enable = %v", err)
	}
	if err := f.st.DisableUser(bg, cli, "nobody"); !errors.Is(err, ErrNoUser) {
		t.Errorf("DisableUser(nobody) = %v, want ErrNoUser", err)
	}
	ev := f.rec.take()
	if len(ev) != 3 || ev[0].Action != ActionUserDisable || ev[0].Target != "alice" || ev[1].Action != ActionUserEnable || ev[2].Action != ActionLogin {
		t.Errorf("events = %+v", ev)
	}
}

func TestResetUser(t *testing.T) {
	t.Parallel()
	lo := LockoutOptions{BaseDelay: time.Second, MaxDelay: time.Second, UserThreshold: 2, AddressThreshold: 100, Period: time.Hour}
	f := newFixture(t, StateOptions{Lockout: lo})
	old := f.add(t, "alice", RoleOfficer)
	ns, err := f.login(t, old, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	// Lock alice out.
	for range 2 {
		f.clk.Add(2 * time.Second)
		f.st.Login(bg, LoginRequest{User: "alice", Password: "wrong", TOTP: "000000", Remote: "192.0.2.1"})
	}
	f.clk.Add(2 * time.Second)
	var te *ThrottledError
	if _, err := f.login(t, old, "192.0.2.2"); !errors.As(err, &te) || !te.Locked {
		t.Fatalf("alice not locked out: %v", err)
	}
	f.rec.take()
	c, err := f.st.ResetUser(bg, cli, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Password == old.Password || c.TOTPSecret == old.TOTPSecret || c.RecoveryCodes[0] == old.RecoveryCodes[0] || !c.Generated {
		t.Errorf("reset kept a factor")
	}
	if _, err := f.st.Authenticate(bg, ns.Token); !errors.Is(err, ErrNoSession) {
		t.Errorf("old session after reset = %v, want ErrNoSession", err)
	}
	if ev := f.rec.take(); len(ev) != 1 || ev[0].Action != ActionUserReset || ev[0].Target != "alice" {
		t.Errorf("events = %+v", ev)
	}
	// The lockout is cleared; the old factors fail, the new ones work.
	if _, err := f.st.Login(bg, LoginRequest{User: "alice", Password: old.Password, RecoveryCode: old.RecoveryCodes[0], Remote: "192.0.2.3"}); !errors.Is(err, ErrSignInFailed) {
		t.Errorf("Login with old factors = %v, want ErrSignInFailed", err)
	}
	f.clk.Add(2 * time.Second)
	if _, err := f.login(t, c, "192.0.2.3"); err != nil {
		t.Errorf("Login with new factors = %v", err)
	}
	if _, err := f.st.ResetUser(bg, cli, "alice", "short"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ResetUser(short password) = %v, want ErrInvalid", err)
	}
}

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{})
	h1, err := f.st.hashPassword(bg, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := f.st.hashPassword(bg, "correct horse battery")
	if string(h1.Salt) == string(h2.Salt) || string(h1.Hash) == string(h2.Hash) {
		t.Errorf("two hashes of one password share salt or hash")
	}
	if h1.Alg != "argon2id" || h1.Version != 0x13 || h1.Time != cheap.Time || h1.MemoryKiB != cheap.MemoryKiB || len(h1.Salt) != 16 || len(h1.Hash) != 32 {
		t.Errorf("hash = %+v", h1)
	}
	for _, tc := range []struct {
		pw string
		ok bool
	}{{"correct horse battery", true}, {"correct horse batterY", false}, {"", false}, {strings.Repeat("x", MaxPasswordLen+1), false}} {
		ok, err := f.st.checkPassword(bg, tc.pw, h1)
		if err != nil || ok != tc.ok {
			t.Errorf("checkPassword(%.20q) = %v, %v; want %v", tc.pw, ok, err, tc.ok)
		}
	}
	bad := h1
	bad.Alg = "scrypt"
	if _, err := f.st.checkPassword(bg, "x", bad); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("checkPassword(scrypt hash) = %v, want ErrUnsupportedVersion", err)
	}
}

func TestPasswordDefaults(t *testing.T) {
	t.Parallel()
	p := PasswordParams{}.withDefaults()
	if p.Time != 3 || p.MemoryKiB != 64*1024 || p.Threads != 4 || p.Concurrency != 2 {
		t.Errorf("defaults = %+v, want RFC 9106's t=3 m=64MiB p=4", p)
	}
	// The zero StateOptions hashes with the defaults.
	st, err := OpenState(t.TempDir()+"/s", StateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := st.hashPassword(bg, "correct horse battery")
	if err != nil || h.Time != 3 || h.MemoryKiB != 64*1024 || h.Threads != 4 {
		t.Errorf("hash with default options = %+v, %v", h, err)
	}
}

// TestUserChangeAuditFailureRollsBack: a user change that cannot be audited
// does not happen.
func TestUserChangeAuditFailureRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{})
	f.add(t, "root", RoleAdmin)
	f.add(t, "jane", RoleAdmin)
	f.rec.fail = errors.New("audit log unavailable")
	if _, err := f.st.AddUser(bg, cli, NewUser{Name: "olga", Role: RoleOfficer}); err == nil {
		t.Errorf("AddUser with a failing audit succeeded")
	}
	if _, err := f.st.User(bg, "olga"); !errors.Is(err, ErrNoUser) {
		t.Errorf("user added although not audited: %v", err)
	}
	if err := f.st.DisableUser(bg, cli, "jane"); err == nil {
		t.Errorf("DisableUser with a failing audit succeeded")
	}
	if u, _ := f.st.User(bg, "jane"); u.Disabled {
		t.Errorf("user disabled although not audited")
	}
}
