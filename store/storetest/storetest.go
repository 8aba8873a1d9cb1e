// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"context"
	"testing"

	"filippo.io/age"

	"github.com/sealmail/sealmail/store"
)

// New creates a store in a temporary directory that encrypts for a new
// X25519 identity, which it returns. When the test ends the store is
// verified ([Check]) and closed.
func New(t testing.TB, opts store.Options) (*store.Store, *age.X25519Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Create(t.TempDir(), []string{id.Recipient().String()}, opts)
	if err != nil {
		t.Fatalf("storetest: create store: %v", err)
	}
	t.Cleanup(func() {
		Check(t, s)
		if err := s.Close(); err != nil {
			t.Errorf("storetest: close: %v", err)
		}
	})
	return s, id
}

// Check runs [store.Store.Verify] and reports every finding as a test
// error.
func Check(t testing.TB, s *store.Store) {
	t.Helper()
	res, err := s.Verify(context.Background(), nil)
	if err != nil {
		t.Errorf("storetest: verify %s: %v", s.Dir(), err)
		return
	}
	for _, f := range res.Findings {
		t.Errorf("storetest: verify %s: %s", s.Dir(), f)
	}
}

// CheckDir opens the store in dir read-only (nothing else may have it
// open), verifies it ([Check]) and closes it. Tests of packages built on
// the store call it after they closed it.
func CheckDir(t testing.TB, dir string) {
	t.Helper()
	s, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		t.Errorf("storetest: open %s: %v", dir, err)
		return
	}
	Check(t, s)
	if err := s.Close(); err != nil {
		t.Errorf("storetest: close %s: %v", dir, err)
	}
}
