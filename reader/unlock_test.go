// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/sealmail/sealmail/archive"
)

// TestIdentityFileText: an identity file encrypted with a passphrase (as
// `age -p` writes it, armored and binary) is decrypted with it; a wrong
// passphrase is refused as invalid; a plain file is taken as it is,
// without asking for one.
func TestIdentityFileText(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	plain := []byte(id.String() + "\n")
	r, err := age.NewScryptRecipient("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	r.SetWorkFactor(10)
	encrypt := func(armored bool) []byte {
		var b bytes.Buffer
		var out io.WriteCloser = nopCloser{&b}
		if armored {
			out = armor.NewWriter(&b)
		}
		w, err := age.Encrypt(out, r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(plain); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	pass := func(p string) func() (string, error) { return func() (string, error) { return p, nil } }
	for _, armored := range []bool{true, false} {
		enc := encrypt(armored)
		got, err := IdentityFileText(enc, pass("correct horse"))
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("armored %v: %q, %v; want the identity", armored, got, err)
		}
		if _, err := IdentityFileText(enc, pass("wrong")); archive.AsError(err).Code != archive.CodeInvalid {
			t.Errorf("armored %v, wrong passphrase: %v, want invalid", armored, err)
		}
	}
	asked := errors.New("asked")
	if got, err := IdentityFileText(plain, func() (string, error) { return "", asked }); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("plain file: %q, %v", got, err)
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
