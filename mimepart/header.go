// SPDX-License-Identifier: Apache-2.0

package mimepart

import (
	"bytes"
	"strings"
)

// Field is one header field.
type Field struct {
	// Name is the field name as written, without trailing white space.
	Name string
	// Value is the unfolded value with surrounding white space removed.
	// It holds the raw bytes (possibly 8-bit); see [DecodeWords].
	Value string
}

// Header is the fields of one header section, in order.
type Header []Field

// Lookup returns the value of the first field named name (compared
// case-insensitively) and whether there is one. A field with an empty value
// is present.
func (h Header) Lookup(name string) (string, bool) {
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			return h[i].Value, true
		}
	}
	return "", false
}

// Get returns the value of the first field named name, or "".
func (h Header) Get(name string) string {
	v, _ := h.Lookup(name)
	return v
}

// Values returns the values of every field named name, in order.
func (h Header) Values(name string) []string {
	var out []string
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			out = append(out, h[i].Value)
		}
	}
	return out
}

// ParseHeader parses the header section at the start of data, as [Parse]
// does for a message, without looking at the body.
func ParseHeader(data []byte) Header {
	var s section
	s.scan(data, 0, len(data), true, Options{}.withDefaults())
	return s.header
}

// section is the result of scanning one part's header section.
type section struct {
	header      Header
	headerStart int // after a skipped mbox From_ line
	headerEnd   int // where the empty line starts, or the end of the fields
	bodyStart   int
	separated   bool // an empty line ended the header section
}

// scan reads the header section of data[start:end]. message says the part
// is a message (top level or embedded), whose mbox From_ line is skipped.
func (s *section) scan(data []byte, start, end int, message bool, o Options) {
	if message && bytes.HasPrefix(data[start:end], []byte("From ")) {
		// An mbox separator, not a field.
		if i := bytes.IndexByte(data[start:end], '\n'); i >= 0 {
			start += i + 1
		} else {
			start = end
		}
	}
	s.headerStart = start
	firstIsField := false
	for i, first := start, true; i < end; first = false {
		lineEnd, next := lineAt(data, i, end)
		line := data[i:lineEnd]
		if len(line) == 0 {
			if data[next-1] != '\n' {
				break // a lone CR at the end, not an empty line
			}
			// RFC 5322 §2.1: an empty line ends the header section.
			s.headerEnd, s.bodyStart, s.separated = i, next, true
			return
		}
		if line[0] == ' ' || line[0] == '\t' {
			i = next // a continuation without a field: skipped
			continue
		}
		name, colon := fieldName(line)
		if first {
			firstIsField = colon > 0
		}
		if colon <= 0 {
			i = next // not a field: skipped
			continue
		}
		// Collect the continuation lines (RFC 5322 §2.2.3).
		valStart := i + colon + 1
		contEnd, contNext := lineEnd, next
		for contNext < end && (data[contNext] == ' ' || data[contNext] == '\t') {
			contEnd, contNext = lineAt(data, contNext, end)
		}
		if len(s.header) < o.MaxHeaderFields {
			s.header = append(s.header, Field{Name: string(name), Value: unfold(data[valStart:contEnd], o.MaxFieldBytes)})
		}
		i = contNext
	}
	// No empty line: all header if it starts with a field, else all body.
	if firstIsField {
		s.headerEnd, s.bodyStart = end, end
		return
	}
	s.header = nil
	s.headerEnd, s.bodyStart = start, start
}

// lineAt returns the end of the line that starts at i (before CRLF or LF)
// and the start of the next line.
func lineAt(data []byte, i, end int) (lineEnd, next int) {
	j := bytes.IndexByte(data[i:end], '\n')
	if j < 0 {
		lineEnd, next = end, end
	} else {
		lineEnd, next = i+j, i+j+1
	}
	if lineEnd > i && data[lineEnd-1] == '\r' {
		lineEnd--
	}
	return lineEnd, next
}

// fieldName returns the name of the field that line starts and the index
// of its colon, or a colon index of 0 when line is not a field. A name is
// printable US-ASCII other than ":" (RFC 5322 §3.6.8 ftext), optionally
// followed by white space (§4.5 obsolete syntax).
func fieldName(line []byte) ([]byte, int) {
	c := bytes.IndexByte(line, ':')
	if c <= 0 {
		return nil, 0
	}
	name := bytes.TrimRight(line[:c], " \t")
	if len(name) == 0 {
		return nil, 0
	}
	for _, b := range name {
		if b <= ' ' || b >= 0x7f {
			return nil, 0
		}
	}
	return name, c
}

// unfold returns raw, a field value that may span lines, without its line
// breaks and surrounding white space, capped at max bytes.
func unfold(raw []byte, max int) string {
	raw = bytes.TrimSpace(raw)
	if bytes.IndexByte(raw, '\n') < 0 {
		if len(raw) > max {
			raw = raw[:max]
		}
		return string(raw)
	}
	out := make([]byte, 0, min(len(raw), max))
	for len(raw) > 0 && len(out) < max {
		line := raw
		if j := bytes.IndexByte(raw, '\n'); j >= 0 {
			line, raw = raw[:j], raw[j+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		out = append(out, line[:min(len(line), max-len(out))]...)
	}
	return string(out)
}
