// SPDX-License-Identifier: Apache-2.0

// Package archive is sealmail's one facade: every way in (the SMTP receiver,
// the control socket, the CLI without a daemon) goes through an [Archive] to
// ingest, list, read and report, so that there is no second implementation
// to drift.
//
// # Invariants
//
//   - [Archive.Ingest] returns success only after the store has made the
//     message durable; the caller may then acknowledge it.
//   - The archive never decrypts: [Archive.Get] returns the stored age
//     records and the caller decrypts with an identity it holds.
//   - A journal report's envelope is trusted only from a configured
//     journaling source (client network or AUTH user).
//
// # Concurrency
//
// An Archive is safe for concurrent use by many SMTP sessions and API calls.
package archive
