// SPDX-License-Identifier: Apache-2.0

package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/sealmail/sealmail"
)

var (
	// ErrUnsupportedVersion reports a segment, record or catalog value written
	// by a format version this build does not know.
	ErrUnsupportedVersion = errors.New("store: unsupported format version")
	// ErrCorrupt reports bytes that fail a magic, length or checksum check.
	ErrCorrupt = errors.New("store: corrupt data")
	// ErrNotFound reports an unknown message id.
	ErrNotFound = errors.New("store: message not found")
	// ErrClosed reports use of a closed store.
	ErrClosed = errors.New("store: closed")
	// ErrNoArchive reports a directory that holds no archive.
	ErrNoArchive = errors.New("store: no archive")
	// ErrExists reports Create on a directory that already holds an archive.
	ErrExists = errors.New("store: archive already exists")
	// ErrDeleted reports a message that was deleted; see [DeletedError].
	ErrDeleted = errors.New("store: message deleted")
	// ErrReadOnly reports a change asked of a store opened read-only.
	ErrReadOnly = errors.New("store: opened read-only (the daemon is not running; this needs it, or run as the daemon's user with it stopped)")
	// ErrTooLarge reports a message beyond [MaxMessageBytes]: refused
	// before anything is written, since it could not be read back.
	ErrTooLarge = errors.New("store: message too large")
	// ErrLocked reports a catalog held open by another process (the daemon).
	ErrLocked = errors.New("store: catalog is locked by another process")
)

// DeletedError reports a message that was deleted (by retention policy or
// erasure); the catalog keeps when and on which audit entry's order.
type DeletedError struct {
	ID    sealmail.MessageID
	At    time.Time
	Audit uint64
}

func (e *DeletedError) Unwrap() error { return ErrDeleted }

func (e *DeletedError) Error() string {
	return fmt.Sprintf("message %d was deleted on %s (audit entry %d)", e.ID, e.At.Format(time.RFC3339), e.Audit)
}
