// SPDX-License-Identifier: Apache-2.0

package mimepart

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseHeaderSection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		fields Header
		// offsets of the message part
		headerStart, headerEnd, bodyStart int
		separated                         bool
	}{
		{"CRLF", "A: 1\r\nB:2\r\n\r\nbody", Header{{"A", "1"}, {"B", "2"}}, 0, 11, 13, true},
		{"LF", "A: 1\nB: 2\n\nbody", Header{{"A", "1"}, {"B", "2"}}, 0, 10, 11, true},
		{"folded: line breaks removed only", "Subject: a\r\n\tb\r\n  c\r\n\r\n", Header{{"Subject", "a\tb  c"}}, 0, 21, 23, true},
		{"obsolete white space before colon", "Subject : x\n\n", Header{{"Subject", "x"}}, 0, 12, 13, true},
		{"empty value is present", "X-MS-Journal-Report:\n\n", Header{{"X-MS-Journal-Report", ""}}, 0, 21, 22, true},
		{"garbage lines skipped", "A: 1\nnot a field\n: no name\n\tstray\nB c: no\nC: 3\n\nx", Header{{"A", "1"}, {"C", "3"}}, 0, 47, 48, true},
		{"8-bit name is not a field", "Sübject: x\nA: 1\n\n", Header{{"A", "1"}}, 0, 17, 18, true},
		{"mbox From line skipped", "From a@b Thu Jan  1 00:00:00 1970\nA: 1\n\nx", Header{{"A", "1"}}, 34, 39, 40, true},
		{"empty header", "\r\nbody", nil, 0, 0, 2, true},
		{"no empty line, starts with a field: all header", "A: 1\nB: 2\n", Header{{"A", "1"}, {"B", "2"}}, 0, 10, 10, false},
		{"no empty line, starts with text: all body", "just text\nA: 1\n", nil, 0, 0, 0, false},
		{"first line garbage, empty line later: header", ":::\nSubject ok\n\nbody", nil, 0, 15, 16, true},
		{"lone CR at the end is no empty line", "A: 1\n\r", Header{{"A", "1"}}, 0, 6, 6, false},
		{"empty input", "", nil, 0, 0, 0, false},
	}
	for _, tt := range tests {
		p := Parse([]byte(tt.in), Options{})
		if !reflect.DeepEqual(p.Header, tt.fields) {
			t.Errorf("%s: Parse(%q).Header = %q, want %q", tt.name, tt.in, p.Header, tt.fields)
		}
		if p.HeaderStart != tt.headerStart || p.HeaderEnd != tt.headerEnd || p.BodyStart != tt.bodyStart || p.End != len(tt.in) || p.Separated != tt.separated {
			t.Errorf("%s: Parse(%q) offsets = %d %d %d %d separated %v, want %d %d %d %d %v", tt.name, tt.in,
				p.HeaderStart, p.HeaderEnd, p.BodyStart, p.End, p.Separated, tt.headerStart, tt.headerEnd, tt.bodyStart, len(tt.in), tt.separated)
		}
		if got := ParseHeader([]byte(tt.in)); !reflect.DeepEqual(got, tt.fields) {
			t.Errorf("%s: ParseHeader(%q) = %q, want %q", tt.name, tt.in, got, tt.fields)
		}
	}
}

func TestHeaderLookup(t *testing.T) {
	t.Parallel()
	h := Header{{"Received", "a"}, {"X-Empty", ""}, {"received", "b"}}
	if v, ok := h.Lookup("x-empty"); !ok || v != "" {
		t.Errorf("Lookup(x-empty) = %q, %v, want \"\", true", v, ok)
	}
	if v, ok := h.Lookup("Subject"); ok || v != "" {
		t.Errorf("Lookup(Subject) = %q, %v, want \"\", false", v, ok)
	}
	if got := h.Get("RECEIVED"); got != "a" {
		t.Errorf("Get(RECEIVED) = %q, want the first, a", got)
	}
	if got := h.Values("Received"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Values(Received) = %q, want [a b]", got)
	}
}

func TestHeaderBounds(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for range 10 {
		b.WriteString("X: y\n")
	}
	b.WriteString("Subject: " + strings.Repeat("z", 100) + "\n\tmore\n\nbody")
	p := Parse([]byte(b.String()), Options{MaxHeaderFields: 5, MaxFieldBytes: 50})
	if len(p.Header) != 5 {
		t.Errorf("Parse with MaxHeaderFields 5 kept %d fields", len(p.Header))
	}
	if string(p.Body()) != "body" {
		t.Errorf("Parse with a field bound: body %q, want body (the section is still read to its end)", p.Body())
	}
	p = Parse([]byte("Subject: "+strings.Repeat("z", 100)+"\n\tmore\n\n"), Options{MaxFieldBytes: 50})
	if got := p.Header.Get("Subject"); got != strings.Repeat("z", 50) {
		t.Errorf("Parse with MaxFieldBytes 50: Subject %q (%d bytes)", got, len(got))
	}
}
