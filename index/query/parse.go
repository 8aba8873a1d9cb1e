// SPDX-License-Identifier: Apache-2.0

package query

import (
	"fmt"
	"strings"
	"time"

	"github.com/sealmail/sealmail"
)

// SyntaxError reports a query that does not parse. Pos is the byte offset in
// the query where the problem was found.
type SyntaxError struct {
	Pos int
	Msg string // what was expected or found, e.g. "expected ')'"
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("query: at %d: %s", e.Pos, e.Msg) }

// MaxDepth bounds the nesting of parentheses and negations in a query.
const MaxDepth = 100

// fields maps every accepted field name (lower-case) to its meaning.
var fields = map[string]Field{
	"from":       FieldFrom,
	"to":         FieldTo,
	"cc":         FieldCc,
	"bcc":        FieldBcc,
	"subject":    FieldSubject,
	"body":       FieldBody,
	"attachment": FieldAttachment,
	"filename":   FieldFilename,
	"message-id": FieldMessageID,
	"id":         FieldMessageID,
	"involved":   FieldInvolved,
	"stem":       FieldStem,
	// Keys whose values are not text; handled in term().
	"after":   "",
	"before":  "",
	"larger":  "",
	"smaller": "",
	"has":     "",
	"flag":    "",
}

type tokKind int

const (
	tEOF tokKind = iota
	tLParen
	tRParen
	tMinus
	tAnd
	tOr
	tNot
	tTerm
)

type token struct {
	kind   tokKind
	pos    int    // byte offset of the token
	key    string // lower-case field name of a tTerm, "" for a bare term
	vpos   int    // byte offset of the value
	value  string
	quoted bool
}

type parser struct {
	src   string
	pos   int
	tok   token
	depth int
}

// Parse parses a query in sealmail's query language:
//
//	from: to: cc: bcc: subject: body: attachment: filename: message-id: (alias id:)
//	involved: after:YYYY-MM-DD before:YYYY-MM-DD larger:10M smaller:500K
//	has:attachment flag:NAME  bare words  "quoted phrases"  *
//	AND OR NOT -term ( )
//
// Juxtaposed terms are ANDed; NOT binds tighter than AND, AND tighter than
// OR. The operators are recognised in any case (as in notmuch); quote a word
// to search for "and", "or" or "not" itself. A word whose prefix before ':'
// is not a known field is searched as a bare word. Errors are *[SyntaxError].
func Parse(q string) (Node, error) {
	p := &parser{src: q}
	if err := p.next(); err != nil {
		return nil, err
	}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	switch p.tok.kind {
	case tEOF:
		return n, nil
	case tRParen:
		return nil, &SyntaxError{p.tok.pos, "unexpected ')'"}
	default:
		return nil, &SyntaxError{p.tok.pos, "expected end of query"}
	}
}

func (p *parser) or() (Node, error) {
	first, err := p.and()
	if err != nil {
		return nil, err
	}
	nodes := []Node{first}
	for p.tok.kind == tOr {
		if err := p.next(); err != nil {
			return nil, err
		}
		n, err := p.and()
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 1 {
		return first, nil
	}
	return &Or{nodes}, nil
}

func startsUnary(k tokKind) bool {
	switch k {
	case tLParen, tMinus, tNot, tTerm:
		return true
	}
	return false
}

func (p *parser) and() (Node, error) {
	first, err := p.unary()
	if err != nil {
		return nil, err
	}
	nodes := []Node{first}
	for {
		if p.tok.kind == tAnd {
			if err := p.next(); err != nil {
				return nil, err
			}
		} else if !startsUnary(p.tok.kind) {
			break
		}
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 1 {
		return first, nil
	}
	return &And{nodes}, nil
}

func (p *parser) unary() (Node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > MaxDepth {
		return nil, &SyntaxError{p.tok.pos, fmt.Sprintf("nesting deeper than %d", MaxDepth)}
	}
	switch p.tok.kind {
	case tNot, tMinus:
		if err := p.next(); err != nil {
			return nil, err
		}
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &Not{n}, nil
	case tLParen:
		if err := p.next(); err != nil {
			return nil, err
		}
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, &SyntaxError{p.tok.pos, "expected ')'"}
		}
		if err := p.next(); err != nil {
			return nil, err
		}
		return n, nil
	case tTerm:
		n, err := p.term(p.tok)
		if err != nil {
			return nil, err
		}
		if err := p.next(); err != nil {
			return nil, err
		}
		return n, nil
	case tRParen:
		return nil, &SyntaxError{p.tok.pos, "expected a search term, found ')'"}
	case tAnd, tOr:
		return nil, &SyntaxError{p.tok.pos, "expected a search term, found an operator"}
	default:
		return nil, &SyntaxError{p.tok.pos, "expected a search term"}
	}
}

func (p *parser) term(t token) (Node, error) {
	switch t.key {
	case "":
		if t.value == "*" && !t.quoted {
			return &All{}, nil
		}
		return &Term{Field: FieldAny, Value: t.value, Phrase: t.quoted}, nil
	case "after", "before":
		d, err := time.Parse("2006-01-02", t.value)
		if err != nil {
			return nil, &SyntaxError{t.vpos, "expected a date YYYY-MM-DD"}
		}
		op := After
		if t.key == "before" {
			op = Before
		}
		return &Date{Op: op, Day: d}, nil
	case "larger", "smaller":
		n, ok := parseSize(t.value)
		if !ok {
			return nil, &SyntaxError{t.vpos, "expected a size such as 500K or 10M"}
		}
		op := Larger
		if t.key == "smaller" {
			op = Smaller
		}
		return &Size{Op: op, Bytes: n}, nil
	case "has":
		if v := strings.ToLower(t.value); v == "attachment" {
			return &Flag{Key: "has", Value: v}, nil
		}
		return nil, &SyntaxError{t.vpos, "expected 'attachment' after has:"}
	case "flag":
		return &Flag{Key: "flag", Value: strings.ToLower(t.value)}, nil
	}
	f := fields[t.key]
	v := t.value
	if f == FieldMessageID {
		v = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(v), "<"), ">")
		if v == "" {
			return nil, &SyntaxError{t.vpos, "expected a message id"}
		}
	}
	return &Term{Field: f, Value: v, Phrase: t.quoted}, nil
}

// parseSize parses a size in the grammar the configuration shares
// ([sealmail.ParseSize]).
func parseSize(s string) (int64, bool) {
	n, err := sealmail.ParseSize(s)
	return n, err == nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// next reads the next token into p.tok.
func (p *parser) next() error {
	s := p.src
	for p.pos < len(s) && isSpace(s[p.pos]) {
		p.pos++
	}
	start := p.pos
	if start >= len(s) {
		p.tok = token{kind: tEOF, pos: start}
		return nil
	}
	switch s[start] {
	case '(':
		p.pos++
		p.tok = token{kind: tLParen, pos: start}
		return nil
	case ')':
		p.pos++
		p.tok = token{kind: tRParen, pos: start}
		return nil
	case '"':
		v, err := p.quoted()
		if err != nil {
			return err
		}
		p.tok = token{kind: tTerm, pos: start, vpos: start, value: v, quoted: true}
		return nil
	case '-':
		if start+1 >= len(s) || isSpace(s[start+1]) || s[start+1] == ')' {
			return &SyntaxError{start + 1, "expected a search term after '-'"}
		}
		p.pos++
		p.tok = token{kind: tMinus, pos: start}
		return nil
	}
	for p.pos < len(s) && !isSpace(s[p.pos]) && s[p.pos] != '(' && s[p.pos] != ')' && s[p.pos] != '"' {
		if s[p.pos] == ':' {
			key := strings.ToLower(s[start:p.pos])
			if _, ok := fields[key]; ok {
				return p.fieldValue(start, key)
			}
		}
		p.pos++
	}
	w := s[start:p.pos]
	switch strings.ToUpper(w) {
	case "AND":
		p.tok = token{kind: tAnd, pos: start}
	case "OR":
		p.tok = token{kind: tOr, pos: start}
	case "NOT":
		p.tok = token{kind: tNot, pos: start}
	default:
		p.tok = token{kind: tTerm, pos: start, vpos: start, value: w}
	}
	return nil
}

// fieldValue reads the value after "key:"; p.pos is at the colon.
func (p *parser) fieldValue(start int, key string) error {
	s := p.src
	p.pos++ // the colon
	vpos := p.pos
	if p.pos < len(s) && s[p.pos] == '"' {
		v, err := p.quoted()
		if err != nil {
			return err
		}
		p.tok = token{kind: tTerm, pos: start, key: key, vpos: vpos, value: v, quoted: true}
		return nil
	}
	for p.pos < len(s) && !isSpace(s[p.pos]) && s[p.pos] != '(' && s[p.pos] != ')' && s[p.pos] != '"' {
		p.pos++
	}
	if p.pos == vpos {
		return &SyntaxError{vpos, fmt.Sprintf("expected a value after '%s:'", key)}
	}
	p.tok = token{kind: tTerm, pos: start, key: key, vpos: vpos, value: s[vpos:p.pos]}
	return nil
}

// quoted reads a double-quoted string starting at p.pos. There are no
// escapes: a phrase ends at the next double quote.
func (p *parser) quoted() (string, error) {
	s := p.src
	open := p.pos
	end := strings.IndexByte(s[open+1:], '"')
	if end < 0 {
		return "", &SyntaxError{len(s), "expected closing '\"'"}
	}
	p.pos = open + 1 + end + 1
	return s[open+1 : open+1+end], nil
}
