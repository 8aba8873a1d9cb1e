// SPDX-License-Identifier: Apache-2.0

package query

import (
	"strconv"
	"strings"
	"time"
)

// Node is one node of a parsed query. The concrete types are [Term], [Date],
// [Size], [Flag], [All], [And], [Or] and [Not]. String renders the node as a
// canonical, fully parenthesised query that parses back to the same tree.
type Node interface {
	String() string
	node()
}

// Field names a searchable field of a [Term]. The empty Field is a bare word
// or phrase, which searches subject, body, header addresses and names, and
// attachment names and text.
type Field string

// Term fields.
const (
	FieldAny        Field = ""
	FieldFrom       Field = "from"
	FieldTo         Field = "to"
	FieldCc         Field = "cc"
	FieldBcc        Field = "bcc"
	FieldSubject    Field = "subject"
	FieldBody       Field = "body"
	FieldAttachment Field = "attachment" // attachment names and attachment text
	FieldFilename   Field = "filename"   // attachment names only
	FieldMessageID  Field = "message-id"
	FieldInvolved   Field = "involved" // an address involved in the message (header or envelope)
	FieldStem       Field = "stem"     // like a bare word or phrase, each word in any form of its English stem
)

// Term matches a word, a phrase or an address in one field. Value is as the
// user typed it (unquoted); matching is case-insensitive.
type Term struct {
	Field  Field
	Value  string
	Phrase bool // the value was quoted
}

func (t *Term) String() string {
	v := t.Value
	if t.Phrase || needsQuote(v) || (t.Field == FieldAny && bareNeedsQuote(v)) {
		v = `"` + v + `"`
	}
	if t.Field == FieldAny {
		return v
	}
	return string(t.Field) + ":" + v
}

func needsQuote(s string) bool {
	return s == "" || strings.ContainsAny(s, " \t\r\n()")
}

// bareNeedsQuote reports whether an unquoted bare word would parse as
// something else: an operator, a negation, a field or "*".
func bareNeedsQuote(s string) bool {
	switch strings.ToUpper(s) {
	case "AND", "OR", "NOT", "*":
		return true
	}
	if s[0] == '-' {
		return true
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		_, known := fields[strings.ToLower(s[:i])]
		return known
	}
	return false
}

// DateOp says which side of a [Date] bound a message must fall.
type DateOp int

// Date operators. After is inclusive of its day, Before exclusive: after:D
// matches messages dated on or after 00:00 of D, before:D those dated before
// 00:00 of D (days are UTC).
const (
	After DateOp = iota
	Before
)

// Date bounds the message date (header Date, else the time received).
type Date struct {
	Op  DateOp
	Day time.Time // 00:00 UTC of the day
}

func (d *Date) String() string {
	op := "after:"
	if d.Op == Before {
		op = "before:"
	}
	return op + d.Day.Format("2006-01-02")
}

// SizeOp says which side of a [Size] bound a message must fall.
type SizeOp int

// Size operators; both bounds are strict.
const (
	Larger SizeOp = iota
	Smaller
)

// Size bounds the raw message size in bytes. Units K, M and G are powers of
// 1024.
type Size struct {
	Op    SizeOp
	Bytes int64
}

func (s *Size) String() string {
	op := "larger:"
	if s.Op == Smaller {
		op = "smaller:"
	}
	return op + strconv.FormatInt(s.Bytes, 10)
}

// Flag matches a boolean property: has:attachment, or flag:NAME for flags the
// indexer records (such as flag:decode-error).
type Flag struct {
	Key   string // "has" or "flag"
	Value string // lower-case
}

func (f *Flag) String() string { return f.Key + ":" + f.Value }

// All matches every message ("*").
type All struct{}

func (*All) String() string { return "*" }

// And matches when all of its nodes match.
type And struct{ Nodes []Node }

func (a *And) String() string { return list(" AND ", a.Nodes) }

// Or matches when any of its nodes matches.
type Or struct{ Nodes []Node }

func (o *Or) String() string { return list(" OR ", o.Nodes) }

// Not matches when its node does not.
type Not struct{ Node Node }

func (n *Not) String() string { return "NOT " + n.Node.String() }

func list(op string, nodes []Node) string {
	var b strings.Builder
	b.WriteString("(")
	for i, n := range nodes {
		if i > 0 {
			b.WriteString(op)
		}
		b.WriteString(n.String())
	}
	b.WriteString(")")
	return b.String()
}

func (*Term) node() {}
func (*Date) node() {}
func (*Size) node() {}
func (*Flag) node() {}
func (*All) node()  {}
func (*And) node()  {}
func (*Or) node()   {}
func (*Not) node()  {}
