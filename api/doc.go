// SPDX-License-Identifier: Apache-2.0

// Package api serves the archive to the CLI and the reader service over the
// daemon's control socket (HTTP on a Unix socket, DIR/control.sock) and is
// their client for it.
//
// # Invariants
//
//   - The socket is mode 0600 (a second socket for service users 0660) and
//     every connection's peer credentials are checked: only root, the
//     daemon's own user and the configured service users (the reader's) are
//     served; service users only the reader's endpoints, and only they (and
//     the daemon's user) may name the person they act for.
//   - The API carries only what the archive returns: stored age records and
//     audit lines, never an identity and never plaintext (an import brings
//     plaintext in). No endpoint takes index documents.
//   - An error crosses the socket typed: every reply that is not 200 carries
//     an [ErrorBody], the *archive.Error of the daemon-side error, and the
//     [Client] returns that *archive.Error, so that callers test errors (and
//     the CLI chooses its exit code) the same way with or without a daemon.
//   - POST /v1/import carries one message being imported into the daemon
//     (plaintext, as SMTP delivers it) and answers with its id and outcome.
//
// # Concurrency
//
// A [Server] serves each connection in its own goroutine; [Server.Shutdown]
// stops them. A [Client] is safe for concurrent use.
package api
