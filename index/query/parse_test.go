// SPDX-License-Identifier: Apache-2.0

package query

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want string // AST string, or "error: …" for the SyntaxError text
	}{
		{"hello", "hello"},
		{"Hello World", "(Hello AND World)"},
		{`"carl worth"`, `"carl worth"`},
		{"from:keithp", "from:keithp"},
		{"FROM:keithp", "from:keithp"},
		{`from:"Carl Worth"`, `from:"Carl Worth"`},
		{"from:@example.com", "from:@example.com"},
		{"to:a@b.c cc:x bcc:y", "(to:a@b.c AND cc:x AND bcc:y)"},
		{"subject:hi body:there", "(subject:hi AND body:there)"},
		{"attachment:report filename:q3.pdf", "(attachment:report AND filename:q3.pdf)"},
		{"message-id:<abc@x.org>", "message-id:abc@x.org"},
		{"id:abc@x.org", "message-id:abc@x.org"},
		{"involved:joe@corp.example", "involved:joe@corp.example"},
		{"stem:Befriending", "stem:Befriending"},
		{`stem:"lying dogs"`, `stem:"lying dogs"`},
		{"after:2024-03-01", "after:2024-03-01"},
		{"before:2024-03-01", "before:2024-03-01"},
		{"has:attachment", "has:attachment"},
		{"has:Attachment", "has:attachment"},
		{"flag:Decode-Error", "flag:decode-error"},
		{"larger:10M", "larger:10485760"},
		{"smaller:500K", "smaller:512000"},
		{"larger:1g", "larger:1073741824"},
		{"larger:1024", "larger:1024"},
		{"larger:2KB", "larger:2048"},
		{"*", "*"},
		{`"*"`, `"*"`},
		{"a AND b", "(a AND b)"},
		{"a and b", "(a AND b)"},
		{"a OR b", "(a OR b)"},
		{"a or b c", "(a OR (b AND c))"},
		{"a b OR c", "((a AND b) OR c)"},
		{"NOT a", "NOT a"},
		{"-a", "NOT a"},
		{"a -b", "(a AND NOT b)"},
		{"a NOT b", "(a AND NOT b)"},
		{"a AND NOT b", "(a AND NOT b)"},
		{"NOT NOT a", "NOT NOT a"},
		{"--a", "NOT NOT a"},
		{"-(a OR b) c", "(NOT (a OR b) AND c)"},
		{"(a OR b) AND (c OR d)", "((a OR b) AND (c OR d))"},
		{"((a))", "a"},
		{"e-mail", "e-mail"},
		{"foo:bar", "foo:bar"},
		{"http://example.com", "http://example.com"},
		{`"and"`, `"and"`},
		{"from:a@b.c(x)", "(from:a@b.c AND x)"},
		{`subject:"" x`, `(subject:"" AND x)`},
		{"  spaced\tout\n", "(spaced AND out)"},
		{`日本語 "東京 都"`, `(日本語 AND "東京 都")`},
		{`"from:x" "-y" "or"`, `("from:x" AND "-y" AND "or")`},

		{"", "error: query: at 0: expected a search term"},
		{"   ", "error: query: at 3: expected a search term"},
		{"(a OR b", "error: query: at 7: expected ')'"},
		{"from:cworth AND (x", "error: query: at 18: expected ')'"},
		{"a)", "error: query: at 1: unexpected ')'"},
		{")", "error: query: at 0: expected a search term, found ')'"},
		{"()", "error: query: at 1: expected a search term, found ')'"},
		{"a AND", "error: query: at 5: expected a search term"},
		{"a OR OR b", "error: query: at 5: expected a search term, found an operator"},
		{"AND a", "error: query: at 0: expected a search term, found an operator"},
		{"NOT", "error: query: at 3: expected a search term"},
		{"a -", "error: query: at 3: expected a search term after '-'"},
		{"- a", "error: query: at 1: expected a search term after '-'"},
		{`"open`, `error: query: at 5: expected closing '"'`},
		{`from:"open`, `error: query: at 10: expected closing '"'`},
		{"from:", "error: query: at 5: expected a value after 'from:'"},
		{"from: x", "error: query: at 5: expected a value after 'from:'"},
		{"after:yesterday", "error: query: at 6: expected a date YYYY-MM-DD"},
		{"before:2024-13-01", "error: query: at 7: expected a date YYYY-MM-DD"},
		{"larger:big", "error: query: at 7: expected a size such as 500K or 10M"},
		{"larger:999999999999G", "error: query: at 7: expected a size such as 500K or 10M"},
		{"larger:10P", "error: query: at 7: expected a size such as 500K or 10M"},
		{"larger:2T", "larger:2199023255552"}, // the grammar the configuration shares (sealmail.ParseSize)
		{"larger:64MiB", "larger:67108864"},
		{"smaller:-5", "error: query: at 8: expected a size such as 500K or 10M"},
		{"has:pdf", "error: query: at 4: expected 'attachment' after has:"},
		{"id:<>", "error: query: at 3: expected a message id"},
		{strings.Repeat("(", MaxDepth+1) + "a" + strings.Repeat(")", MaxDepth+1), "error: query: at 100: nesting deeper than 100"},
	}
	for _, tt := range tests {
		n, err := Parse(tt.in)
		var got string
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("Parse(%q) error %v is not a *SyntaxError", tt.in, err)
			}
			got = "error: " + err.Error()
		} else {
			got = n.String()
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestParseRoundTrip checks that an AST's string form parses to the same
// AST.
func TestParseRoundTrip(t *testing.T) {
	for _, in := range []string{
		"a b OR c", `from:"Carl Worth" -subject:x`, "(a OR b) NOT (c d)", "larger:10M smaller:1K",
		"after:2020-01-02 before:2021-01-01", "has:attachment flag:truncated", "*",
	} {
		n, err := Parse(in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		s := n.String()
		n2, err := Parse(s)
		if err != nil {
			t.Errorf("Parse(%q) (from %q): %v", s, in, err)
			continue
		}
		if n2.String() != s {
			t.Errorf("Parse(%q).String() = %q, want %q", s, n2.String(), s)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"hello", `from:"Carl Worth" AND (subject:x OR -body:y)`, "after:2024-01-01 before:2024-02-01",
		"larger:10M has:attachment", "((((a))))", `"unterminated`, "a OR OR", "message-id:<x@y>",
		"-(-a)", "NOT NOT", "日本語", "from:", ")(",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		n, err := Parse(q)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T is not a *SyntaxError", q, err)
			}
			if se.Pos < 0 || se.Pos > len(q) {
				t.Fatalf("Parse(%q) error position %d outside [0,%d]", q, se.Pos, len(q))
			}
			return
		}
		// The canonical form must parse again to the same form.
		s := n.String()
		n2, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q) = %s, which does not parse: %v", q, s, err)
		}
		if n2.String() != s {
			t.Fatalf("Parse(%q) = %s, reparsed as %s", q, s, n2.String())
		}
	})
}
