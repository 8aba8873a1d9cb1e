// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sealmail/sealmail/vfs"
)

// File names inside the audit directory.
const (
	keyFile  = "signing.key"
	pubFile  = "signing.pub"
	lockFile = "lock"
)

// fileName returns the name of log file n: audit-000001.jsonl, …
func fileName(n int) string { return fmt.Sprintf("audit-%06d.jsonl", n) }

// parseFileName is the inverse of fileName.
func parseFileName(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "audit-")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, ".jsonl")
	if !ok || len(s) < 6 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || fileName(n) != name {
		return 0, false
	}
	return n, true
}

// listFiles returns the numbers of the log files in dir, ascending.
func listFiles(dir string) ([]int, error) { return listFilesFS(os.DirFS(dir), dir) }

// listFilesFS is listFiles over fsys; dir names it in errors.
func listFilesFS(fsys fs.FS, dir string) ([]int, error) {
	des, err := fs.ReadDir(fsys, ".")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w in %s", ErrNotExist, dir)
		}
		return nil, err
	}
	var ns []int
	for _, de := range des {
		if n, ok := parseFileName(de.Name()); ok && de.Type().IsRegular() {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	if len(ns) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNotExist, dir)
	}
	return ns, nil
}

// rawLine is one line as read from a file.
type rawLine struct {
	b        []byte // content without newline; truncated if tooLong
	hash     Hash   // SHA-256 of the whole content without newline
	size     int64  // bytes consumed, newline included
	complete bool   // ended with a newline
	tooLong  bool   // content exceeds MaxLineBytes
}

// lineReader reads lines of any length with bounded memory, hashing each.
type lineReader struct {
	r       *bufio.Reader
	scratch []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line, or io.EOF when no byte is left. The returned
// bytes are valid until the next call.
func (lr *lineReader) next() (rawLine, error) {
	var l rawLine
	h := sha256.New()
	lr.scratch = lr.scratch[:0]
	for {
		piece, err := lr.r.ReadSlice('\n')
		if len(piece) > 0 {
			l.size += int64(len(piece))
			content := piece
			if err == nil {
				content = piece[:len(piece)-1]
			}
			h.Write(content)
			if len(lr.scratch)+len(content) <= MaxLineBytes {
				lr.scratch = append(lr.scratch, content...)
			} else {
				l.tooLong = true
			}
		}
		switch {
		case err == nil:
			l.complete = true
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if l.size == 0 {
				return l, io.EOF
			}
		default:
			return l, err
		}
		l.b = lr.scratch
		copy(l.hash[:], h.Sum(nil))
		return l, nil
	}
}

// writeFileAtomic writes data to dir/name with [vfs.WriteFile] (temporary
// file, fsync, rename, directory fsync), so that name either does not exist
// or is complete. It fails if name exists.
func writeFileAtomic(fsys vfs.FS, dir, name string, data []byte, perm os.FileMode) error {
	final := filepath.Join(dir, name)
	if _, err := fsys.Stat(final); err == nil {
		return fmt.Errorf("%s: %w", name, os.ErrExist)
	}
	return vfs.WriteFile(fsys, final, data, perm)
}

// removeTemps deletes leftovers of an interrupted writeFileAtomic.
func removeTemps(fsys vfs.FS, dir string) error {
	des, err := fsys.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		name := de.Name()
		base, ok := strings.CutSuffix(name, vfs.TmpSuffix)
		if !ok {
			continue
		}
		if _, isLog := parseFileName(base); isLog || base == keyFile || base == pubFile {
			if err := fsys.Remove(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// marshalKey encodes the private key as a PKCS #8 PEM block, the form
// `openssl pkey` reads.
func marshalKey(priv ed25519.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		panic(fmt.Sprintf("marshal ed25519 key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func loadKey(dir string) (ed25519.PrivateKey, os.FileMode, error) {
	path := filepath.Join(dir, keyFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, 0, fmt.Errorf("%s: no PEM PRIVATE KEY block", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", keyFile, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, 0, fmt.Errorf("%s: %T is not an Ed25519 key", keyFile, k)
	}
	return priv, fi.Mode().Perm(), nil
}

// marshalPub encodes a public key as 64 lowercase hex digits and a newline,
// the same form as the "key:" line of a checkpoint.
func marshalPub(pub ed25519.PublicKey) []byte {
	return []byte(hex.EncodeToString(pub) + "\n")
}

// ReadPublicKey reads the public key stored in dir/signing.pub.
func ReadPublicKey(dir string) (ed25519.PublicKey, error) { return readPublicKeyFS(os.DirFS(dir)) }

func readPublicKeyFS(fsys fs.FS) (ed25519.PublicKey, error) {
	b, err := fs.ReadFile(fsys, pubFile)
	if err != nil {
		return nil, fmt.Errorf("audit: read public key: %w", err)
	}
	k, err := parseKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("audit: read public key: %s: %w", pubFile, err)
	}
	return k, nil
}
