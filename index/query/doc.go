// SPDX-License-Identifier: Apache-2.0

// Package query parses sealmail's search language into an AST. It has no
// dependency on the index engine, so that policy (legal holds, retention
// rules) can reuse it; package index translates the AST to Bluge queries.
//
// # Language
//
//	word  "a phrase"           subject, body, addresses and names, attachment names and text
//	from:x to:x cc:x bcc:x     an address, a domain (@example.com) or words of names and addresses
//	subject:x body:x           words or a quoted phrase in that part only
//	attachment:x filename:x    attachment names and text; names only
//	message-id:<id> (id:)      the Message-ID header, without angle brackets
//	involved:addr              an address involved in the message (header or envelope)
//	stem:word  stem:"a b"      like a bare word or phrase, each word in any form of its
//	                           English stem (stem:befriend finds befriends, befriended, befriending)
//	after:2024-03-01           dated on or after that day (inclusive, UTC)
//	before:2024-03-01          dated before that day (exclusive, UTC)
//	larger:10M smaller:500K    raw size, strictly; K, M, G are powers of 1024
//	has:attachment flag:NAME   flags such as flag:decode-error, flag:truncated
//	*                          every message
//	a b   a AND b   a OR b   NOT a   -a   ( … )
//
// Matching is exact by default: a word finds that word, not its other
// forms (an e-discovery search must find what was written); stem: asks for
// the forms of an English (Porter2) stem, as notmuch does for unquoted
// words. Field names and operators are case-insensitive; so is matching. Bare
// terms next to each other are ANDed. NOT and - bind tightest, then AND,
// then OR. after:D matches notmuch's date:D.. and before:D matches
// date:..D-1 (in UTC).
//
// # Invariants
//
//   - Parse never panics; every error is a *[SyntaxError] with the byte
//     position and what was expected, e.g. "query: at 12: expected ')'".
//   - Nesting is bounded by [MaxDepth].
//   - Every Node's String is a query that parses back to an equal tree.
package query
