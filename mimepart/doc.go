// SPDX-License-Identifier: Apache-2.0

// Package mimepart is sealmail's one MIME reader: it locates the header
// fields, bodies and body parts of an RFC 5322 / MIME message as byte
// offsets into the bytes it was given, and decodes what callers ask for
// (RFC 2047 encoded words, RFC 2045/2231 parameters, transfer encodings,
// charsets, dates). journal, index, export and export/pst all read mail
// through it.
//
// It never re-serialises a message: a [Part] records where its header, body
// and end lie (HeaderStart, BodyStart, End), so a caller can hand back the
// original bytes of any part as a subslice (the approach of mox's
// message.Part). Body parts of a multipart and embedded messages are parsed
// on demand ([Part.Parts], [Part.Message]) and kept, so walking the same
// tree twice costs nothing.
//
// # Leniency
//
// Every input is accepted; nothing returns an error. The rules, chosen so
// that archived mail stays readable rather than strictly valid:
//
//   - Line ends are CRLF or bare LF. A leading mbox "From " line of a message
//     is skipped.
//   - The header section ends at the first empty line. Lines in it that are
//     neither fields nor continuations are skipped. Without an empty line the
//     part is all header if its first line is a field, else all body.
//   - A field name may be followed by white space before the colon (RFC 5322
//     §4.5 obsolete syntax). Unfolding removes the line breaks only (RFC 5322
//     §2.2.3); values are trimmed.
//   - A delimiter line is "--" boundary ["--"] and optional white space,
//     at the start of a line (RFC 2046 §5.1.1); a missing close delimiter
//     ends the last part at the end of the body.
//   - Parameters are read without failing (quoting errors, duplicates: the
//     first wins), with RFC 2231 continuations and charsets.
//   - Encoded words (RFC 2047) are decoded even when their base64 lacks
//     padding, and adjacent words in one charset are joined before charset
//     conversion, so a character split across two words survives. Text in
//     an unknown charset, and undeclared 8-bit text, is read as UTF-8 when
//     valid, else as windows-1252; the decoders report it.
//
// The charset tables are go-message's charset package, plus the labels real
// mail uses that it maps to a narrower charset or lacks (gb2312 is read as
// GB18030, iso-8859-1 as windows-1252, Microsoft's "unicode", UTF-7).
// mime.WordDecoder is not used for encoded words: it converts each word
// alone (breaking split characters), rejects unpadded base64 and fails the
// whole value on one unknown charset.
//
// # Invariants
//
//   - Hostile input is bounded: [Options] caps the nesting depth, the number
//     of parts of one message, the header fields of one part and the bytes
//     of one field value. A part that a bound leaves out is not created, and
//     [Part.Truncated] says so. Memory is linear in the input.
//   - The offsets of a part index the bytes it was parsed from: the data
//     given to [Parse], or the decoded body given to [Part.Nested].
//   - Decoded strings are valid UTF-8.
//
// # Concurrency
//
// A [Part] tree is not safe for concurrent use: parts are parsed lazily.
// The package has no global state; separate trees may be used concurrently.
package mimepart
