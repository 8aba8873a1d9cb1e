// SPDX-License-Identifier: Apache-2.0

// Package reader is the reader service's core (`sealmail access`): it
// follows the receiver through its control socket, checks what it gets
// against the audit log, decrypts with the identity it holds in memory,
// keeps the search index, evaluates legal holds and records what they
// cover with the receiver, decides purge and erasure verdicts, runs
// exports, and serves all of it, scoped by the caller's role, to the
// HTTPS API (registered on an access.Server) and to the local socket
// STATEDIR/reader.sock for root's command line. It makes and executes the
// four-eyes requests that access keeps.
//
// # Invariants
//
//   - A stored record is indexed only if an ingest entry of the audit log,
//     verified by hash chain from the genesis (and every checkpoint's
//     signature with the key pinned at the first attach), names its
//     SHA-256; a document keeps the records it was built from and is
//     rebuilt whole from all of them on each further receipt.
//   - The cursor (audit seq and hash) and the holds' evaluation state are
//     written in the index batch that follows the documents they cover
//     (those written in parallel parts, [index.Batch].Parts, first), so
//     every message an ingest entry at or below the cursor names is in the
//     index; after a crash documents above it may be too, and the tail
//     writes them again.
//   - A hold's "evaluated through" advances only after the receiver has
//     recorded the members it found; purge keeps every message not indexed
//     with all its receipts or updated after some hold's evaluation.
//   - The identity lives in memory only. Without it the reader is locked:
//     it neither indexes nor reads, and says so.
//   - Every search, read, export and download, hold change, purge,
//     erasure, four-eyes step, reindex, unlock and sign-in is audited by
//     the receiver, naming the person; if that fails, the operation is
//     refused.
//   - Where four eyes apply (erasure, hold release, shortening retention),
//     an operation only files a request; the act happens in
//     [Reader.Execute] for a request another officer approved, re-evaluated
//     as things stand then (foureyes.go).
//
// # Concurrency
//
// A [Reader] is safe for concurrent use. [Reader.Run] is its tailing
// goroutine (its caller owns it); while behind it runs a pipeline of three
// goroutines it waits for ([Reader.follow]: fetch and check, build on
// every core, commit in order), at most three feed pages in flight, two of
// them decrypted. Index writes, hold evaluation and
// purge and erasure decisions are serialised by one mutex, searches read
// the index concurrently. Export jobs run in goroutines the Reader owns
// and [Reader.Close] stops.
package reader
