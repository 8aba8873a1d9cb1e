// SPDX-License-Identifier: Apache-2.0

// Package vfstest provides [CrashFS], a strict [vfs.FS] for power-loss
// tests in the spirit of Pebble's strict MemFS and of CrashMonkey: it keeps
// only what was fsync'd, and it can cut the power at any mutating
// operation.
//
// CrashFS is a layer over a real directory, so that code which reads through
// the os package and libraries that do their own I/O (bbolt, Bluge) work
// unchanged. Every change goes to the real directory at once (as it goes to
// the page cache); CrashFS records, beside it, the durable state: each
// file's content as of its last [vfs.File.Sync], and each directory's
// entries as of its last [vfs.FS.SyncDir]. [CrashFS.Restore] rolls the real
// directory back to that durable state, as a power cut would leave it.
//
// # The model
//
//   - A file's content (and size) survives as of its last Sync; unsynced
//     writes and truncations are lost (with [Options.TornWrites], the first
//     half of the bytes appended since survives: a torn write).
//   - A create, rename or remove survives only after SyncDir of the parent
//     directory (of both directories for a rename). A synced file whose
//     directory entry was never synced is lost; a rename without a
//     directory sync reverts.
//   - A chmod is durable at once (it is journaled metadata that may reach
//     the disk at any moment): the adversarial choice for code that must not
//     depend on its order.
//   - External files ([Options.External], such as bbolt's catalog.db) write
//     through the os package and fsync every transaction they commit; they
//     are taken as fully durable at each commit. At the crash their bytes are
//     copied (bbolt's copy-on-write pages and checksummed meta pages make a
//     copy at any instant a committed state), and Restore puts that copy
//     back, so that commits made after the crash do not survive it.
//   - Ignored paths ([Options.Ignore], such as a derived index) are left as
//     they are.
//
// After the crash every mutating operation fails with [ErrCrashed] and
// changes nothing: the process goes on running, but nothing it does reaches
// the "disk" any more.
package vfstest
