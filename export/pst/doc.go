// SPDX-License-Identifier: Apache-2.0

// Package pst writes Unicode Outlook Personal Folders (.pst) files from RFC
// 5322 messages, following the open specification [MS-PST], and reads
// Unicode and ANSI ones back for import: a [Reader] walks the node and
// block B-trees, reads each mail message's property and table contexts and
// rebuilds it as RFC 5322 (read.go, rebuild.go; docs/import.md).
//
// A [Writer] appends every message to the file as it arrives (its property
// context, recipient and attachment tables, attachments and attached
// messages as subnodes) and, at [Writer.Close], writes the folders, the node
// and block B-trees, the allocation maps and the header. See docs/pst.md for
// the structures written, the limits and what is validated.
//
// # Invariants
//
//   - The file is write-once and append-only: a block is never rewritten.
//     Only the header, the density list and the FMap pages are written out
//     of order (at Close).
//   - Every block and page lies inside one AMap interval; the AMap bits of an
//     interval are exactly its map pages, blocks and B-tree pages.
//   - Memory holds the current 248 KiB interval, one B-tree entry per node
//     (32 bytes) and per block (24 bytes), and a 12-byte reference per
//     message to its contents-table row, which waits in a temporary file
//     until Close. At Close the largest folder's tables are built in memory.
//   - PidTagMessageSize and PidTagAttachSize are the bytes of the data
//     blocks reachable from the object's node (its own heap included).
//   - Strings are written as UTF-16LE (PtypString); message text is decoded
//     from its declared charset first.
//   - Logs carry counts and node IDs, never message content.
//
// # Concurrency
//
// A Writer is not safe for concurrent use and starts no goroutines; nor is
// a Reader.
package pst
