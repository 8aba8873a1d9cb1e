// SPDX-License-Identifier: Apache-2.0

// Package extract turns attachments into searchable text: PDF (poppler's
// pdftotext), Word and Excel 97–2003 (catdoc's catdoc and xls2csv), Office
// Open XML (docx, xlsx, pptx), OpenDocument (odt, ods, odp), RTF, ZIP
// archives (recursively) and TNEF (winmail.dat: its body, compressed RTF
// included, and its attachments), read by Go code in this package and by
// those tools. Every attachment is hostile input, so extraction normally
// runs in a [Sandbox]: a child process per attachment, confined by
// Landlock and seccomp and bounded in wall time, CPU time, memory and
// output. [Local] runs the Go parsers in the caller (for tests and
// trusted input) and the tools under the same confinement.
//
// [Detect] names a format from the first bytes, the declared type and the
// file name (the bytes win), without parsing, so a caller knows cheaply
// whether an attachment is worth a sandbox.
//
// # The sandbox
//
// The parent starts Options.Command (the sealmail binary's hidden extract
// subcommand, or a test binary) from an OS thread it restricts first, so
// the child is confined from its first instruction and every tool it runs
// inherits the confinement (see [policy]). The child writes one ready byte;
// the parent then sets its limits with prlimit(2), relative to its size at
// start, and sends one JSON request line and the attachment on standard
// input; the child answers one JSON result on standard output ([request],
// [response]: an internal protocol between one binary's two halves,
// versioned, never stored). The parent kills the child's process group on
// overrun and classifies the ending: the wall deadline, RLIMIT_CPU's
// signals with the CPU time used, the Go runtime's or a tool's
// out-of-memory message, an oversized answer, any other death. It checks
// the answer like any input.
//
// # Invariants
//
//   - Extraction never fails or panics: a file that cannot be read, fully
//     or at all, gives a [Result] with a [Reason]; the text found before the
//     problem is kept.
//   - Text is valid UTF-8 without control characters but newline and tab,
//     at most Limits.MaxTextBytes.
//   - Work is bounded by Limits (input, text, unpacked bytes, depth,
//     entries) and Options (time, CPU, memory); an archive's members are
//     counted by the bytes really unpacked, never by their declared sizes.
//     A spreadsheet's shared strings are read once, not once per cell.
//   - No file is written. A child's environment holds nothing of the
//     caller's.
//
// # Concurrency
//
// [Sandbox] and [Local] are safe for concurrent use; each Extract call
// runs its own child processes and waits for them, so the caller bounds
// the concurrency. Each child is owned by a goroutine locked to the
// thread it was started from, which waits for it and ends with it.
package extract
