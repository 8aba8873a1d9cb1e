// SPDX-License-Identifier: Apache-2.0

// Package offsite keeps copies of an archive off its host: it writes
// backups to a [Target] (a directory, such as a mounted NAS, today; an S3
// bucket is to be the second kind), reads them back, checks them and
// restores their files. It knows files and bytes, not what they mean: the
// archive says which files a backup takes ([Source]) and what a restore does
// with them. The target's layout and the manifest are specified in
// docs/format.md ("Backup target").
//
// # Invariants
//
//   - A backup never changes what an earlier backup's manifest names: it
//     writes objects under names of its own (data/SEQ/…), then its
//     manifest, and only after the manifest is durable removes the older
//     manifests and the objects no manifest names any more. A backup
//     interrupted at any point leaves the previous one complete.
//   - Every object and every file carries its SHA-256 in the manifest, and
//     the manifest its own; readers check all of them and fail on a
//     mismatch rather than return wrong bytes.
//   - A file that grows only by appending (the active segment, the last
//     audit file) reuses the parts of the previous backup only after its
//     prefix was read again and matched their SHA-256.
//   - Secrets are stored only as age files encrypted to the archive's
//     recipients ([SealSecret]); a restore needs an identity to open them.
//   - A manifest is hostile input: its paths are checked before anything is
//     written, and its sizes are bounded.
//
// # Concurrency
//
// One backup writes to a target at a time (the target's lock); functions
// that only read may run meanwhile. Nothing here starts goroutines.
package offsite
