// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"filippo.io/age/plugin"
	"golang.org/x/term"

	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/reader"
)

// loadIdentities reads the operator's age identities from path: a plain
// identity file (AGE-SECRET-KEY-…, AGE-SECRET-KEY-PQ-…, AGE-PLUGIN-… for
// hardware tokens), or an identity file encrypted with a passphrase (as
// `age -p` writes it, armored or binary). The passphrase comes from
// SEALMAIL_PASSPHRASE, the systemd credential sealmail-passphrase, or
// the terminal.
func loadIdentities(path string, errOut io.Writer) ([]age.Identity, error) {
	b, err := readIdentityFile(path, errOut)
	if err != nil {
		return nil, err
	}
	var ids []age.Identity
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	var plain []string
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "AGE-PLUGIN-"):
			ui := plugin.NewTerminalUI(func(f string, v ...any) { fmt.Fprintf(errOut, f+"\n", v...) },
				func(f string, v ...any) { fmt.Fprintf(errOut, "warning: "+f+"\n", v...) })
			id, err := plugin.NewIdentity(line, ui)
			if err != nil {
				return nil, fmt.Errorf("identity %s line %d: %w", path, n, err)
			}
			ids = append(ids, id)
		default:
			plain = append(plain, line)
		}
	}
	if len(plain) > 0 {
		parsed, err := age.ParseIdentities(strings.NewReader(strings.Join(plain, "\n")))
		if err != nil {
			return nil, fmt.Errorf("identity %s: %w", path, err)
		}
		ids = append(ids, parsed...)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("identity %s: no identities found", path)
	}
	return ids, nil
}

// readIdentityFile returns the text of the identity file at path,
// decrypted if it is passphrase-protected.
func readIdentityFile(path string, errOut io.Writer) ([]byte, error) {
	if path == "" {
		return nil, usageError{errors.New("--identity FILE is required: the daemon cannot decrypt; give the age identity that matches the archive's recipient")}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	b, err = reader.IdentityFileText(b, func() (string, error) { return identityPassphrase(path) })
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	return b, nil
}

// identityText returns the identity file's text for the reader, which
// parses it (`sealmail access unlock`).
func identityText(path string, errOut io.Writer) (string, error) {
	b, err := readIdentityFile(path, errOut)
	if err != nil {
		return "", err
	}
	if _, err := reader.ParseIdentities(string(b)); err != nil {
		return "", usageError{fmt.Errorf("identity %s: %w", path, err)}
	}
	return string(b), nil
}

// credentialPassphrase is the systemd credential (LoadCredential=) that
// holds an identity file's passphrase.
const credentialPassphrase = "sealmail-passphrase"

// identityPassphrase is the passphrase of the identity file at path:
// SEALMAIL_PASSPHRASE, the systemd credential, or the terminal's.
func identityPassphrase(path string) (string, error) {
	pass := os.Getenv("SEALMAIL_PASSPHRASE")
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); pass == "" && dir != "" {
		if p, err := os.ReadFile(filepath.Join(dir, credentialPassphrase)); err == nil {
			pass = strings.TrimRight(string(p), "\r\n")
		}
	}
	if pass != "" {
		return pass, nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("identity %s is passphrase-protected: set SEALMAIL_PASSPHRASE or run on a terminal", path)
	}
	defer tty.Close()
	fmt.Fprintf(tty, "Passphrase for %s: ", path)
	p, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return "", fmt.Errorf("read passphrase: %w", err)
	}
	return string(p), nil
}

// identityError names the identity file when it is not the archive's.
func identityError(err error, path string) error {
	if errors.Is(err, archive.ErrNoIdentityMatch) {
		return fmt.Errorf("the identity in %s does not match this archive's recipients (see `sealmail status`): %w", path, err)
	}
	return err
}
