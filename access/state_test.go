// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestOpenStateCreatesPrivateDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "state")
	st, err := OpenState(dir, StateOptions{Password: cheap})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o700 {
		t.Errorf("state directory mode = %04o, want 0700", m)
	}
	fi, err = os.Stat(filepath.Join(dir, DBName))
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("access.db mode = %04o, want 0600", m)
	}
}

func TestOpenStateRefusesOpenDirectory(t *testing.T) {
	t.Parallel()
	for _, mode := range []os.FileMode{0o755, 0o750, 0o701, 0o777} {
		dir := filepath.Join(t.TempDir(), "state")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		_, err := OpenState(dir, StateOptions{})
		if err == nil || !strings.Contains(err.Error(), "chmod 700 "+dir) {
			t.Errorf("OpenState(dir mode %04o) = %v, want a refusal naming chmod 700", mode, err)
		}
		if _, err := os.Stat(filepath.Join(dir, DBName)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("OpenState(dir mode %04o) created access.db", mode)
		}
	}
}

func TestOpenStateRefusesForeignOwner(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	_, err := OpenState(dir, StateOptions{})
	if err == nil || !strings.Contains(err.Error(), "chown 0 "+dir) {
		t.Errorf("OpenState(dir of uid 4242) = %v, want a refusal naming chown", err)
	}
}

func TestOpenStateRefusesFile(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "state")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenState(p, StateOptions{}); err == nil {
		t.Errorf("OpenState(file) succeeded")
	}
}

func TestOpenStateVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		key  []byte
		val  []byte
	}{
		{"newer version", keyVersion, binary.BigEndian.AppendUint32(nil, dbVersion+1)},
		{"version 0", keyVersion, binary.BigEndian.AppendUint32(nil, 0)},
		{"short version", keyVersion, []byte{1}},
		{"other kind", keyKind, []byte("something-else")},
	} {
		dir := filepath.Join(t.TempDir(), "state")
		st, err := OpenState(dir, StateOptions{Password: cheap})
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		db, err := bolt.Open(filepath.Join(dir, DBName), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(tc.key, tc.val) })
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		_, err = OpenState(dir, StateOptions{})
		if !errors.Is(err, ErrUnsupportedVersion) {
			t.Errorf("%s: OpenState = %v, want ErrUnsupportedVersion", tc.name, err)
		}
	}
}

func TestOpenStateVersionRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{})
	f.st.Close()
	db, err := bolt.Open(filepath.Join(f.dir, DBName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if got := string(m.Get(keyKind)); got != "sealmail-access" {
			t.Errorf("meta/kind = %q", got)
		}
		if got := m.Get(keyVersion); len(got) != 4 || binary.BigEndian.Uint32(got) != 2 {
			t.Errorf("meta/version = %x, want 00000002", got)
		}
		for _, b := range []string{"users", "sessions", "totp_steps", "failures", "oidc_links", "approvals", "audit_outbox"} {
			if tx.Bucket([]byte(b)) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenStateInUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{})
	_, err := OpenState(f.dir, StateOptions{})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second OpenState = %v, want in use", err)
	}
}

func TestStatePersists(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{})
	c := f.add(t, "alice", RoleAdmin)
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Close(); err != nil {
		t.Errorf("second Close = %v, want nil (idempotent)", err)
	}
	st, err := OpenState(f.dir, StateOptions{Password: cheap, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	code, _ := TOTPCode(c.TOTPSecret, f.clk.Now())
	if _, err := st.Login(context.Background(), LoginRequest{User: "alice", Password: c.Password, TOTP: code, Remote: "192.0.2.1"}); err != nil {
		t.Errorf("Login after reopen = %v", err)
	}
}

// TestSecretsNotInDatabase: the database file holds no password, recovery
// code or session token in the clear.
func TestSecretsNotInDatabase(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{Lockout: fastRetry})
	c := f.add(t, "alice", RoleAdmin)
	ns, err := f.login(t, c, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := ParseToken(ns.Token)
	// A password typed into the name field is counted, but not kept.
	typo := "Tr0ub4dor&3-typed-as-name"
	if _, err := f.st.Login(bg, LoginRequest{User: typo, Password: "x", TOTP: "000000", Remote: "192.0.2.1"}); !errors.Is(err, ErrSignInFailed) {
		t.Fatal(err)
	}
	f.st.Close()
	raw, err := os.ReadFile(filepath.Join(f.dir, DBName))
	if err != nil {
		t.Fatal(err)
	}
	secrets := append([]string{c.Password, ns.Token, string(tok), typo}, c.RecoveryCodes...)
	for _, code := range c.RecoveryCodes {
		secrets = append(secrets, normalizeRecovery(code))
	}
	for _, s := range secrets {
		if strings.Contains(string(raw), s) {
			t.Errorf("access.db contains the secret %q", s)
		}
	}
}

// TestReadsVersion1 opens an access.db written by format version 1: it is
// upgraded in place (version 2, the new buckets) and its user signs in.
func TestReadsVersion1(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/formats/v1/access.db")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, DBName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	st, err := OpenState(dir, StateOptions{Now: clk.Now, Password: cheap})
	if err != nil {
		t.Fatalf("OpenState(v1) = %v", err)
	}
	defer st.Close()
	code, err := TOTPCode("NYXZHBL64LDTMSBMCCRG2RRXGIM66QGY", clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	ns, err := st.Login(context.Background(), LoginRequest{User: "olga", Password: "correct horse battery staple", TOTP: code, Remote: "192.0.2.1"})
	if err != nil {
		t.Fatalf("Login(olga) on a v1 database = %v", err)
	}
	if ns.Session.Role != RoleOfficer {
		t.Errorf("role = %s, want officer", ns.Session.Role)
	}
	err = st.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyVersion); binary.BigEndian.Uint32(v) != dbVersion {
			t.Errorf("version after upgrade = %x, want %d", v, dbVersion)
		}
		for _, b := range [][]byte{bucketOIDCLinks, bucketApprovals, bucketOutbox} {
			if tx.Bucket(b) == nil {
				t.Errorf("bucket %s missing after upgrade", b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
