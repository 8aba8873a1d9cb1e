// SPDX-License-Identifier: Apache-2.0

package mimepart

import (
	"reflect"
	"testing"
)

func TestSplitMultipart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		parts  []string
		closed bool
	}{
		{"pre\r\n--b\r\nA\r\n--b\r\nB\r\n--b--\r\nepi", []string{"A", "B"}, true},
		{"--b\nA\n\n--b  \nB\n--b--", []string{"A\n", "B"}, true},
		{"--b\r\n\r\n--b--\r\n", []string{""}, true},
		{"--b\r\nA\r\n--bb\r\n--b -\r\nC", []string{"A\r\n--bb\r\n--b -\r\nC"}, false},
		{"no delimiters at all", nil, false},
		{"x--b\r\n--b\r\nA", []string{"A"}, false},
		{"--b\t\r\nA\r\n--b--\t \r\n", []string{"A"}, true},
		{"--b\r\nA\r\n--b--x\r\n--b--", []string{"A\r\n--b--x"}, true},
		{"--b\r\nA\r\n--b\r", []string{"A", ""}, false},
	}
	for _, tt := range tests {
		data := []byte(tt.in)
		spans, closed := splitMultipart(data, 0, len(data), "b", 100)
		var got []string
		for _, s := range spans {
			got = append(got, string(data[s.start:s.end]))
		}
		if !reflect.DeepEqual(got, tt.parts) || closed != tt.closed {
			t.Errorf("splitMultipart(%q) = %q, %v, want %q, %v", tt.in, got, closed, tt.parts, tt.closed)
		}
	}
}

func TestParts(t *testing.T) {
	t.Parallel()
	in := "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\npreamble\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\none\r\n" +
		"--b\r\n\r\ntwo\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n" +
		"--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\nalt\r\n--c--\r\n" +
		"--b--\r\nepilogue"
	data := []byte(in)
	p := Parse(data, Options{})
	if p.ContentType != "multipart/mixed" || !p.IsMultipart() {
		t.Fatalf("Parse: ContentType %q, multipart %v", p.ContentType, p.IsMultipart())
	}
	parts := p.Parts()
	if len(parts) != 4 || !p.Closed() {
		t.Fatalf("Parts() = %d parts, closed %v; want 4, true", len(parts), p.Closed())
	}
	bodies := []string{"one", "two", "Subject: inner\r\n\r\ninner body", "--c\r\n\r\nalt\r\n--c--"}
	types := []string{"text/plain", "", "message/rfc822", "multipart/alternative"}
	for i, c := range parts {
		if string(c.Body()) != bodies[i] || c.ContentType != types[i] || !c.Terminated || c.Depth != 1 {
			t.Errorf("part %d: body %q type %q terminated %v depth %d, want %q %q true 1", i, c.Body(), c.ContentType, c.Terminated, c.Depth, bodies[i], types[i])
		}
		if &c.Raw()[0] != &data[c.HeaderStart] {
			t.Errorf("part %d: Raw is not a subslice of the input", i)
		}
	}
	if parts[0].Params["charset"] != "utf-8" {
		t.Errorf("part 0 params %v, want charset utf-8", parts[0].Params)
	}
	// The embedded message is parsed in place.
	m := parts[2].Message()
	if m == nil || m.Header.Get("Subject") != "inner" || string(m.Body()) != "inner body" || m.Depth != 2 {
		t.Fatalf("Message() = %+v, want the inner message at depth 2", m)
	}
	if parts[2].Message() != m {
		t.Errorf("Message() parsed twice")
	}
	if &m.Body()[0] != &data[m.BodyStart] {
		t.Errorf("Message().Body() is not a subslice of the input")
	}
	alt := parts[3].Parts()
	if len(alt) != 1 || string(alt[0].Body()) != "alt" || alt[0].Depth != 2 {
		t.Errorf("nested multipart parts = %d, want 1 with body alt at depth 2", len(alt))
	}
	// A missing close delimiter: the last part runs to the end.
	p = Parse([]byte("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nfirst\n--b\nContent-Type: text/plain\n\ncut off"), Options{})
	parts = p.Parts()
	if len(parts) != 2 || p.Closed() || !parts[0].Terminated || parts[1].Terminated || string(parts[1].Body()) != "cut off" {
		t.Errorf("unterminated multipart: %d parts, closed %v", len(parts), p.Closed())
	}
	// No boundary: not a multipart to split.
	p = Parse([]byte("Content-Type: multipart/mixed\n\n--b\n\nx\n--b--\n"), Options{})
	if p.IsMultipart() || p.Parts() != nil {
		t.Errorf("multipart without boundary: IsMultipart %v, Parts %v", p.IsMultipart(), p.Parts())
	}
}

func TestBounds(t *testing.T) {
	t.Parallel()
	// Depth: message/rfc822 inside message/rfc822.
	var in []byte
	for range 10 {
		in = append(in, "Content-Type: message/rfc822\r\n\r\n"...)
	}
	in = append(in, "Subject: deep\r\n\r\nbottom"...)
	p := Parse(in, Options{MaxDepth: 4})
	depth := 0
	for q := p; q != nil; q = q.Message() {
		depth = q.Depth
	}
	if depth != 4 || !p.Truncated() {
		t.Errorf("MaxDepth 4: deepest part at depth %d, truncated %v; want 4, true", depth, p.Truncated())
	}
	// Parts: the message counts as one.
	in = []byte("Content-Type: multipart/mixed; boundary=b\n\n")
	for range 10 {
		in = append(in, "--b\n\nx\n"...)
	}
	p = Parse(in, Options{MaxParts: 4})
	if n := len(p.Parts()); n != 3 || !p.Truncated() {
		t.Errorf("MaxParts 4: %d body parts, truncated %v; want 3, true", n, p.Truncated())
	}
	p = Parse(in, Options{})
	if n := len(p.Parts()); n != 10 || p.Truncated() {
		t.Errorf("default bounds: %d body parts, truncated %v; want 10, false", n, p.Truncated())
	}
	// Nested shares the bounds.
	p = Parse([]byte("Content-Type: message/rfc822\n\nU3ViamVjdDogeA0KDQp5"), Options{MaxDepth: 1})
	n := p.Nested([]byte("Subject: x\r\n\r\ny"))
	if n == nil || n.Header.Get("Subject") != "x" || n.Depth != 1 || n.Nested([]byte("a: b\n\n")) != nil {
		t.Errorf("Nested: %+v, want the message at depth 1 and nothing below", n)
	}
}
