// SPDX-License-Identifier: Apache-2.0

package mimepart

import "bytes"

// span is the byte range of one body part (RFC 2046 §5.1.1): from the first
// byte after its delimiter line up to, not including, the line break that
// precedes the next delimiter.
type span struct {
	start, end int
	// terminated says another delimiter (next part or close) follows.
	terminated bool
}

// splitMultipart finds at most max body parts of the multipart body
// data[start:end] with the given boundary. closed reports whether the close
// delimiter was seen. A delimiter line is "--" boundary ["--"] *(SP / HTAB)
// at the start of a line (RFC 2046 §5.1.1); a line where the boundary is
// followed by anything else is part content.
func splitMultipart(data []byte, start, end int, boundary string, max int) (parts []span, closed bool) {
	if boundary == "" {
		return nil, false
	}
	delim := make([]byte, 0, 2+len(boundary))
	delim = append(append(delim, "--"...), boundary...)
	partStart := -1 // -1 while in the preamble
	for pos := start; pos < end; {
		k := bytes.Index(data[pos:end], delim)
		if k < 0 {
			break
		}
		idx := pos + k
		pos = idx + len(delim)
		if idx > start && data[idx-1] != '\n' {
			continue
		}
		q := idx + len(delim)
		isClose := q+1 < end && data[q] == '-' && data[q+1] == '-'
		if isClose {
			q += 2
		}
		for q < end && (data[q] == ' ' || data[q] == '\t') {
			q++
		}
		lineEnd := -1
		switch {
		case q == end:
			lineEnd = end
		case data[q] == '\n':
			lineEnd = q + 1
		case data[q] == '\r' && q+1 < end && data[q+1] == '\n':
			lineEnd = q + 2
		case data[q] == '\r' && q+1 == end:
			lineEnd = end
		}
		if lineEnd < 0 {
			continue // the boundary is a prefix of a content line
		}
		if partStart >= 0 {
			// The line break before the delimiter belongs to it.
			e := idx
			if e > partStart && data[e-1] == '\n' {
				e--
				if e > partStart && data[e-1] == '\r' {
					e--
				}
			}
			parts = append(parts, span{start: partStart, end: e, terminated: true})
			if len(parts) >= max {
				return parts, false
			}
		}
		if isClose {
			return parts, true
		}
		partStart = lineEnd
		pos = lineEnd
	}
	if partStart >= 0 {
		parts = append(parts, span{start: partStart, end: end})
	}
	return parts, false
}
