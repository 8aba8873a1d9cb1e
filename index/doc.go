// SPDX-License-Identifier: Apache-2.0

// Package index is sealmail's full-text index: it extracts searchable text
// from raw messages (MIME parts, charsets, encoded headers, nested messages,
// attachment names, text-like attachments, and through an [Extractor] the
// text of documents: PDF, Office, OpenDocument, RTF, archives, TNEF), keeps
// a Bluge index of it
// together with the envelope senders and recipients, and answers queries in
// the language of package [query].
//
// The index is derived data. The reader service feeds it (from the stored
// records the audit log vouches for) and can rebuild it at any time; index
// knows nothing of segments or storage. Each document stores what its
// caller needs to rebuild it ([Doc].Records, [Doc].Seq), and one state
// document holds the caller's cursor ([Batch].State), written in the same
// Bluge batch as the documents it covers, so that they never disagree
// after a crash.
//
// # Fields
//
// A bare word or phrase searches subject, body, header From/Sender/To/Cc/Bcc
// (names and addresses), envelope addresses, attachment names and attachment
// text. from: covers header From and Sender and the envelope sender; to:
// covers To, Cc, Bcc and every envelope recipient; cc: and bcc: only their
// own header and envelope recipients of that kind. An address field value
// with "@" matches a whole address ("a@example.com") or a domain and its
// subdomains ("@example.com"); any other value is a phrase of words of the
// names and addresses ("keithp", "example.com", "Carl Worth"). Words are
// maximal runs of letters, digits and "_", lower-cased, as in notmuch's
// Xapian term generator; Han and kana characters are one word each, so a
// Japanese or Chinese word is found as a phrase of its characters.
// Matching is exact: a word finds that word. stem:WORD finds every indexed
// form of WORD's English (Porter2) stem; the forms are looked up in the
// term dictionary when the query runs, so stemming costs no index space.
// The body and attachment text are indexed without positions (they are
// most of the index): a phrase there matches when all its words occur;
// in subject, names, addresses and attachment names a phrase is exact.
// attachment: searches attachment names and text, filename: names only.
//
// # Attachments
//
// With Options.Extractor set, every attachment (or inline part) that
// [extract.Detect] names a document is handed to it, and its text is
// indexed as attachment text. One that it could not extract, or not
// fully, gets flag:unextracted and flag:unextracted-REASON (timeout, cpu,
// memory, limit, encrypted, malformed, crash, unavailable, output; see
// [extract.Reason]); indexing goes on. A [Hit] lists the message's
// attachments with their reason and whether each matched the query: its
// name has all the words of a bare, attachment: or filename: term, or its
// text does (by a per-attachment Bloom filter: about 1% false positives
// for texts of thousands of words, none missed).
//
// Dates: a message is dated by its Date header, else by the time it was
// received. after:D is inclusive of day D, before:D exclusive, days in UTC
// (notmuch's date:D.. and date:..D-1 in a UTC time zone).
//
// # Invariants
//
//   - Extraction never fails or panics: an undecodable part is indexed as far
//     as possible and the document gets flag:decode-error; a message over
//     [MaxTextBytes], [MaxDepth] or [MaxParts] gets flag:truncated, as does
//     one whose attachment hit the extractor's text bound.
//   - Apply (and Add) is durable and atomic when it returns nil: documents,
//     deletions and state together. Re-adding an ID replaces its document.
//   - No query matches the state document.
//   - An index of another [FormatVersion] is never read: Open removes an
//     older one (its caller indexes everything again) and refuses a newer.
//   - Logs never contain message content or addresses.
//
// # Concurrency
//
// All methods of [Index] may be called concurrently. Add extracts text on
// Options.Workers goroutines that it starts and waits for before returning
// (they call the Extractor, so at most Workers extractions run at once);
// writes are serialised. Searches read a consistent snapshot. One process at
// a time may open an index directory (an flock on dir/LOCK).
package index
