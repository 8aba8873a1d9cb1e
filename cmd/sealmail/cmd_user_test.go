// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealmail/sealmail/access"
)

// runUser runs `sealmail user ARGS` in this process.
func runUser(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"user"}, args...), strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// signInWith checks that cred works: password and a TOTP code sign in.
func signInWith(t *testing.T, state, name, password, secret string) error {
	t.Helper()
	st, err := access.OpenState(state, access.StateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	code, err := access.TOTPCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Login(context.Background(), access.LoginRequest{User: name, Password: password, TOTP: code, Remote: "192.0.2.1"})
	return err
}

func TestUserCommand(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "state")

	out, errs, code := runUser(t, "", "add", "root", "--state", state, "--role", "admin", "--json")
	if code != 0 {
		t.Fatalf("user add: exit %d: %s", code, errs)
	}
	var cred access.Credentials
	if err := json.Unmarshal([]byte(out), &cred); err != nil {
		t.Fatalf("user add --json printed %q: %v", out, err)
	}
	var raw map[string]any
	json.Unmarshal([]byte(out), &raw)
	if uri, _ := raw["totp_uri"].(string); !strings.HasPrefix(uri, "otpauth://totp/sealmail:root?") {
		t.Errorf("totp_uri = %q", raw["totp_uri"])
	}
	if !cred.Generated || cred.Password == "" || len(cred.RecoveryCodes) != 10 || cred.User.Role != access.RoleAdmin {
		t.Errorf("credentials = %+v", cred)
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory: %v, mode %v", err, fi.Mode())
	}
	if err := signInWith(t, state, "root", cred.Password, cred.TOTPSecret); err != nil {
		t.Errorf("sign in with the printed credentials: %v", err)
	}

	// A password from stdin is not printed back.
	out, errs, code = runUser(t, "correct horse battery staple\n", "add", "jane", "--state", state, "--role", "user",
		"--address", "jane@example.com", "--password-stdin", "--json")
	if code != 0 {
		t.Fatalf("user add --password-stdin: exit %d: %s", code, errs)
	}
	raw = nil
	json.Unmarshal([]byte(out), &raw)
	if _, ok := raw["password"]; ok || strings.Contains(out, "correct horse") {
		t.Errorf("user add --password-stdin printed the password: %s", out)
	}
	var jane access.Credentials
	json.Unmarshal([]byte(out), &jane)
	if err := signInWith(t, state, "jane", "correct horse battery staple", jane.TOTPSecret); err != nil {
		t.Errorf("sign in with the stdin password: %v", err)
	}

	// Human output.
	out, _, code = runUser(t, "", "add", "tax", "--state", state, "--role", "auditor", "--scope", "from:acme.example", "--expires", "2031-06-30")
	if code != 0 || !strings.Contains(out, "password: ") || !strings.Contains(out, "otpauth://totp/") || strings.Count(out, "\n  ") < 12 {
		t.Errorf("user add (text): exit %d\n%s", code, out)
	}

	if _, _, code := runUser(t, "", "disable", "jane", "--state", state); code != 0 {
		t.Errorf("user disable: exit %d", code)
	}
	out, _, code = runUser(t, "", "list", "--state", state, "--json")
	var users []access.User
	if code != 0 || json.Unmarshal([]byte(out), &users) != nil || len(users) != 3 {
		t.Fatalf("user list --json: exit %d %s", code, out)
	}
	if users[0].Name != "jane" || !users[0].Disabled || users[2].Name != "tax" || users[2].Scope != "from:acme.example" ||
		!users[2].Expires.Equal(time.Date(2031, 7, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("users = %+v", users)
	}
	out, _, _ = runUser(t, "", "list", "--state", state)
	if !strings.Contains(out, "jane") || !strings.Contains(out, "disabled") || !strings.Contains(out, "NAME") {
		t.Errorf("user list:\n%s", out)
	}

	out, errs, code = runUser(t, "", "reset", "root", "--state", state, "--json")
	var reset access.Credentials
	if code != 0 || json.Unmarshal([]byte(out), &reset) != nil || reset.Password == cred.Password || reset.TOTPSecret == cred.TOTPSecret {
		t.Fatalf("user reset: exit %d %s %s", code, out, errs)
	}
	if err := signInWith(t, state, "root", cred.Password, cred.TOTPSecret); err == nil {
		t.Errorf("old credentials work after reset")
	}
	if _, _, code := runUser(t, "", "enable", "jane", "--state", state); code != 0 {
		t.Errorf("user enable: exit %d", code)
	}
}

func TestUserCommandErrors(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "state")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"add", "x", "--role", "root"}, 2, "role"},
		{[]string{"add", "x"}, 2, "role"},
		{[]string{"add", "x", "--role", "user"}, 2, "--address"},
		{[]string{"add", "x", "--role", "admin", "--expires", "tomorrow"}, 2, "--expires"},
		{[]string{"add", "x", "--role", "admin", "--password-stdin"}, 2, "empty"},
		{[]string{"disable", "ghost"}, exitNotFound, "no such user"},
	} {
		_, errs, code := runUser(t, "", append(tc.args, "--state", state)...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("user %v: exit %d %q, want exit %d mentioning %q", tc.args, code, errs, tc.code, tc.msg)
		}
	}
	open := filepath.Join(t.TempDir(), "open")
	os.Mkdir(open, 0o755)
	os.Chmod(open, 0o755)
	_, errs, code := runUser(t, "", "list", "--state", open)
	if code != 1 || !strings.Contains(errs, "chmod 700 "+open) {
		t.Errorf("user list on a 0755 state directory: exit %d %q, want the chmod fix named", code, errs)
	}
}
