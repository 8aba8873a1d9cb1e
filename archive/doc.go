// SPDX-License-Identifier: Apache-2.0

// Package archive is sealmail's one facade: every way in (the SMTP receiver,
// the control socket, the CLI without a daemon) goes through an [Archive] to
// ingest, list, read and report, so that there is no second implementation
// to drift. Callers above it (the CLI, the control socket, the reader
// service) see only its types and errors ([Error], [AsError], [ErrNotFound],
// …), never a leaf's; the operations that need an identity
// ([Sealed.Decrypt], [ReapplyPolicy], [VerifyContent]) run in the CLI or the
// reader against an [Archive] or the control socket's client alike.
//
// The receiver keeps no index and decides no deletion: it serves the
// reader service the audit log and the records ([Archive.Feed]), keeps the
// holds and the messages the reader found them to cover
// ([Archive.AddHoldMembers]), and executes the reader's purge and erasure
// verdicts after checking them ([Archive.ExecutePurge]). [Chain] and
// [ParseRecord] are how the reader checks what it is fed.
//
// # Invariants
//
//   - [Archive.Ingest] returns success only after the store has made the
//     message durable; the caller may then acknowledge it.
//   - An [Archive] never decrypts and never holds an identity: [Archive.Get]
//     returns the stored age records, and the caller decrypts them
//     ([Sealed.Decrypt]) with an identity it holds, in its own process.
//   - The feed never serves an audit line beyond its horizon: every ingest
//     entry up to it has had its catalog commit or rollback.
//   - No verdict deletes a message an active hold's membership names, and
//     every deletion order is audited with every id before it is executed.
//   - A journal report's envelope is trusted only from a configured
//     journaling source (client network or AUTH user).
//   - Every audit entry the archive writes has the fields of its type's
//     struct (auditfields.go); docs/format.md lists them.
//
// # Concurrency
//
// An Archive is safe for concurrent use by many SMTP sessions and API calls.
package archive
