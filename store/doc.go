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
//   - The segment is the commit point: [Store.Append] returns success only
//     after the record bytes (and, through [Options.OnCommit], their audit
//     entries) are fsync'd. The catalog trails it: the changes of
//     acknowledged commits are pending in memory, visible to every reader
//     at once, until a flush writes them to catalog.db in one bbolt
//     transaction (at the latest after [Options.FlushInterval], and before
//     any other catalog change). On any error no catalog entry points at
//     bytes that are not durable.
//   - Each entry is decided against the catalog as the writer sees it
//     (catalog.db, the pending changes, the batch's earlier entries), with
//     no other catalog change in between: an envelope for a message that is
//     no longer live is stored as a message of its own, and a tombstone
//     whose message changed since the deletion was decided is skipped. A
//     failed catalog commit (it may have reached the disk) stops all changes
//     until the store is reopened.
//   - Records beyond the active segment's committed length in catalog.db
//     found at [Open] were written by the commits after the last flush: the
//     complete ones that [Options.OnReplay] vouches for are replayed into
//     the catalog; what follows was never acknowledged: it is copied aside,
//     reported ([Options.OnDiscard]) and cut off, and its ids are never
//     given again. A torn record is never served.
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
// fsync (group commit), and flushes the catalog. catMu serialises the
// writer's decisions with every other catalog transaction; pendMu guards
// the pending changes that readers see.
package store
