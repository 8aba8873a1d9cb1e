// SPDX-License-Identifier: Apache-2.0

package offsite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"filippo.io/age"

	"github.com/sealmail/sealmail/vfs"
)

// maxSecretBytes bounds a secret's plaintext (keys and certificates).
const maxSecretBytes = 1 << 20

// SealSecret encrypts a secret (a key file) to the recipients as a standard
// age file, which `age -d` opens, and returns it with the plaintext's size
// and SHA-256 for the manifest.
func SealSecret(recipients []age.Recipient, plain []byte) ([]byte, *Plain, error) {
	if len(plain) > maxSecretBytes {
		return nil, nil, fmt.Errorf("secret of %d bytes: at most %d", len(plain), maxSecretBytes)
	}
	var b bytes.Buffer
	w, err := age.Encrypt(&b, recipients...)
	if err != nil {
		return nil, nil, fmt.Errorf("seal secret: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, nil, fmt.Errorf("seal secret: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, nil, fmt.Errorf("seal secret: %w", err)
	}
	sum := sha256.Sum256(plain)
	return b.Bytes(), &Plain{Size: int64(len(plain)), SHA256: hex.EncodeToString(sum[:])}, nil
}

// ErrNoIdentity reports that an encrypted file could be opened with none
// of the identities given.
var ErrNoIdentity = errors.New("offsite: none of the identities opens the backup's secrets")

// RestoreFile writes file f of a backup from t into dir (through fsys, nil:
// the real one): PATH.tmp is written, checked (size and SHA-256 of every
// part and of the whole; an encrypted file is decrypted with ids and its
// plaintext checked), fsync'd, given f's mode, renamed to PATH, and the
// directory fsync'd. Missing directories are created 0700. After an error
// PATH is as it was.
func RestoreFile(ctx context.Context, t Target, f File, dir string, fsys vfs.FS, ids []age.Identity) error {
	fsys = vfs.Or(fsys)
	if !ValidPath(f.Path) {
		return fmt.Errorf("restore: path %q", f.Path)
	}
	p := filepath.Join(dir, filepath.FromSlash(f.Path))
	if err := fsys.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("restore %s: %w", f.Path, err)
	}
	r := OpenFile(ctx, t, f)
	defer r.Close()
	var src io.Reader = r
	if f.Encrypted != nil {
		plain, err := OpenSecret(r, f, ids)
		if err != nil {
			return fmt.Errorf("restore %s: %w", f.Path, err)
		}
		src = bytes.NewReader(plain)
	}
	if _, err := vfs.WriteFrom(ctx, fsys, p, src, fs.FileMode(f.Mode), nil); err != nil {
		return fmt.Errorf("restore %s: %w", f.Path, err)
	}
	return nil
}

// OpenSecret reads encrypted file f's stored bytes from r (a reader from
// [OpenFile], which checks them) and decrypts them with ids, checking the
// plaintext against the manifest.
func OpenSecret(r io.Reader, f File, ids []age.Identity) ([]byte, error) {
	if f.Size > 2*maxSecretBytes {
		return nil, fmt.Errorf("encrypted file of %d bytes: at most %d", f.Size, 2*maxSecretBytes)
	}
	ct, err := io.ReadAll(r) // checked to its end before it is decrypted
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("it is encrypted: give the archive's identity: %w", ErrNoIdentity)
	}
	d, err := age.Decrypt(bytes.NewReader(ct), ids...)
	var nm *age.NoIdentityMatchError
	if errors.As(err, &nm) {
		return nil, ErrNoIdentity
	}
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(d, maxSecretBytes+1))
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	sum := sha256.Sum256(plain)
	if int64(len(plain)) != f.Encrypted.Size || hex.EncodeToString(sum[:]) != f.Encrypted.SHA256 {
		return nil, fmt.Errorf("decrypted to %d bytes with SHA-256 %x, the manifest says %d bytes, %s: %w",
			len(plain), sum, f.Encrypted.Size, f.Encrypted.SHA256, ErrMismatch)
	}
	return plain, nil
}
