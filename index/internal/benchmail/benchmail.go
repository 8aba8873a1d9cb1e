// SPDX-License-Identifier: Apache-2.0

// Package benchmail reads a generated Maildir (bench/gen_mail.py) as the
// index benchmarks feed it: message files in a fixed order, each with the
// SMTP envelope it would have arrived with.
package benchmail

import (
	"bytes"
	"io/fs"
	"net/mail"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sealmail/sealmail"
)

// Files returns the message files under dir (walked recursively, skipping
// dot files and dot directories such as .notmuch), sorted by path. dir may
// be a symbolic link.
func Files(dir string) ([]string, error) {
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d // a link to the Maildir
	}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			paths = append(paths, p)
		} else if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != dir {
			return filepath.SkipDir
		}
		return nil
	})
	slices.Sort(paths)
	return paths, err
}

// Envelope returns the SMTP envelope a journaling MTA would have sent raw
// with: MAIL FROM the header From address, RCPT TO every To and Cc
// address. A header that does not parse contributes nothing.
func Envelope(raw []byte) sealmail.Envelope {
	env := sealmail.Envelope{Source: sealmail.SourceSMTPEnvelope}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return env
	}
	if from, err := mail.ParseAddress(m.Header.Get("From")); err == nil {
		env.MailFrom = from.Address
	}
	for _, h := range []string{"To", "Cc"} {
		list, _ := m.Header.AddressList(h)
		for _, a := range list {
			env.RcptTo = append(env.RcptTo, a.Address)
		}
	}
	return env
}
