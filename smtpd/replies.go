// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"errors"
	"fmt"

	"github.com/emersion/go-smtp"

	"github.com/sealmail/sealmail"
)

// Every reply the package itself chooses is one of the named values below.
// Replies to protocol errors (syntax, bad sequence, unknown command, TLS
// handshake failure) are written by go-smtp with its own texts. Reply texts
// are generic: they never reveal paths, configuration or error details.
var (
	// replyStorageFull: the archive is out of space; the sender keeps the
	// message queued and retries (RFC 3463 4.3.1 mail system full).
	replyStorageFull = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Insufficient system storage, try again later"}
	// replyInternal: any failure we cannot classify. It is always temporary
	// so that no message is ever bounced because of a bug or an I/O error
	// (DESIGN.md promise 1).
	replyInternal = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Internal error, try again later"}
	// replyTooBig: RFC 1870 §6.1, for SIZE= at MAIL and for DATA/BDAT
	// content beyond Options.MaxMessageBytes.
	replyTooBig = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message too big"}
	// replyTooManyRcpts: RFC 5321 §4.5.3.1.10, the client sends the rest
	// of the recipients in another transaction.
	replyTooManyRcpts = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "Too many recipients"}
	// replyBadRcpt: the recipient is not in Options.AcceptRecipients.
	replyBadRcpt = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Recipient not accepted here"}
	// replyTLSRequired: RFC 3207 §4, MAIL before STARTTLS with
	// Options.RequireTLS.
	replyTLSRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	// replyAuthRequired: RFC 4954 §6, MAIL before AUTH with
	// Options.RequireAuth.
	replyAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	// replyAuthFailed: RFC 4954 §6, wrong user name or password.
	replyAuthFailed = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
	// replyAuthTooMany: after maxAuthFailures failed AUTH attempts the
	// connection is closed.
	replyAuthTooMany = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many authentication failures, closing connection"}
	// replyShuttingDown: RFC 3463 4.3.2 system not accepting network
	// messages; answered to MAIL once Shutdown has begun.
	replyShuttingDown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down, try again later"}
)

var (
	// replyBusy: RFC 3463 4.3.1, the in-flight memory budget
	// (Options.MaxInFlightBytes) is spent; the sender retries later.
	replyBusy = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Too much mail in flight, try again later"}
	// replyIdleCommands: Options.MaxIdleCommands commands without a
	// message; the connection is closed.
	replyIdleCommands = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many commands without mail, closing connection"}
	// replyAuthThrottled: RFC 4954 §6 454 4.7.0 temporary authentication
	// failure, while AUTH failures from this address or for this user
	// are backing off; the password is not checked.
	replyAuthThrottled = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure, try again later"}
)

// Connection-level refusals, written before the greeting and followed by
// closing the connection (RFC 5321 §3.8 allows 421 at any time).
const (
	// replyTooManyConns: Options.MaxConnections is reached.
	replyTooManyConns = "421 4.7.0 Too many connections, try again later\r\n"
	// replyTooManyConnsIP: Options.MaxConnectionsPerIP is reached for the
	// client's address.
	replyTooManyConnsIP = "421 4.7.0 Too many connections from your address, try again later\r\n"
	// replyNetworkRefused: the client's address is outside
	// Options.AllowedNetworks. It is temporary on purpose: a journaling
	// source refused because of a configuration mistake keeps its mail
	// queued and retries, so no journal copy is lost while the operator
	// fixes the allowlist.
	replyNetworkRefused = "421 4.7.1 Client host not authorized, closing connection\r\n"
)

// replyQueued is the success reply for DATA and BDAT LAST. go-smtp writes any
// *smtp.SMTPError that Session.Data returns as the reply, so a 250 "error"
// is how the message id reaches the client.
func replyQueued(id sealmail.MessageID) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: fmt.Sprintf("Ok: queued as %s", id)}
}

// errMessageTooBig reports DATA or BDAT content beyond
// Options.MaxMessageBytes.
var errMessageTooBig = errors.New("smtpd: message too big")

// errBudget reports that Options.MaxInFlightBytes has no room for a
// message (or for more of its content).
var errBudget = errors.New("smtpd: in-flight memory budget spent")

// replyFor maps an error from the Ingester, from reading message content or
// from the session's own checks to the reply the client gets. It is the only
// place that decides reply codes for errors. Replies that are already
// *smtp.SMTPError pass through; everything unknown is 451 4.3.0 and never
// 5xx, so that a sender keeps the message and retries.
func replyFor(err error) *smtp.SMTPError {
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sealmail.ErrStorageFull):
		return replyStorageFull
	case errors.Is(err, errBudget):
		return replyBusy
	case errors.Is(err, errMessageTooBig), errors.Is(err, smtp.ErrDataTooLarge):
		return replyTooBig
	case errors.As(err, &se):
		return se
	default:
		return replyInternal
	}
}
