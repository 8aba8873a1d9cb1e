// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"github.com/sealmail/sealmail/mimepart"
)

// Journal reports are read with package mimepart, on byte offsets into the
// DATA the message arrived with. Nothing is copied or re-serialised: the
// original is handed back as a subslice (research doc §5.1 "Keep raw bytes;
// parse alongside").

// Bounds on the MIME structure looked at. They cover a report wrapped in an
// NDR (research §1.7) whose original nests multiparts eight deep, as the
// scanner of earlier versions did; what lies beyond is archived, not read.
const (
	maxDepth = 12
	maxParts = 10000
)

// parse reads the header section of the message in data.
func parse(data []byte) *mimepart.Part {
	return mimepart.Parse(data, mimepart.Options{MaxDepth: maxDepth, MaxParts: maxParts})
}

// mediaType returns the lower-case media type of a part; a missing or
// unreadable Content-Type is text/plain (RFC 2045 §5.2).
func mediaType(p *mimepart.Part) string {
	if p.ContentType == "" {
		return "text/plain"
	}
	return p.ContentType
}

// decodeText undoes the Content-Transfer-Encoding and the charset of a text
// part and returns it as a string. It is best effort: on an error it returns
// what it has and a note for the warnings (which never quote input bytes).
func decodeText(p *mimepart.Part) (string, string) {
	var note string
	body, ok := mimepart.DecodeTransfer(p.Header.Get("Content-Transfer-Encoding"), p.Body())
	if !ok {
		note = "invalid or unknown Content-Transfer-Encoding, decoded as far as possible"
	}
	text, ok := mimepart.DecodeCharset(p.Params["charset"], body)
	if !ok && note == "" {
		note = "unknown charset, read as UTF-8"
	}
	return text, note
}
