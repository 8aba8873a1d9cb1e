// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"io"

	"github.com/sealmail/sealmail/export"
)

func openPSTReader(path string, opts export.ReaderOptions) (export.Reader, error) {
	return export.OpenPST(path, opts)
}

func openIMAPReader(ctx context.Context, o *importOptions, opts export.ReaderOptions, in io.Reader) (string, export.Reader, error) {
	return "", nil, errors.New("import: --imap is not implemented yet")
}
