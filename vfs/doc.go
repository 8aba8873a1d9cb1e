// SPDX-License-Identifier: Apache-2.0

// Package vfs is the file system the store and the audit log write through,
// and the durable-file helpers every package shares: [WriteFile] (atomic
// replace), [SyncDir] and [Lock]; and the readers that long copies share:
// [ContextReader] and a [Pace] that bounds their rate.
//
// Writers take an [FS] in their Options; nil means [OS], the real file
// system. Tests substitute a strict implementation (package vfstest) that
// keeps only what was fsync'd and can lose power at any operation.
//
// # Invariants
//
//   - A file written by [WriteFile] either does not exist under its name or
//     is complete: it is written to name.tmp, fsync'd, renamed into place,
//     and the directory is fsync'd before WriteFile returns.
//   - A name created, renamed or removed is durable only after [SyncDir] of
//     its directory returned; file contents only after [File.Sync].
//   - [Lock] holds an exclusive flock(2): it goes away with the process, so
//     a crash never leaves a stale lock.
package vfs
