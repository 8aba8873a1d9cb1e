// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"errors"
	"fmt"

	"github.com/sealmail/sealmail/archive"
)

// Errors of the reader carry an [archive.Error] code, so that they cross
// the reader's socket typed, as the control socket's do.
var (
	// ErrLocked: the reader holds no identity.
	ErrLocked = &archive.Error{Code: archive.CodeLocked,
		Message: "the reader is locked (it holds no identity): unlock it with `sealmail access unlock --identity FILE`, or an officer with POST /api/v1/unlock"}
	// ErrNotFound: no such message within the caller's reach (not indexed,
	// or outside their scope: the answer does not tell which).
	ErrNotFound = &archive.Error{Code: archive.CodeNotFound, Message: "no such message"}
	// ErrNoReader: no reader answers on its socket.
	ErrNoReader = errors.New("reader: no reader service on its socket")
)

// denied returns a permission error.
func denied(format string, v ...any) error {
	return &archive.Error{Code: archive.CodePermission, Message: fmt.Sprintf(format, v...)}
}

// invalid returns an error the caller must fix.
func invalid(format string, v ...any) error {
	return &archive.Error{Code: archive.CodeInvalid, Message: fmt.Sprintf(format, v...)}
}

// IsLocked reports whether err says the reader is locked.
func IsLocked(err error) bool {
	e := archive.AsError(err)
	return e != nil && e.Code == archive.CodeLocked
}

// IsPermission reports whether err refuses the caller (their role, or a
// four-eyes decision on their own request).
func IsPermission(err error) bool {
	e := archive.AsError(err)
	return e != nil && e.Code == archive.CodePermission
}

// IsNotFound reports whether err says there is no such message within the
// caller's reach (or it is deleted).
func IsNotFound(err error) bool {
	e := archive.AsError(err)
	return e != nil && (e.Code == archive.CodeNotFound || e.Code == archive.CodeDeleted)
}

// IsInvalid reports whether err is the caller's to fix, such as a query
// that does not parse (its message says where).
func IsInvalid(err error) bool {
	e := archive.AsError(err)
	return e != nil && e.Code == archive.CodeInvalid
}
