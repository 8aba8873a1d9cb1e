// SPDX-License-Identifier: Apache-2.0

package export

import (
	"errors"
	"fmt"
	"time"
)

// DefaultMaxImportBytes is the largest message a reader hands out when
// [ReaderOptions.MaxMessageBytes] is zero.
const DefaultMaxImportBytes = 64 << 20

// Message is one message read from an import source.
type Message struct {
	// Raw is the message as the source holds it, byte-exact (mbox: with
	// the "From " line and the separating empty line removed and the
	// quoting undone; PST: rebuilt as RFC 5322). The reader does not touch
	// it after Next returns.
	Raw []byte
	// Folder is the folder path inside the source, "/"-separated ("" when
	// the source has no folders).
	Folder string
	// Received is the source's own received time (mbox "From " line,
	// Maildir delivery time, IMAP internal date, PST delivery time); zero
	// when the source has none.
	Received time.Time
	// Position says where in the source the message is ("offset 1234",
	// "cur/1700000000.M1P2.host:2,S", "zip entry 3 a/b.eml"): for reports.
	Position string
}

// Reader reads messages from an import source, one at a time. Next returns
// io.EOF after the last message. An error that concerns one message only
// (too large, unreadable entry) is an [*ItemError]: the caller reports it
// and calls Next again; any other error ends the source.
type Reader interface {
	Next() (*Message, error)
	Close() error
}

// ReaderOptions configures the import readers. The zero value is safe.
type ReaderOptions struct {
	// MaxMessageBytes is the largest message handed out; a larger one is
	// skipped (read past, never held in memory) and reported as an
	// [*ItemError] wrapping [ErrTooLarge]. Zero means
	// [DefaultMaxImportBytes].
	MaxMessageBytes int64
}

func (o ReaderOptions) max() int64 {
	if o.MaxMessageBytes <= 0 {
		return DefaultMaxImportBytes
	}
	return o.MaxMessageBytes
}

// ErrTooLarge says that a message is larger than
// [ReaderOptions.MaxMessageBytes].
var ErrTooLarge = errors.New("export: message larger than the import limit")

// ItemError is a problem with one message of a source: the message is
// skipped, the import goes on.
type ItemError struct {
	Folder   string
	Position string
	Err      error
}

func (e *ItemError) Error() string {
	if e.Folder != "" {
		return fmt.Sprintf("%s %s: %v", e.Folder, e.Position, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Position, e.Err)
}

func (e *ItemError) Unwrap() error { return e.Err }
