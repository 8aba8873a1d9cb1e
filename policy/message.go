// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"mime"
	"net/mail"
	"strings"
)

// Direction classifies a message by the domains of its sender and
// recipients relative to [Policy.InternalDomains].
//
//   - inbound: the sender is not internal and some recipient is internal;
//   - outbound: the sender is internal and some recipient is external;
//   - internal: the sender and every recipient are internal.
//
// Edge cases: a message without any sender address (a bounce with the null
// sender and no From) counts as sent from outside. A message without any
// recipient address, or one whose sender and recipients are all external
// (relayed mail), has no direction (""), and a rule that names a direction
// does not match it. With several senders (several envelopes), the sender
// is internal when any of them is.
type Direction string

// Directions.
const (
	DirectionNone     Direction = ""
	Inbound           Direction = "inbound"
	Outbound          Direction = "outbound"
	InternalDirection Direction = "internal"
)

func (d Direction) valid() bool {
	switch d {
	case DirectionNone, Inbound, Outbound, InternalDirection:
		return true
	}
	return false
}

// Direction classifies the message described by f.
func (c *Compiled) Direction(f Facts) Direction {
	return newMessage(f, c).direction
}

// message is the part of Facts that rules look at, normalised once.
type message struct {
	senders    []string // lower case addresses
	recipients []string
	direction  Direction
	header     map[string][]string
}

func newMessage(f Facts, c *Compiled) *message {
	m := &message{header: f.Header}
	seenS, seenR := map[string]bool{}, map[string]bool{}
	add := func(list *[]string, seen map[string]bool, a string) {
		a = strings.ToLower(strings.TrimSpace(a))
		a = strings.TrimSuffix(strings.TrimPrefix(a, "<"), ">")
		if a == "" || seen[a] {
			return
		}
		seen[a] = true
		*list = append(*list, a)
	}
	// Untrusted claims are never used for policy decisions (sealmail.Envelope).
	for _, e := range f.Envelopes {
		add(&m.senders, seenS, e.Sender)
		add(&m.senders, seenS, e.OnBehalfOf)
		for _, r := range e.Recipients {
			add(&m.recipients, seenR, r.Address)
			add(&m.recipients, seenR, r.ExpandedFrom)
			add(&m.recipients, seenR, r.ForwardedFrom)
		}
	}
	if len(m.senders) == 0 {
		for _, a := range m.headerAddresses("From") {
			add(&m.senders, seenS, a)
		}
	}
	if len(m.recipients) == 0 {
		for _, h := range []string{"To", "Cc", "Bcc"} {
			for _, a := range m.headerAddresses(h) {
				add(&m.recipients, seenR, a)
			}
		}
	}
	m.direction = classify(m.senders, m.recipients, c.internal)
	return m
}

func classify(senders, recipients []string, internal map[string]bool) Direction {
	if len(recipients) == 0 {
		return DirectionNone
	}
	fromInside := false
	for _, s := range senders {
		if internal[domainOf(s)] {
			fromInside = true
			break
		}
	}
	someIn, someOut := false, false
	for _, r := range recipients {
		if internal[domainOf(r)] {
			someIn = true
		} else {
			someOut = true
		}
	}
	switch {
	case fromInside && !someOut:
		return InternalDirection
	case fromInside:
		return Outbound
	case someIn:
		return Inbound
	}
	return DirectionNone
}

// domainOf returns the lower-case domain of an address, "" if it has none.
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}

// values returns the fields named name, matched case-insensitively, and
// whether the header has that name at all.
func (m *message) values(name string) ([]string, bool) {
	var out []string
	present := false
	for k, v := range m.header {
		if strings.EqualFold(k, name) {
			out = append(out, v...)
			present = true
		}
	}
	return out, present
}

// headerAddresses parses address fields; a field that does not parse as an
// RFC 5322 address list still yields its word@domain tokens.
func (m *message) headerAddresses(name string) []string {
	var out []string
	vals, _ := m.values(name)
	parser := mail.AddressParser{WordDecoder: &mime.WordDecoder{}}
	for _, v := range vals {
		if list, err := parser.ParseList(v); err == nil {
			for _, a := range list {
				out = append(out, a.Address)
			}
			continue
		}
		for _, tok := range strings.FieldsFunc(v, func(r rune) bool {
			return r == ',' || r == ';' || r == '<' || r == '>' || r == ' ' || r == '\t' || r == '"' || r == '(' || r == ')'
		}) {
			if strings.Contains(tok, "@") {
				out = append(out, tok)
			}
		}
	}
	return out
}

// headerContains reports whether some field named name contains sub (lower
// case) in its raw or RFC 2047-decoded value.
func (m *message) headerContains(name, sub string) bool {
	vals, present := m.values(name)
	if sub == "" {
		return present
	}
	wd := &mime.WordDecoder{}
	for _, v := range vals {
		if strings.Contains(strings.ToLower(v), sub) {
			return true
		}
		if dec, err := wd.DecodeHeader(v); err == nil && dec != v && strings.Contains(strings.ToLower(dec), sub) {
			return true
		}
	}
	return false
}
