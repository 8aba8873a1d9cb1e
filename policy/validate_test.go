// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	def := Rule{Keep: "90d"}
	tests := []struct {
		name string
		p    Policy
		want []string // "rule/index/field" of each expected error, in order
	}{
		{"german example is valid", *germanPolicy(), nil},
		{"default only", Policy{Default: def}, nil},
		{"catch-all last rule instead of default", Policy{Rules: []Rule{{Name: "a", Senders: []string{"@x.example"}, Keep: "1y"}, {Name: "all", Keep: "6y"}}}, nil},
		{"empty rule set without default", Policy{}, []string{"/-1/"}},
		{"rules but no default and no catch-all", Policy{Rules: []Rule{{Name: "a", Senders: []string{"@x.example"}, Keep: "1y"}}}, []string{"a/0/"}},
		{"default without keep", Policy{Default: Rule{Name: "d", From: FromEndOfYear}}, []string{"default/-1/keep", "/-1/"}},
		{"bad period", Policy{Rules: []Rule{{Name: "hb", Keep: "6 yrs"}}, Default: def}, []string{"hb/0/keep"}},
		{"zero period", Policy{Rules: []Rule{{Name: "hb", Keep: "0d"}}, Default: def}, []string{"hb/0/keep"}},
		{"bad default period", Policy{Default: Rule{Keep: "ten years"}}, []string{"default/-1/keep"}},
		{"missing keep", Policy{Rules: []Rule{{Name: "hb"}}, Default: def}, []string{"hb/0/keep"}},
		{"unknown direction", Policy{InternalDomains: []string{"example.com"}, Rules: []Rule{{Name: "in", Direction: "incoming", Keep: "6y"}}, Default: def}, []string{"in/0/direction"}},
		{"direction without internal domains", Policy{Rules: []Rule{{Name: "in", Direction: "inbound", Keep: "6y"}}, Default: def}, []string{"in/0/direction"}},
		{"unknown from", Policy{Rules: []Rule{{Name: "hb", Keep: "6y", From: "end of year"}}, Default: def}, []string{"hb/0/from"}},
		{"duplicate names", Policy{Rules: []Rule{{Name: "hb", Keep: "6y"}, {Name: "x", Keep: "1y"}, {Name: "HB", Keep: "8y"}}, Default: def}, []string{"HB/2/name"}},
		{"default name collides", Policy{Rules: []Rule{{Name: "default", Senders: []string{"@a.example"}, Keep: "6y"}}, Default: def}, []string{"default/-1/name"}},
		{"missing name", Policy{Rules: []Rule{{Keep: "6y"}}, Default: def}, []string{"/0/name"}},
		{"bad name", Policy{Rules: []Rule{{Name: "Handels brief", Keep: "6y"}}, Default: def}, []string{"Handels brief/0/name"}},
		{"default with conditions", Policy{Default: Rule{Keep: "1y", Senders: []string{"@a.example"}}}, []string{"default/-1/"}},
		{"bad patterns", Policy{Rules: []Rule{{Name: "p", Senders: []string{"alice"}, Recipients: []string{"@", "a b@c.example", "<a@b.example>"}, Keep: "6y"}}, Default: def}, []string{"p/0/senders", "p/0/recipients", "p/0/recipients", "p/0/recipients"}},
		{"bad header name", Policy{Rules: []Rule{{Name: "h", Headers: map[string]string{"Subject:": "x"}, Keep: "6y"}}, Default: def}, []string{"h/0/headers"}},
		{"bad internal domain", Policy{InternalDomains: []string{"@example.com", "example..com", "exa mple.com"}, Default: def}, []string{"/-1/internal_domains", "/-1/internal_domains", "/-1/internal_domains"}},
		{"UTF-8 domains", Policy{InternalDomains: []string{"bücher.de"}, Rules: []Rule{{Name: "u", Senders: []string{"@bücher.de", "jürgen@bücher.de"}, Keep: "6y"}}, Default: def}, nil},
		{"unknown time zone", Policy{TimeZone: "Europe/Bonn", Default: def}, []string{"/-1/time_zone"}},
		{"Local time zone", Policy{TimeZone: "Local", Default: def}, []string{"/-1/time_zone"}},
		{"several problems at once", Policy{TimeZone: "Nowhere", Rules: []Rule{{Name: "a", Keep: "6 yrs"}, {Name: "a", Keep: "1y", From: "x"}}},
			[]string{"/-1/time_zone", "a/0/keep", "a/1/name", "a/1/from"}},
	}
	for _, tt := range tests {
		errs := tt.p.Validate()
		var got []string
		for _, err := range errs {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("%s: Validate() error %v is %T, want *ConfigError", tt.name, err, err)
				continue
			}
			got = append(got, fmt.Sprintf("%s/%d/%s", ce.Rule, ce.Index, ce.Field))
			if ce.Problem == "" || ce.Fix == "" || !strings.HasPrefix(err.Error(), "policy") {
				t.Errorf("%s: error %q lacks problem, fix or prefix", tt.name, err)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: Validate() = %q\n  errors: %v\nwant %q", tt.name, got, errs, tt.want)
		}
	}
}

func TestConfigErrorText(t *testing.T) {
	t.Parallel()
	p := Policy{Rules: []Rule{{Name: "invoices", Keep: "6 yrs"}}, Default: Rule{Keep: "1y"}}
	errs := p.Validate()
	want := `policy: rule "invoices" (rules[0]) keep: "6 yrs" is not a period; write a positive number and a unit without spaces: "90d", "2w", "18m", "6y", or "forever"`
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("Validate() = %v, want [%s]", errs, want)
	}
}
