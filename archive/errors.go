// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"errors"
	"fmt"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/index/query"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
)

// Sentinel errors. Callers test them with [errors.Is], on errors of an
// [Archive] and on errors the control socket carried ([Error.Is]).
var (
	// ErrNotFound reports a message id the archive does not hold.
	ErrNotFound = store.ErrNotFound
	// ErrDeleted reports a message deleted by retention or erasure; the
	// error is a *[DeletedError].
	ErrDeleted = store.ErrDeleted
	// ErrLocked reports an archive another process holds (the daemon, or a
	// command that opened it directly).
	ErrLocked = store.ErrLocked
	// ErrNoArchive reports a directory that holds no archive.
	ErrNoArchive = store.ErrNoArchive
	// ErrNoIdentityMatch reports identities that decrypt none of a message's
	// records: they are not the archive's.
	ErrNoIdentityMatch = errors.New("archive: the identity does not match the archive's recipients")
)

// Code classifies an error for a caller on the other side of the control
// socket and for the CLI's exit code. The values are part of the control
// socket's protocol.
type Code string

const (
	// CodeInternal is every error the caller cannot fix by asking
	// differently: I/O, a damaged archive, a bug.
	CodeInternal Code = "internal"
	// CodeInvalid is a request the caller must change: a query that does not
	// parse, an argument out of range, a hold name taken or unknown.
	CodeInvalid Code = "invalid"
	// CodeNotFound is a message the archive does not hold.
	CodeNotFound Code = "not_found"
	// CodeDeleted is a message deleted by retention or erasure.
	CodeDeleted Code = "deleted"
	// CodePermission is a control-socket peer that may not use the daemon,
	// or a reader's caller whose role may not do what it asked.
	CodePermission Code = "permission"
	// CodeLocked is the reader service's answer while it holds no
	// identity: it cannot decrypt, so it cannot index or read (ingest goes
	// on).
	CodeLocked Code = "locked"
)

// Error is an archive error in the form that crosses the control socket: a
// code, the message for people and the facts a program may act on. The
// control socket's client returns it; [AsError] makes one of any error.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Fields are the facts of the error, by name: "query" and "offset" for
	// a query that does not parse, "id", "deleted_at" and "audit_seq" for a
	// deleted message.
	Fields map[string]any `json:"fields,omitempty"`

	err error // the cause, on this side of the socket only
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause on the side that made the error; nil on the
// side that received it.
func (e *Error) Unwrap() error { return e.err }

// Is makes an error carried over the socket match the sentinel of its code.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case CodeNotFound:
		return target == ErrNotFound
	case CodeDeleted:
		return target == ErrDeleted
	}
	return false
}

// AsError classifies err. Errors the caller must fix become [CodeInvalid]:
// invalid requests of the archive (an [Error] already), queries that do not
// parse, hold conflicts. A nil err gives nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var se *query.SyntaxError
	var he *policy.HoldError
	var de *DeletedError
	switch {
	case errors.As(err, &se):
		return &Error{Code: CodeInvalid, Message: err.Error(), Fields: map[string]any{"offset": se.Pos, "expected": se.Msg}, err: err}
	case errors.As(err, &he):
		return &Error{Code: CodeInvalid, Message: err.Error(), Fields: map[string]any{"hold": he.Name, "op": he.Op}, err: err}
	case errors.As(err, &de):
		return &Error{Code: CodeDeleted, Message: err.Error(), err: err,
			Fields: map[string]any{"id": uint64(de.ID), "deleted_at": de.At.UTC().Format(time.RFC3339), "audit_seq": de.Audit}}
	case errors.Is(err, ErrNotFound):
		return &Error{Code: CodeNotFound, Message: err.Error(), err: err}
	case errors.Is(err, ErrDeleted):
		return &Error{Code: CodeDeleted, Message: err.Error(), err: err}
	}
	return &Error{Code: CodeInternal, Message: err.Error(), err: err}
}

// invalid returns an error of [CodeInvalid].
func invalid(format string, v ...any) error {
	return &Error{Code: CodeInvalid, Message: fmt.Sprintf(format, v...)}
}

// notFound returns an error of [CodeNotFound].
func notFound(format string, v ...any) error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf(format, v...)}
}

// DeletedError says when a message was deleted, by which operation and on
// which audit entry's order.
type DeletedError struct {
	ID    sealmail.MessageID
	At    time.Time
	Audit uint64 // the audit entry that ordered the deletion
	What  string // "deleted by retention policy", "erased on request" or "deleted"
}

func (e *DeletedError) Error() string {
	return fmt.Sprintf("message %d was %s on %s (audit entry %d)", e.ID, e.What, e.At.Format(time.DateOnly), e.Audit)
}

// Unwrap makes a DeletedError match [ErrDeleted].
func (e *DeletedError) Unwrap() error { return ErrDeleted }
