// SPDX-License-Identifier: Apache-2.0

// Package smtpd receives journaled mail over SMTP and hands each message,
// byte-exact, to an [Ingester]; it answers 250 only once the Ingester has
// made the message durable.
//
// smtpd is the SMTP adapter of sealmail, built on github.com/emersion/go-smtp.
// It knows nothing of storage: the archive is reached only through the
// two-method [Ingester] interface declared here. It owns the protocol
// policy: TLS (STARTTLS on [Server.Serve] listeners, implicit TLS on
// [Server.ServeTLS] listeners, TLS 1.2 at least), AUTH PLAIN after TLS,
// client network allowlist, accepted recipients, size, recipient and
// connection limits, timeouts, and graceful shutdown.
//
// Extensions advertised: PIPELINING, 8BITMIME, SMTPUTF8, SIZE (the limit),
// ENHANCEDSTATUSCODES, CHUNKING (BDAT, which Exchange uses when offered),
// STARTTLS before TLS when configured, AUTH PLAIN after TLS when users are
// configured. Not advertised: BINARYMIME, DSN, REQUIRETLS, LIMITS.
//
// What the Ingester gets:
//
//   - DATA: the content after dot-unstuffing (RFC 5321 §4.5.2), line
//     endings exactly as sent. Only CRLF "." CRLF ends DATA; a bare LF
//     stays a bare LF and "\n.\n" is content, not the end (this also keeps
//     SMTP smuggling out).
//   - BDAT: the concatenated chunks, untouched.
//   - Lines longer than RFC 5321 §4.5.3.1.6's 1000 octets are accepted and
//     archived as sent: a journaling archive must never lose mail because
//     a sender broke a rule. A line is bounded only by the message size.
//   - Malformed MIME, 8-bit and binary bytes, NUL: passed through. smtpd
//     never parses the message.
//
// DATA is read by the patched go-smtp in third_party/go-smtp (PATCHES.md):
// RFC 5321 §4.5.2 exactly, so a line "." CR X keeps its CR and a line
// after CR CRLF is a line start; a message of exactly MaxMessageBytes
// octets is accepted with DATA as with BDAT.
//
// # Front door limits
//
// Command lines are bounded by MaxCommandLineBytes (4 KiB), before TLS and
// after; content only by MaxMessageBytes. Memory for messages in flight is
// bounded by MaxInFlightBytes (each message charged [MessageMemoryFactor]
// × its buffer), past which MAIL and content get 452 4.3.1. Connection
// slots: MaxConnections, of which ReservedConnections only for
// TrustedNetworks (the journaling sources), MaxConnectionsPerIP per other
// address, MaxSessionTime per connection, MaxIdleCommands commands without
// a delivered message. Failed AUTH is throttled per address and per user
// with a doubling backoff (454 4.7.0 without a password check); user names
// reach logs and [Options.OnAuth] cut to 256 bytes, refused attempts only
// as summaries ([Options.OnAuthThrottled]). TLS 1.2 offers AEAD suites
// only; [Server.SetCertificate] replaces the certificate for new
// handshakes.
//
// Replies the package chooses live in replies.go; replies to protocol errors
// (syntax, sequence, unknown commands) are go-smtp's. The 421 that closes
// an idle connection at shutdown or after CommandTimeout carries go-smtp's
// text "4.4.2 Idle timeout, bye bye". Clients outside AllowedNetworks get
// "421 4.7.1" before the greeting: a temporary reply on purpose, so that a
// journaling source refused by a configuration mistake keeps its mail
// queued and retries instead of bouncing it.
//
// # Invariants
//
//   - 250 for a message is sent only after [Ingester.Ingest] returned a
//     nonzero id without error; the reply names that id.
//   - Every error that is not a known client fault is answered with a 4xx
//     (451 4.3.0 by default, 452 4.3.1 for sealmail.ErrStorageFull),
//     never 5xx, so the sender keeps the message. Reply texts are generic
//     and never carry paths, configuration or error details.
//   - The bytes given to Ingest are the bytes the client sent in DATA
//     (after dot-unstuffing) or BDAT, at most MaxMessageBytes of them.
//   - A message is held in memory whole while it is ingested; all messages
//     in flight together are charged at most MaxInFlightBytes, and a
//     command line takes at most MaxCommandLineBytes. Message buffers are
//     reused for later messages: the Ingester keeps nothing of them.
//   - Logs carry remote, id, size and err; envelope addresses and AUTH user
//     names only at debug level; never message content or passwords.
//
// # Concurrency
//
// go-smtp runs one goroutine per connection, and for BDAT one more that
// runs Session.Data while the connection goroutine reads chunks; session
// state is guarded by a mutex for that reason. The server counts its
// connections and knows for each whether a transaction (MAIL to the reply
// for its content) is in flight. [Server.Shutdown] closes the listeners,
// answers MAIL with 421 4.3.2, closes idle connections at their next read
// (with 421), lets every transaction in flight finish and then closes that
// connection too; when its context ends first it closes all connections and
// cancels the context passed to running Ingest calls. A [Server] may serve
// several listeners at once; all of them share MaxConnections.
// [Options.OnAuth] and the Ingester are called from connection goroutines,
// possibly concurrently.
package smtpd
