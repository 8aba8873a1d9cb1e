// SPDX-License-Identifier: Apache-2.0

// Package export writes messages out of the archive for auditors and
// courts: EML (a directory or a zip of .eml files, byte-exact) and mbox
// (mboxrd), each with a chain-of-custody manifest. PST lives in
// [github.com/sealmail/sealmail/export/pst].
//
// Beside the writers are the import readers (docs/import.md): [Reader]s
// that stream messages out of an mbox ([OpenMbox], mboxrd or mboxo), a
// Maildir tree ([OpenMaildir]), .eml files or a zip of them ([OpenEML]), a
// PST ([OpenPST]) and an IMAP server ([OpenIMAP], read-only). Each holds
// one message (or one IMAP batch) in memory at a time; a problem with one
// message is an [*ItemError] and reading goes on.
//
// The caller (the CLI) decrypts messages and hands them one at a time to a
// [Writer]'s Add; Close writes the manifest. [NewEMLDir], [NewEMLZip] and
// [NewMbox] create the writers. docs/export.md describes the formats, the
// manifest fields and how an auditor verifies an export with stock tools
// (sha256sum -c, unzip, python3 mailbox).
//
// # Invariants
//
//   - An EML export holds every message byte-exact, one file per message,
//     named YYYYMMDD-HHMMSS-<id>.eml after its received time in UTC; ids
//     are unique per writer ([ErrDuplicate]), so names are.
//   - An mbox export is mboxrd: CRLF becomes LF, ^>*From  lines get one more
//     '>', every message ends with an empty line. Unquoting gives back the
//     original with LF line ends (and a final line break).
//   - Every manifest row's SHA-256 and size are of the original bytes
//     (Item.Raw). manifest.sha256, in sha256sum format, covers
//     manifest.csv and manifest.json and the exported files (each .eml, or
//     the mbox file), so `sha256sum -c manifest.sha256` checks the whole
//     export.
//   - Nothing is overwritten: the output (and the mbox's manifest files)
//     must not exist, an EML directory may exist only if empty.
//   - Memory does not grow with message size beyond the message being
//     added; it grows with the count only by one manifest row and one
//     map entry per message, kept until Close streams the manifests out
//     (measured: 403 bytes per message with about 100 bytes of header
//     text; From, To and Subject are capped at 2048 bytes each). Rows are
//     kept in memory, not spooled: a million-message export holds about
//     400 MB.
//   - Close makes the export durable: every file it wrote is fsync'd, then
//     the directory holding it. An EML directory's message files are
//     fsync'd by Add already.
//   - Logs carry ids, counts and paths, never message content, subjects or
//     addresses.
//
// # Concurrency
//
// Writers start no goroutines. Their methods lock, so they may be called
// from several goroutines, but Add calls are serialised and the export
// order is the order in which they acquire the lock.
package export
