// SPDX-License-Identifier: Apache-2.0

package mimepart

import "strings"

// Default bounds of [Options].
const (
	DefaultMaxDepth        = 24
	DefaultMaxParts        = 2000
	DefaultMaxHeaderFields = 2000
	DefaultMaxFieldBytes   = 1 << 20
)

// Options bounds the work [Parse] spends on one message. The zero value
// takes the defaults.
type Options struct {
	// MaxDepth is the deepest part created: the message is at depth 0, its
	// body parts and an embedded message one deeper than their parent.
	MaxDepth int
	// MaxParts caps the parts created for one message, embedded messages
	// and the message itself included.
	MaxParts int
	// MaxHeaderFields caps the fields kept of one header section; later
	// fields are skipped.
	MaxHeaderFields int
	// MaxFieldBytes caps the bytes kept of one unfolded field value.
	MaxFieldBytes int
}

func (o Options) withDefaults() Options {
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxParts <= 0 {
		o.MaxParts = DefaultMaxParts
	}
	if o.MaxHeaderFields <= 0 {
		o.MaxHeaderFields = DefaultMaxHeaderFields
	}
	if o.MaxFieldBytes <= 0 {
		o.MaxFieldBytes = DefaultMaxFieldBytes
	}
	return o
}

// tree is what the parts of one [Parse] share: the bounds and the count.
type tree struct {
	opts      Options
	parts     int
	truncated bool
}

// Part is a message or one body part of a multipart, located by offsets into
// the bytes it was parsed from (see the package documentation).
type Part struct {
	// HeaderStart is the first byte of the header section (after a skipped
	// mbox From_ line).
	HeaderStart int
	// HeaderEnd is the end of the header fields: the empty line that ends
	// the section starts here.
	HeaderEnd int
	// BodyStart is the first byte of the body; BodyStart == End when there
	// is none.
	BodyStart int
	// End is the end of the part, excluding the line break before the
	// delimiter that follows it.
	End int
	// Separated reports whether an empty line ended the header section.
	// Without one the part is all header or all body (see the package
	// documentation): a truncated part, or a bare one.
	Separated bool
	// Terminated reports, for a body part of a multipart, whether a
	// delimiter line follows it. False means the part runs to the end of
	// its parent's body: the input was cut off.
	Terminated bool
	// Depth is 0 for the message, one more for each level of body parts and
	// embedded messages.
	Depth int

	Header Header
	// ContentType is the lower-case media type ("text/plain") of the
	// Content-Type field, or "" when the field is absent or holds no
	// type/subtype. Callers choose the default (RFC 2045 §5.2 text/plain,
	// RFC 2046 §5.1.5 message/rfc822 in a digest).
	ContentType string
	// Params are the Content-Type parameters, as [ParseParams] returns
	// them. Never nil.
	Params map[string]string
	// ParamsOK is false when a parameter was in an unknown charset.
	ParamsOK bool

	data []byte
	t    *tree

	split  bool
	parts  []*Part
	closed bool
	msg    *Part
	msgSet bool
}

// Parse reads the header section of the message in data. Body parts and
// embedded messages are read when asked for. It never fails; opts bounds
// the work (see [Options]).
func Parse(data []byte, opts Options) *Part {
	t := &tree{opts: opts.withDefaults()}
	return t.part(data, 0, len(data), 0, true)
}

// part parses data[start:end] as a part at depth, counting it.
func (t *tree) part(data []byte, start, end, depth int, message bool) *Part {
	t.parts++
	var s section
	s.scan(data, start, end, message, t.opts)
	p := &Part{
		HeaderStart: s.headerStart,
		HeaderEnd:   s.headerEnd,
		BodyStart:   s.bodyStart,
		End:         end,
		Separated:   s.separated,
		Depth:       depth,
		Header:      s.header,
		data:        data,
		t:           t,
	}
	ct, params, ok := ParseParams(p.Header.Get("Content-Type"))
	if strings.Contains(ct, "/") {
		p.ContentType = ct
	}
	p.Params, p.ParamsOK = params, ok
	return p
}

// room reports whether a part may be created at depth, and records that
// the tree was truncated when not.
func (t *tree) room(depth int) bool {
	if depth > t.opts.MaxDepth || t.parts >= t.opts.MaxParts {
		t.truncated = true
		return false
	}
	return true
}

// Raw returns the bytes of the whole part, header included.
func (p *Part) Raw() []byte { return p.data[p.HeaderStart:p.End:p.End] }

// HeaderBytes returns the header fields as written, without the empty line
// that ends them.
func (p *Part) HeaderBytes() []byte { return p.data[p.HeaderStart:p.HeaderEnd:p.HeaderEnd] }

// Body returns the body, still transfer-encoded (see [DecodeTransfer]).
func (p *Part) Body() []byte { return p.data[p.BodyStart:p.End:p.End] }

// IsMultipart reports whether p is a multipart with a boundary, whose body
// parts [Part.Parts] returns.
func (p *Part) IsMultipart() bool {
	return strings.HasPrefix(p.ContentType, "multipart/") && p.Params["boundary"] != ""
}

// Parts returns the body parts of a multipart (see [Part.IsMultipart]), or
// nil. Parts past a bound of [Options] are left out (see [Part.Truncated]).
func (p *Part) Parts() []*Part {
	if p.split || !p.IsMultipart() {
		return p.parts
	}
	p.split = true
	spans, closed := splitMultipart(p.data, p.BodyStart, p.End, p.Params["boundary"], p.t.opts.MaxParts)
	p.closed = closed
	for _, s := range spans {
		if !p.t.room(p.Depth + 1) {
			break
		}
		c := p.t.part(p.data, s.start, s.end, p.Depth+1, false)
		c.Terminated = s.terminated
		p.parts = append(p.parts, c)
	}
	return p.parts
}

// Closed reports whether the body of a multipart ended with a close
// delimiter.
func (p *Part) Closed() bool {
	p.Parts()
	return p.closed
}

// Message returns the body of p parsed as a message, in place: its offsets
// index the same bytes as p's. It is for an embedded message
// (message/rfc822, message/global) whose Content-Transfer-Encoding is an
// identity one; for an encoded one use [Part.Nested] on the decoded body.
// It returns nil past a bound of [Options].
func (p *Part) Message() *Part {
	if !p.msgSet {
		p.msgSet = true
		if p.t.room(p.Depth + 1) {
			p.msg = p.t.part(p.data, p.BodyStart, p.End, p.Depth+1, true)
		}
	}
	return p.msg
}

// Nested parses decoded, the decoded body of p, as a message one level
// below p, within the same bounds; its offsets index decoded. It returns
// nil past a bound of [Options].
func (p *Part) Nested(decoded []byte) *Part {
	if !p.t.room(p.Depth + 1) {
		return nil
	}
	return p.t.part(decoded, 0, len(decoded), p.Depth+1, true)
}

// Truncated reports whether a bound of [Options] left out a part anywhere
// in p's message so far.
func (p *Part) Truncated() bool { return p.t.truncated }
