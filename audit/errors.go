// SPDX-License-Identifier: Apache-2.0

package audit

import "errors"

// Sentinel errors. Callers test them with [errors.Is]; every error returned by
// this package wraps at most one of them.
var (
	// ErrUnsupportedVersion reports a file header with a format version this
	// build does not know. Readers never guess at newer formats.
	ErrUnsupportedVersion = errors.New("audit: unsupported format version")

	// ErrClosed is returned by operations on a closed [Log].
	ErrClosed = errors.New("audit: log closed")

	// ErrExist is returned by [Create] when the directory already holds an
	// audit log or a signing key.
	ErrExist = errors.New("audit: log already exists")

	// ErrNotExist is returned by [Open], [Read] and [Verify] when the
	// directory holds no audit log.
	ErrNotExist = errors.New("audit: no audit log")

	// ErrLocked is returned by [Open] when another process has the log open
	// for writing.
	ErrLocked = errors.New("audit: log is locked by another writer")

	// ErrArchiveMismatch is returned by [Open] when Options.ArchiveID is set
	// and differs from the archive id recorded in the log.
	ErrArchiveMismatch = errors.New("audit: archive id mismatch")

	// ErrInvalidEvent is returned by [Log.Append] for an event that cannot be
	// logged: empty or malformed type, the reserved type "checkpoint", fields
	// that do not encode as JSON, or an entry longer than [MaxLineBytes].
	ErrInvalidEvent = errors.New("audit: invalid event")

	// ErrCorrupt reports a log that cannot be read or appended to because a
	// line does not parse. [Verify] reports the details; a log never becomes
	// ErrCorrupt through a crash alone (see [Open] on torn lines).
	ErrCorrupt = errors.New("audit: corrupt log")

	// ErrBadSignature is returned by [Checkpoint.Verify] when the signature
	// does not verify or the key is not the expected one.
	ErrBadSignature = errors.New("audit: bad checkpoint signature")

	// ErrFailed is returned by [Log.Append] and [Log.Checkpoint] when a
	// write or fsync of the log failed. After a failed write (a full disk)
	// the log cuts the file back and goes on with the next append; after a
	// failed fsync (or a write it cannot undo) the state of the file is
	// unknown, so the log accepts nothing more until it is reopened (which
	// repairs a torn tail).
	ErrFailed = errors.New("audit: log failed")
)
