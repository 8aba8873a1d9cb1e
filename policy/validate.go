// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// maxNameLen bounds rule and hold names, which are stored per message.
const maxNameLen = 64

// Validate returns every problem in p, each a *[ConfigError] naming the rule,
// the field and the fix; nil means p is usable. It checks names (present,
// well-formed, unique), periods, start anchors, directions (which need
// InternalDomains), address patterns, header names, the time zone, and that
// every message gets a retention: there must be a default, or the last rule
// must match everything.
func (p *Policy) Validate() []error {
	var errs []error
	add := func(rule string, idx int, field, problem, fix string) {
		errs = append(errs, &ConfigError{Rule: rule, Index: idx, Field: field, Problem: problem, Fix: fix})
	}

	if _, err := loadZone(p.TimeZone); err != nil {
		fix := `use an IANA zone name such as "Europe/Berlin", or leave it empty for UTC`
		if p.TimeZone == "Local" {
			add("", -1, "time_zone", `"Local" depends on the host's setting`, fix)
		} else {
			add("", -1, "time_zone", fmt.Sprintf("unknown time zone %q", p.TimeZone), fix)
		}
	}
	for _, d := range p.InternalDomains {
		if !validDomain(d) {
			add("", -1, "internal_domains", fmt.Sprintf("%q is not a domain", d), `write the bare domain, e.g. "example.com" (no "@", no spaces)`)
		}
	}

	seen := map[string]int{}
	for i, r := range p.Rules {
		switch {
		case r.Name == "":
			add("", i, "name", "missing", "give every rule a unique name; it is recorded with each message it retains")
		case !validName(r.Name):
			add(r.Name, i, "name", "contains characters other than letters, digits, '.', '_' and '-', or is longer than 64", "rename it, e.g. handelsbrief_6y")
		}
		key := strings.ToLower(r.Name)
		if j, dup := seen[key]; dup && r.Name != "" {
			add(r.Name, i, "name", fmt.Sprintf("duplicate of rules[%d] (names compare case-insensitively)", j), "give each rule its own name")
		} else {
			seen[key] = i
		}
		errs = append(errs, checkRule(r, r.Name, i, len(p.InternalDomains) > 0)...)
	}

	d := p.Default
	hasDefault := d.Keep != "" || d.From != "" || d.Name != ""
	if hasDefault {
		name := d.Name
		if name == "" {
			name = DefaultName
		}
		if d.Name != "" && !validName(d.Name) {
			add(DefaultName, -1, "name", "contains characters other than letters, digits, '.', '_' and '-', or is longer than 64", "rename it")
		}
		if j, dup := seen[strings.ToLower(name)]; dup {
			add(DefaultName, -1, "name", fmt.Sprintf("%q is also the name of rules[%d]", name, j), "give the default its own name")
		}
		if len(d.Senders) > 0 || len(d.Recipients) > 0 || d.Direction != "" || len(d.Headers) > 0 {
			add(DefaultName, -1, "", "has match conditions (senders, recipients, direction or headers)",
				"the default applies to every message no rule matched; move the conditions into a rule")
		}
		if d.Keep == "" {
			add(DefaultName, -1, "keep", "missing", `set the default period, e.g. keep = "6y"`)
		}
		errs = append(errs, checkRule(Rule{Keep: d.Keep, From: d.From}, DefaultName, -1, true)...)
	}
	if !hasDefault || d.Keep == "" {
		switch {
		case len(p.Rules) == 0:
			add("", -1, "", "no rules and no default", `add a [default] with keep = "…" so that every message gets a retention period`)
		case !p.Rules[len(p.Rules)-1].matchesAll():
			last := p.Rules[len(p.Rules)-1]
			add(last.Name, len(p.Rules)-1, "", "no default, and this last rule has match conditions, so some messages would get no retention period",
				`add a [default] with keep = "…", or make the last rule match everything`)
		}
	}
	return errs
}

// checkRule checks the fields of one rule other than its name. Keep being
// empty is reported here for rules (the default reports it itself).
func checkRule(r Rule, name string, idx int, haveInternal bool) []error {
	var errs []error
	add := func(field, problem, fix string) {
		errs = append(errs, &ConfigError{Rule: name, Index: idx, Field: field, Problem: problem, Fix: fix})
	}
	if r.Keep == "" {
		if idx >= 0 {
			add("keep", "missing", `set a period such as "90d", "18m", "6y" or "forever"`)
		}
	} else if _, err := ParsePeriod(r.Keep); err != nil {
		add("keep", fmt.Sprintf("%q is not a period", r.Keep), `write a positive number and a unit without spaces: "90d", "2w", "18m", "6y", or "forever"`)
	}
	switch r.From {
	case "", FromReceived, FromEndOfYear:
	default:
		add("from", fmt.Sprintf("unknown start %q", r.From), `use "received" (the default) or "end-of-year"`)
	}
	switch d := Direction(r.Direction); {
	case !d.valid():
		add("direction", fmt.Sprintf("unknown direction %q", r.Direction), `use "inbound", "outbound", "internal", or leave it empty`)
	case d != DirectionNone && !haveInternal:
		add("direction", "needs internal_domains", "list your own mail domains in internal_domains")
	}
	for _, s := range r.Senders {
		if !validPattern(s) {
			add("senders", fmt.Sprintf("%q is not an address or @domain", s), `write "alice@example.com" or "@example.com"`)
		}
	}
	for _, s := range r.Recipients {
		if !validPattern(s) {
			add("recipients", fmt.Sprintf("%q is not an address or @domain", s), `write "alice@example.com" or "@example.com"`)
		}
	}
	for _, h := range slices.Sorted(maps.Keys(r.Headers)) {
		if !validHeaderName(h) {
			add("headers", fmt.Sprintf("%q is not a header name", h), `use the field name without the colon, e.g. "Subject"`)
		}
	}
	return errs
}

func (r *Rule) matchesAll() bool {
	return len(r.Senders) == 0 && len(r.Recipients) == 0 && r.Direction == "" && len(r.Headers) == 0
}

func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validDomain(s string) bool {
	if s == "" || len(s) > 253 || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte("@<>()[],;:\\\"", c) >= 0 {
			return false
		}
	}
	return true
}

func validPattern(s string) bool {
	if d, ok := strings.CutPrefix(s, "@"); ok {
		return validDomain(d)
	}
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || !validDomain(s[i+1:]) {
		return false
	}
	for _, c := range s[:i] {
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' {
			return false
		}
	}
	return true
}

// validHeaderName: RFC 5322 §3.6.8, printable US-ASCII except ':'.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}
