// SPDX-License-Identifier: Apache-2.0

// Package store keeps archived messages durably: append-only segment files of
// encrypted records, and a bbolt catalog that says where each message is.
//
// A record's payload is a standard age file whose plaintext is a zstd frame
// holding a one-line JSON header followed by raw bytes, so that stock `age -d`
// and `zstd -d` recover any message without sealmail. The byte layout is
// specified in docs/format.md.
//
// # Invariants
//
//   - Segments are append-only. Bytes before a segment's committed length never
//     change; a sealed segment never changes at all (it is chmod 0444 and its
//     SHA-256 is in the catalog).
//   - [Store.Append] returns success only after the record bytes are fsync'd and
//     the catalog transaction that points at them is committed (bbolt fsyncs).
//     On any error no catalog entry points at bytes that are not durable.
//   - Each entry is decided in the catalog transaction that commits it: an
//     envelope for a message that is no longer live is stored as a message
//     of its own, and a tombstone whose message changed since the deletion
//     was decided is skipped. A failed catalog commit (it may have reached
//     the disk) stops all changes until the store is reopened.
//   - Records beyond a segment's committed length found at [Open] were
//     written by a commit that never finished and never acknowledged: they
//     are copied aside, reported ([Options.OnDiscard]) and cut off, and their
//     ids are never given again. A torn record is never served.
//   - Every file but catalog.db is written through [Options.FS], so that
//     tests can cut the power at any write, sync or rename (vfs/vfstest).
//     A change the caller audits before the catalog commits it (a seal, a
//     compaction) is recorded as a pending [Intent] in the same transaction,
//     so its outcome is reported even across a crash.
//   - The store holds only age recipients. It can write records but never
//     decrypt them; [OpenPayload] is for readers that hold an identity.
//   - The catalog holds no message content and no addresses in clear: ids,
//     locations, times, sizes and keyed digests only.
//
// # Concurrency
//
// A Store is safe for concurrent use. Callers compress and encrypt in their
// own goroutines; one writer goroutine, owned by the Store and stopped by
// [Store.Close], batches concurrent appends so that they share one segment
// fsync and one catalog commit (group commit).
package store
