// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealmail/sealmail"
)

// Rule says how long matching messages are kept. All match conditions that
// are given must hold; a rule with none matches every message.
type Rule struct {
	// Name identifies the rule; it is stored with every message it retains
	// and appears in purge decisions. Letters, digits, '.', '_' and '-'.
	Name string `toml:"name" json:"name"`

	// Senders: addresses (alice@example.com) or domains (@example.com). A
	// message matches when any of its senders does: each trusted envelope's
	// Sender and OnBehalfOf; when no envelope names one, the header From.
	Senders []string `toml:"senders" json:"senders,omitempty"`
	// Recipients: addresses or @domains. A message matches when any
	// recipient does: each trusted envelope's recipients (with the list and
	// forwarding addresses they were expanded from); when no envelope names
	// one, the header To, Cc and Bcc.
	Recipients []string `toml:"recipients" json:"recipients,omitempty"`
	// Direction: "" (any), "inbound", "outbound" or "internal", computed
	// from [Policy.InternalDomains] (see [Direction]).
	Direction string `toml:"direction" json:"direction,omitempty"`
	// Headers maps a header name (case-insensitive) to a substring its value
	// must contain (case-insensitive), e.g. {"Subject": "[invoice]"}. Every
	// entry must match some field of that name; an empty substring only
	// requires the header to be present. RFC 2047 encoded words are decoded
	// for UTF-8, ISO-8859-1 and US-ASCII; the raw value is matched too.
	Headers map[string]string `toml:"headers" json:"headers,omitempty"`

	// Keep is the retention period: "90d", "2w", "18m", "6y", "10y" or
	// "forever" (see [ParsePeriod]).
	Keep string `toml:"keep" json:"keep"`
	// From is where the period starts: "received" (the default) or
	// "end-of-year", 1 January 00:00 after the calendar year of receipt
	// (§ 147 Abs. 4 AO, § 257 Abs. 5 HGB).
	From string `toml:"from" json:"from,omitempty"`
}

// Start anchors for [Rule.From].
const (
	FromReceived  = "received"
	FromEndOfYear = "end-of-year"
)

// Policy is the retention configuration: ordered rules, of which the first
// that matches decides, and a default for messages no rule matches.
type Policy struct {
	Rules []Rule `toml:"rules" json:"rules"`
	// Default applies when no rule matches. It has no match conditions. Its
	// name defaults to "default".
	Default Rule `toml:"default" json:"default"`
	// InternalDomains are the organisation's own mail domains, compared
	// exactly and case-insensitively (list subdomains separately). They
	// define a message's [Direction].
	InternalDomains []string `toml:"internal_domains" json:"internal_domains,omitempty"`
	// TimeZone is the IANA zone ("Europe/Berlin") in which calendar
	// arithmetic and the end of the year are computed; "" means UTC. For
	// German retention use the zone of the business: a letter received at
	// 00:30 on 1 January in Berlin belongs to the new year there, although
	// it is still 31 December in UTC. "Local" is refused, so that the
	// result does not depend on the host's setting.
	TimeZone string `toml:"time_zone" json:"time_zone,omitempty"`
}

// DefaultName is the name of [Policy.Default] when it has none.
const DefaultName = "default"

// Facts are what rules match on: one message's trusted envelopes, its
// header and when it was received.
type Facts struct {
	Envelopes []sealmail.Envelope
	// Header is the message header, as net/mail or net/textproto give it;
	// names are looked up case-insensitively.
	Header map[string][]string
	// Received is when the archive received the message. If zero, the
	// earliest Received of the envelopes is used.
	Received time.Time
}

// Compiled is a validated [Policy] ready to evaluate many messages. It is
// immutable and safe for concurrent use.
type Compiled struct {
	rules    []compiledRule
	def      compiledRule
	hasDef   bool
	internal map[string]bool
	loc      *time.Location
}

type compiledRule struct {
	name       string
	senders    []pattern
	recipients []pattern
	direction  Direction
	headers    []headerCond
	period     Period
	endOfYear  bool
	matchAll   bool
}

type pattern struct {
	domain bool   // "@example.com": match the domain part
	value  string // lower case; the domain without '@', or the whole address
}

type headerCond struct {
	name string // canonical form not needed: compared with EqualFold
	sub  string // lower case
}

// Compile validates p and prepares it for evaluation. It fails with every
// problem [Policy.Validate] reports, joined.
func (p *Policy) Compile() (*Compiled, error) {
	c, errs := p.compile()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// compile builds a Compiled and validates p. When p has problems, every rule
// keeps forever: a typo in a period, an anchor, a direction or the time zone
// would otherwise shorten retention silently.
func (p *Policy) compile() (*Compiled, []error) {
	errs := p.Validate()
	c := &Compiled{internal: make(map[string]bool), loc: time.UTC}
	if loc, err := loadZone(p.TimeZone); err == nil {
		c.loc = loc
	}
	for _, d := range p.InternalDomains {
		c.internal[strings.ToLower(strings.TrimSpace(d))] = true
	}
	for _, r := range p.Rules {
		c.rules = append(c.rules, compileRule(r))
	}
	if p.Default.Keep != "" {
		d := p.Default
		if d.Name == "" {
			d.Name = DefaultName
		}
		d.Senders, d.Recipients, d.Direction, d.Headers = nil, nil, "", nil
		c.def = compileRule(d)
		c.hasDef = true
	}
	if len(errs) > 0 {
		for i := range c.rules {
			c.rules[i].period = Period{Forever: true}
		}
		c.def.period = Period{Forever: true}
	}
	return c, errs
}

func compileRule(r Rule) compiledRule {
	cr := compiledRule{name: r.Name, direction: Direction(r.Direction), endOfYear: r.From == FromEndOfYear}
	for _, s := range r.Senders {
		cr.senders = append(cr.senders, parsePattern(s))
	}
	for _, s := range r.Recipients {
		cr.recipients = append(cr.recipients, parsePattern(s))
	}
	for name, sub := range r.Headers {
		cr.headers = append(cr.headers, headerCond{name: name, sub: strings.ToLower(sub)})
	}
	cr.matchAll = len(cr.senders) == 0 && len(cr.recipients) == 0 && r.Direction == "" && len(cr.headers) == 0
	per, err := ParsePeriod(r.Keep)
	if err != nil {
		per = Period{Forever: true}
	}
	cr.period = per
	return cr
}

func parsePattern(s string) pattern {
	s = strings.ToLower(strings.TrimSpace(s))
	if d, ok := strings.CutPrefix(s, "@"); ok {
		return pattern{domain: true, value: d}
	}
	return pattern{value: s}
}

func (pt pattern) match(addr string) bool {
	if pt.domain {
		return domainOf(addr) == pt.value
	}
	return addr == pt.value
}

// loadZone resolves Policy.TimeZone.
func loadZone(name string) (*time.Location, error) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, fmt.Errorf("policy: time zone Local depends on the host")
	}
	return time.LoadLocation(name)
}

// Evaluate returns the rule that decides how long the message is kept, and
// until when: the first rule that matches, else the default. The message may
// be deleted from retainUntil on (see [Eligible]). forever reports a rule
// that keeps the message indefinitely; retainUntil is then zero.
//
// Evaluate compiles the policy on every call (loading the time zone); for
// many messages use [Policy.Compile] once. On an invalid policy it still
// answers, but fail-safe: see the package invariants.
func (p *Policy) Evaluate(f Facts) (rule string, retainUntil time.Time, forever bool) {
	c, _ := p.compile()
	return c.Evaluate(f)
}

// Evaluate is [Policy.Evaluate] for a compiled policy.
func (c *Compiled) Evaluate(f Facts) (rule string, retainUntil time.Time, forever bool) {
	m := newMessage(f, c)
	r, ok := c.match(m)
	if !ok {
		// Validate refuses a policy where this can happen; keep rather than
		// guess.
		return "", time.Time{}, true
	}
	received := f.Received
	if received.IsZero() {
		for _, e := range f.Envelopes {
			if !e.Received.IsZero() && (received.IsZero() || e.Received.Before(received)) {
				received = e.Received
			}
		}
	}
	if r.period.Forever || received.IsZero() {
		return r.name, time.Time{}, true
	}
	return r.name, c.retainUntil(r, received), false
}

// retainUntil computes the first instant at which a message received at t
// and governed by r may be deleted.
func (c *Compiled) retainUntil(r compiledRule, t time.Time) time.Time {
	start := t.In(c.loc)
	if r.endOfYear {
		start = time.Date(start.Year()+1, time.January, 1, 0, 0, 0, 0, c.loc)
	}
	return r.period.AddTo(start)
}

func (c *Compiled) match(m *message) (compiledRule, bool) {
	for _, r := range c.rules {
		if r.matches(m) {
			return r, true
		}
	}
	return c.def, c.hasDef
}

func (r *compiledRule) matches(m *message) bool {
	if r.matchAll {
		return true
	}
	if len(r.senders) > 0 && !anyMatch(r.senders, m.senders) {
		return false
	}
	if len(r.recipients) > 0 && !anyMatch(r.recipients, m.recipients) {
		return false
	}
	if r.direction != "" && m.direction != r.direction {
		return false
	}
	for _, h := range r.headers {
		if !m.headerContains(h.name, h.sub) {
			return false
		}
	}
	return true
}

func anyMatch(ps []pattern, addrs []string) bool {
	for _, a := range addrs {
		for _, p := range ps {
			if p.match(a) {
				return true
			}
		}
	}
	return false
}
