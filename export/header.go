// SPDX-License-Identifier: Apache-2.0

package export

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sealmail/sealmail/mimepart"
)

// maxFieldBytes caps each text field of a manifest row (From, To,
// Subject) so that a pathological header cannot bloat the manifest; the
// message digest, not these fields, identifies the message.
const maxFieldBytes = 2048

// decodeText decodes a header value (RFC 2047 encoded words, undeclared
// 8-bit text; see [mimepart.DecodeWords]) and returns a clean single line:
// control characters become spaces, runs of white space collapse, and the
// result is capped at maxFieldBytes. Malformed words are kept as written.
func decodeText(v string) string {
	d, _ := mimepart.DecodeWords(v)
	return clean(d)
}

func clean(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	var sb strings.Builder
	space := false
	for _, r := range v {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			space = true
			continue
		}
		if space && sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		space = false
		if sb.Len()+utf8.RuneLen(r) > maxFieldBytes {
			break
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
