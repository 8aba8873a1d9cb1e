// SPDX-License-Identifier: Apache-2.0

package archive

import "github.com/sealmail/sealmail/export"

// The readers of existing mail that `sealmail import` stores with
// [Archive.Import]. They live in export, beside the writers; the CLI sees
// them only through these names (the layering of deps_test.go).
type (
	// ImportReader reads one source message by message.
	ImportReader = export.Reader
	// ImportItem is one message read from a source.
	ImportItem = export.Message
	// ImportItemError is a problem with one message; reading goes on.
	ImportItemError = export.ItemError
	// ImportReaderOptions bound what a reader accepts.
	ImportReaderOptions = export.ReaderOptions
	// MboxFormat is mboxrd, mboxo or auto-detection.
	MboxFormat = export.MboxFormat
	// IMAPOptions say which IMAP server, account and folders to read.
	IMAPOptions = export.IMAPOptions
)

var (
	// ErrImportTooLarge refuses a source message over the import limit.
	ErrImportTooLarge = export.ErrTooLarge
	// ErrNotMail refuses a source item that is not mail (a PST contact).
	ErrNotMail = export.ErrNotMail
)

// ParseMboxFormat parses --mbox-format.
func ParseMboxFormat(s string) (MboxFormat, error) { return export.ParseMboxFormat(s) }

// CheckMbox says whether the file at path looks like an mbox.
func CheckMbox(path string) error { return export.CheckMbox(path) }

// OpenMbox opens an mbox; format "" detects the variant, which it returns.
func OpenMbox(path string, format MboxFormat, opts ImportReaderOptions) (ImportReader, MboxFormat, error) {
	return export.OpenMbox(path, format, opts)
}

// OpenMaildir opens a Maildir (cur and new, Maildir++ folders).
func OpenMaildir(root string, opts ImportReaderOptions) (ImportReader, error) {
	return export.OpenMaildir(root, opts)
}

// OpenEML opens a directory of .eml files or a zip of them.
func OpenEML(path string, opts ImportReaderOptions) (ImportReader, error) {
	return export.OpenEML(path, opts)
}

// OpenPST opens a Unicode or ANSI PST file.
func OpenPST(path string, opts ImportReaderOptions) (ImportReader, error) {
	return export.OpenPST(path, opts)
}

// ParseIMAPURL parses imaps://user@host[:port]/[folder].
func ParseIMAPURL(s string) (IMAPOptions, error) { return export.ParseIMAPURL(s) }

// OpenIMAP connects to an IMAP server read-only.
func OpenIMAP(o IMAPOptions) (*export.IMAPReader, error) { return export.OpenIMAP(o) }
