// SPDX-License-Identifier: Apache-2.0

package store

import "errors"

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
	// ErrReadOnly reports a change asked of a store opened read-only.
	ErrReadOnly = errors.New("store: opened read-only (the daemon is not running; this needs it, or run as the daemon's user with it stopped)")
	// ErrLocked reports a catalog held open by another process (the daemon).
	ErrLocked = errors.New("store: catalog is locked by another process")
)
