// SPDX-License-Identifier: Apache-2.0

package offsite

import "errors"

var (
	// ErrCorrupt reports a manifest that does not parse or check out.
	ErrCorrupt = errors.New("offsite: corrupt manifest")
	// ErrUnsupportedVersion reports a manifest of a format version this
	// program does not know.
	ErrUnsupportedVersion = errors.New("offsite: unsupported manifest version")
	// ErrMismatch reports bytes whose size or SHA-256 is not the one
	// recorded: a damaged object, or a damaged source file.
	ErrMismatch = errors.New("offsite: content does not match its SHA-256")
	// ErrNoBackup reports a target that holds no backup.
	ErrNoBackup = errors.New("offsite: no backup in the target")
	// ErrLocked reports a target another backup is writing to.
	ErrLocked = errors.New("offsite: another backup is writing to the target")
	// ErrOtherArchive reports a target that holds another archive's backups.
	ErrOtherArchive = errors.New("offsite: the target holds another archive's backups")
)
