// SPDX-License-Identifier: Apache-2.0

// Package access is the reader's people-and-sessions layer: user accounts with
// roles, password (argon2id) plus TOTP or WebAuthn sign-in with recovery
// codes, sign-in through OIDC providers, throttling and lockout of failed
// sign-ins, sessions (bearer tokens and browser cookies), four-eyes approval
// of destructive acts ([FourEyes]), and an HTTPS server that turns a role's
// permissions into 401/403 before any handler runs.
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
//   - Every sign-in, failed sign-in, lockout, sign-out, session revocation,
//     user change and four-eyes transition is reported to the Audit callback
//     (or, for the command line, the audit outbox) inside the database
//     transaction that makes it take effect: if the callback fails, the change
//     is rolled back (a failed sign-in is still refused).
//   - An OIDC sign-in counts as multi-factor only if its verified ID token
//     says so (amr, acr); otherwise sealmail's own second factor follows or
//     the sign-in is refused. A callback is accepted once, for the state it
//     was started with, from the browser that started it.
//   - A four-eyes request is approved only by an officer (or root) other than
//     its requester, and executed at most once by this package.
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
// MemoryKiB of memory). Calls to OIDC providers are made in the caller's
// goroutine; the only background work is go-oidc's fetching of a provider's
// keys, which ends within the 15-second timeout of every provider call. A
// [Server] serves each connection in its own goroutine; [Server.Shutdown]
// stops them and closes its State.
package access
