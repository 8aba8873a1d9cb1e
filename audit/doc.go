// SPDX-License-Identifier: Apache-2.0

// Package audit keeps sealmail's tamper-evident audit log: an append-only,
// hash-chained log of JSON lines with periodic Ed25519-signed checkpoints,
// and the verifier that checks it.
//
// A [Log] is created once per archive with [Create] (which also makes the
// signing key) and attached to with [Open]. [Log.Append] records an [Event];
// [Log.Checkpoint] signs the current head; [Verify] checks everything;
// [Read] lists entries for `audit show`; [Checkpoint.MarshalText] and
// [ParseCheckpoint] carry checkpoints off the host and back. The on-disk
// format, the hashing and signing rules and the threat model are specified
// in docs/format.md ("Audit log format").
//
// # Invariants
//
//   - Entries are numbered 1, 2, … without gaps across all files; each line
//     holds the SHA-256 of the previous line's bytes (entry 1: of the first
//     file's header line). Lines are never rewritten; only [Open] may cut an
//     incomplete final line that was never acknowledged.
//   - Append returns only after the entry's line and its newline are written
//     and fsync'd (after a rotation, also the new file and the directory).
//   - A checkpoint is itself an entry (type "checkpoint") right after the
//     entry it covers, so dropping one breaks the chain.
//   - Entries hold no message content and no secrets: callers pass only
//     structured facts in [Event.Fields].
//   - Readers reject a file whose header carries an unknown version with
//     [ErrUnsupportedVersion].
//
// # Concurrency
//
// One process writes a directory at a time (an flock on DIR/lock; a second
// [Open] fails with [ErrLocked]). Inside it, a single writer goroutine owned
// by the [Log] serialises all writes: Append calls queue requests, and the
// writer takes everything queued, writes it with one write and one fsync
// (group commit), and answers every caller. The writer also runs the
// checkpoint timer. [Log.Close] drains the queue, writes a final checkpoint
// and waits for the writer to exit. [Verify] and [Read] only read and may
// run at any time, from any process, concurrently with the writer: they stop
// at the last complete line.
package audit
