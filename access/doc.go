// SPDX-License-Identifier: Apache-2.0

// Package access is the reader's people-and-sessions layer: user accounts with
// roles, password (argon2id) plus TOTP sign-in with recovery codes, throttling
// and lockout of failed sign-ins, sessions (bearer tokens and browser
// cookies), and an HTTPS server that turns a role's permissions into 401/403
// before any handler runs.
//
// Its state lives in a directory of its own (mode 0700) as a bbolt database,
// access.db (specified in docs/format.md, "Reader state (access.db)"). What
// users, roles and the API can do is described in docs/access.md.
//
// # Invariants
//
//   - Secrets are never stored or reported in the clear except the TOTP
//     secret, which the verifier needs: passwords are argon2id hashes, session
//     tokens and recovery codes are SHA-256 hashes. [Event] has no field that
//     could carry a password, code or token.
//   - Every sign-in, failed sign-in, lockout, sign-out, session revocation and
//     user change is reported to the Audit callback inside the database
//     transaction that makes it take effect: if the callback fails, the change
//     is rolled back (a failed sign-in is still refused).
//   - A TOTP time step, once accepted for a user, is never accepted again for
//     that user (RFC 6238 §5.2); a recovery code works once.
//   - Failed attempts are counted before the password is checked, so
//     concurrent guesses cannot slip past the backoff.
//   - The permission matrix ([Matrix]) is the only place that says which role
//     may do what; every endpoint is registered with one [Permission].
//
// # Concurrency
//
// A [State] is safe for concurrent use; bbolt serialises its writes, and at
// most [PasswordParams].Concurrency password hashes run at once (each takes
// MemoryKiB of memory). A [Server] serves each connection in its own
// goroutine; [Server.Shutdown] stops them and closes its State.
package access
