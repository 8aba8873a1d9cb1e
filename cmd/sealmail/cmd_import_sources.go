// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/sealmail/sealmail/archive"
)

func openPSTReader(path string, opts archive.ImportReaderOptions) (archive.ImportReader, error) {
	return archive.OpenPST(path, opts)
}

// openIMAPReader connects to the server of --imap; it returns the source
// name for the envelope and the audit log: the URL without password or
// folder.
func openIMAPReader(ctx context.Context, o *importOptions, opts archive.ImportReaderOptions, in io.Reader) (string, archive.ImportReader, error) {
	io_, err := archive.ParseIMAPURL(o.imap)
	if err != nil {
		return "", nil, usageError{err}
	}
	io_.ReaderOptions = opts
	if len(o.folders) > 0 {
		io_.Folders = o.folders
	}
	if o.passwordFile == "" {
		return "", nil, usageError{errors.New("--imap needs --password-file FILE (or - for standard input)")}
	}
	pw, err := readIMAPPassword(o.passwordFile, in)
	if err != nil {
		return "", nil, err
	}
	io_.Password = pw
	if o.imapCA != "" {
		pem, err := os.ReadFile(o.imapCA)
		if err != nil {
			return "", nil, fmt.Errorf("--imap-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return "", nil, usageError{fmt.Errorf("--imap-ca %s: no PEM certificate in it", o.imapCA)}
		}
		host, _, _ := net.SplitHostPort(io_.Addr)
		io_.TLS = &tls.Config{RootCAs: pool, ServerName: host}
	}
	r, err := archive.OpenIMAP(io_)
	if err != nil {
		return "", nil, err
	}
	return "imaps://" + io_.User + "@" + io_.Addr + "/", r, nil
}

// readIMAPPassword reads the first line of a file, or of standard input for
// "-".
func readIMAPPassword(path string, in io.Reader) (string, error) {
	var r io.Reader = in
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("--password-file: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usageError{errors.New("--password-file: empty password")}
	}
	return line, nil
}
