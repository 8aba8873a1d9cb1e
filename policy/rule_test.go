// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"testing"
	"time"

	"github.com/sealmail/sealmail"
)

// facts builds Facts for one SMTP envelope.
func facts(sender string, rcpts []string, received time.Time, header map[string][]string) Facts {
	env := sealmail.Envelope{Sender: sender, Source: sealmail.SourceSMTPEnvelope, Received: received}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, sealmail.Recipient{Address: r, Kind: sealmail.RcptUnknown})
	}
	return Facts{Envelopes: []sealmail.Envelope{env}, Header: header, Received: received}
}

// germanPolicy is the example from docs/retention.md.
func germanPolicy() *Policy {
	return &Policy{
		TimeZone:        "Europe/Berlin",
		InternalDomains: []string{"example.de"},
		Rules: []Rule{
			{Name: "buecher_10y", Headers: map[string]string{"Subject": "[jahresabschluss]"}, Keep: "10y", From: FromEndOfYear},
			{Name: "buchungsbeleg_8y", Headers: map[string]string{"Subject": "[invoice]"}, Keep: "8y", From: FromEndOfYear},
			{Name: "buchhaltung_8y", Recipients: []string{"invoices@example.de"}, Keep: "8y", From: FromEndOfYear},
			{Name: "handelsbrief_6y", Direction: "inbound", Keep: "6y", From: FromEndOfYear},
			{Name: "handelsbrief_out_6y", Direction: "outbound", Keep: "6y", From: FromEndOfYear},
		},
		Default: Rule{Name: "not_tax_relevant", Keep: "90d"},
	}
}

func TestEvaluateGerman(t *testing.T) {
	t.Parallel()
	berlin := mustZone(t, "Europe/Berlin")
	p := germanPolicy()
	if errs := p.Validate(); errs != nil {
		t.Fatalf("Validate() = %v", errs)
	}
	mar15 := date(2025, 3, 15, 10, 0, berlin)
	in := []string{"bob@example.de"}
	tests := []struct {
		name     string
		f        Facts
		wantRule string
		want     time.Time
	}{
		// § 147 Abs. 4 AO: a letter received 15 March 2025, kept 6 years,
		// may go from 1 January 2032.
		{"AO example, Handelsbrief 6y", facts("alice@supplier.com", in, mar15, nil), "handelsbrief_6y", date(2032, 1, 1, 0, 0, berlin)},
		{"Buchungsbeleg 8y since BEG IV", facts("alice@supplier.com", in, mar15, map[string][]string{"Subject": {"[Invoice] RE-2025-0042"}}), "buchungsbeleg_8y", date(2034, 1, 1, 0, 0, berlin)},
		{"Buchungsbeleg 8y by recipient", facts("alice@supplier.com", []string{"Invoices@Example.DE"}, mar15, nil), "buchhaltung_8y", date(2034, 1, 1, 0, 0, berlin)},
		{"Bücher 10y", facts("cfo@example.de", []string{"auditor@kanzlei.de"}, mar15, map[string][]string{"Subject": {"[Jahresabschluss] 2024"}}), "buecher_10y", date(2036, 1, 1, 0, 0, berlin)},
		{"outbound letter", facts("bob@example.de", []string{"alice@supplier.com"}, mar15, nil), "handelsbrief_out_6y", date(2032, 1, 1, 0, 0, berlin)},
		{"internal mail falls to default", facts("bob@example.de", []string{"carol@example.de"}, mar15, nil), "not_tax_relevant", date(2025, 6, 13, 10, 0, berlin)},
		// A 2016 voucher: deletable from 1 January 2025 (compliance.md R1).
		{"2016 voucher", facts("x@supplier.com", []string{"invoices@example.de"}, date(2016, 7, 1, 0, 0, berlin), nil), "buchhaltung_8y", date(2025, 1, 1, 0, 0, berlin)},
		// Received on 31 December: the year still ends that night.
		{"31 December", facts("x@supplier.com", in, date(2025, 12, 31, 23, 59, berlin), nil), "handelsbrief_6y", date(2032, 1, 1, 0, 0, berlin)},
		// 00:30 on 1 January in Berlin is still 31 December in UTC; the
		// policy zone decides: the letter belongs to 2026.
		{"new year in Berlin, old year in UTC", facts("x@supplier.com", in, date(2026, 1, 1, 0, 30, berlin), nil), "handelsbrief_6y", date(2033, 1, 1, 0, 0, berlin)},
		{"leap day received", facts("x@supplier.com", in, date(2024, 2, 29, 12, 0, berlin), nil), "handelsbrief_6y", date(2031, 1, 1, 0, 0, berlin)},
	}
	for _, tt := range tests {
		rule, until, forever := p.Evaluate(tt.f)
		if rule != tt.wantRule || !until.Equal(tt.want) || forever {
			t.Errorf("%s: Evaluate() = %q, %v, %v, want %q, %v, false", tt.name, rule, until, forever, tt.wantRule, tt.want)
		}
	}
}

func TestEvaluateReceivedAnchor(t *testing.T) {
	t.Parallel()
	recv := func(keep string) *Policy {
		return &Policy{Default: Rule{Keep: keep}}
	}
	tests := []struct {
		keep     string
		received time.Time
		want     time.Time
	}{
		{"90d", date(2025, 3, 15, 10, 0, time.UTC), date(2025, 6, 13, 10, 0, time.UTC)},
		{"2w", date(2025, 3, 15, 10, 0, time.UTC), date(2025, 3, 29, 10, 0, time.UTC)},
		{"18m", date(2025, 3, 15, 10, 0, time.UTC), date(2026, 9, 15, 10, 0, time.UTC)},
		{"3y", date(2026, 3, 15, 10, 0, time.UTC), date(2029, 3, 15, 10, 0, time.UTC)}, // SEC 17a-4(b)(4), compliance.md U1
		{"6y", date(2025, 3, 15, 10, 0, time.UTC), date(2031, 3, 15, 10, 0, time.UTC)},
		{"1y", date(2024, 2, 29, 10, 0, time.UTC), date(2025, 2, 28, 10, 0, time.UTC)}, // leap day clamps
		{"1m", date(2025, 1, 31, 10, 0, time.UTC), date(2025, 2, 28, 10, 0, time.UTC)},
	}
	for _, tt := range tests {
		rule, until, forever := recv(tt.keep).Evaluate(Facts{Received: tt.received})
		if rule != DefaultName || !until.Equal(tt.want) || forever {
			t.Errorf("Evaluate(keep %s, received %v) = %q, %v, %v, want %q, %v, false", tt.keep, tt.received, rule, until, forever, DefaultName, tt.want)
		}
	}
	// The 6-year end-of-year rule in UTC when no zone is given.
	p := &Policy{Default: Rule{Name: "hb", Keep: "6y", From: FromEndOfYear}}
	_, until, _ := p.Evaluate(Facts{Received: date(2025, 3, 15, 0, 0, time.UTC)})
	if want := date(2032, 1, 1, 0, 0, time.UTC); !until.Equal(want) || until.Location() != time.UTC {
		t.Errorf("Evaluate(6y end-of-year, UTC) = %v, want %v", until, want)
	}
}

func TestEvaluateForever(t *testing.T) {
	t.Parallel()
	p := &Policy{Rules: []Rule{{Name: "board", Senders: []string{"@board.example"}, Keep: "forever"}}, Default: Rule{Keep: "1y"}}
	rule, until, forever := p.Evaluate(facts("ceo@board.example", []string{"x@y.example"}, date(2025, 1, 1, 0, 0, time.UTC), nil))
	if rule != "board" || !until.IsZero() || !forever {
		t.Errorf("Evaluate(forever rule) = %q, %v, %v, want board, zero, true", rule, until, forever)
	}
}

func TestEvaluateFirstMatchWins(t *testing.T) {
	t.Parallel()
	rules := []Rule{
		{Name: "ceo", Senders: []string{"ceo@example.com"}, Keep: "10y"},
		{Name: "domain", Senders: []string{"@example.com"}, Keep: "6y"},
		{Name: "all", Keep: "1y"},
	}
	f := facts("ceo@example.com", []string{"x@other.example"}, date(2025, 1, 1, 0, 0, time.UTC), nil)
	tests := []struct {
		order []int
		want  string
	}{
		{[]int{0, 1, 2}, "ceo"},
		{[]int{1, 0, 2}, "domain"},
		{[]int{2, 0, 1}, "all"},
	}
	for _, tt := range tests {
		p := &Policy{Default: Rule{Keep: "1d"}}
		for _, i := range tt.order {
			p.Rules = append(p.Rules, rules[i])
		}
		if errs := p.Validate(); errs != nil {
			t.Fatalf("Validate() = %v", errs)
		}
		if rule, _, _ := p.Evaluate(f); rule != tt.want {
			t.Errorf("Evaluate() with order %v = %q, want %q", tt.order, rule, tt.want)
		}
	}
}

func TestEvaluateMatching(t *testing.T) {
	t.Parallel()
	t0 := date(2025, 1, 1, 0, 0, time.UTC)
	hdr := func(kv ...string) map[string][]string {
		h := map[string][]string{}
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = append(h[kv[i]], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name string
		rule Rule
		f    Facts
		want bool
	}{
		{"sender address", Rule{Senders: []string{"alice@a.example"}}, facts("Alice@A.Example", nil, t0, nil), true},
		{"sender address other", Rule{Senders: []string{"alice@a.example"}}, facts("bob@a.example", nil, t0, nil), false},
		{"sender domain", Rule{Senders: []string{"@a.example"}}, facts("bob@A.example", nil, t0, nil), true},
		{"UTF-8 domain, any case", Rule{Senders: []string{"@bücher.example"}}, facts("Jürgen@BÜCHER.example", nil, t0, nil), true},
		{"sender domain is exact", Rule{Senders: []string{"@a.example"}}, facts("bob@sub.a.example", nil, t0, nil), false},
		{"sender domain not suffix", Rule{Senders: []string{"@a.example"}}, facts("bob@xa.example", nil, t0, nil), false},
		{"envelope sender beats header From", Rule{Senders: []string{"@a.example"}}, facts("bounce@b.example", nil, t0, hdr("From", "alice@a.example")), false},
		{"header From when no envelope sender", Rule{Senders: []string{"@a.example"}}, facts("", nil, t0, hdr("From", `"Alice" <alice@a.example>`)), true},
		{"header From lowercase key", Rule{Senders: []string{"@a.example"}}, facts("", nil, t0, hdr("from", "alice@a.example")), true},
		{"header From unparsable", Rule{Senders: []string{"@a.example"}}, facts("", nil, t0, hdr("From", "Alice, Team <alice@a.example")), true},
		{"on behalf of", Rule{Senders: []string{"boss@a.example"}}, Facts{Envelopes: []sealmail.Envelope{{Sender: "assistant@a.example", OnBehalfOf: "boss@a.example"}}, Received: t0}, true},
		{"untrusted claim ignored", Rule{Senders: []string{"boss@a.example"}}, Facts{Envelopes: []sealmail.Envelope{{Sender: "x@b.example", Untrusted: &sealmail.Envelope{Sender: "boss@a.example"}}}, Received: t0}, false},
		{"recipient any", Rule{Recipients: []string{"@a.example"}}, facts("x@b.example", []string{"y@c.example", "z@a.example"}, t0, nil), true},
		{"recipient none", Rule{Recipients: []string{"@a.example"}}, facts("x@b.example", []string{"y@c.example"}, t0, nil), false},
		{"recipient expanded from list", Rule{Recipients: []string{"sales@a.example"}}, Facts{Envelopes: []sealmail.Envelope{{Sender: "x@b.example", Recipients: []sealmail.Recipient{{Address: "bob@a.example", ExpandedFrom: "sales@a.example"}}}}, Received: t0}, true},
		{"recipient header Cc when no envelope", Rule{Recipients: []string{"cc@a.example"}}, facts("x@b.example", nil, t0, hdr("To", "to@c.example", "Cc", "Carol <cc@a.example>")), true},
		{"envelope recipients beat header", Rule{Recipients: []string{"cc@a.example"}}, facts("x@b.example", []string{"to@c.example"}, t0, hdr("Cc", "cc@a.example")), false},
		{"subject substring", Rule{Headers: map[string]string{"Subject": "[Invoice]"}}, facts("x@b.example", nil, t0, hdr("Subject", "Your [INVOICE] 42")), true},
		{"subject missing", Rule{Headers: map[string]string{"Subject": "[invoice]"}}, facts("x@b.example", nil, t0, hdr("Subject", "Hello")), false},
		{"header name case", Rule{Headers: map[string]string{"x-category": "finance"}}, facts("x@b.example", nil, t0, hdr("X-Category", "Finance")), true},
		{"header any field", Rule{Headers: map[string]string{"X-Tag": "b"}}, facts("x@b.example", nil, t0, hdr("X-Tag", "a", "X-Tag", "b")), true},
		{"header presence", Rule{Headers: map[string]string{"X-Invoice": ""}}, facts("x@b.example", nil, t0, hdr("X-Invoice", "")), true},
		{"header absence", Rule{Headers: map[string]string{"X-Invoice": ""}}, facts("x@b.example", nil, t0, nil), false},
		{"RFC 2047 subject", Rule{Headers: map[string]string{"Subject": "rechnung für"}}, facts("x@b.example", nil, t0, hdr("Subject", "=?UTF-8?Q?Rechnung_f=C3=BCr_M=C3=A4rz?=")), true},
		{"RFC 2047 latin1", Rule{Headers: map[string]string{"Subject": "gebühr"}}, facts("x@b.example", nil, t0, hdr("Subject", "=?ISO-8859-1?Q?Geb=FChr?=")), true},
		{"all headers must match", Rule{Headers: map[string]string{"Subject": "invoice", "X-Tag": "x"}}, facts("x@b.example", nil, t0, hdr("Subject", "invoice")), false},
		{"all conditions", Rule{Senders: []string{"@b.example"}, Recipients: []string{"@a.example"}, Headers: map[string]string{"Subject": "inv"}}, facts("x@b.example", []string{"y@a.example"}, t0, hdr("Subject", "inv")), true},
		{"one condition fails", Rule{Senders: []string{"@b.example"}, Recipients: []string{"@c.example"}, Headers: map[string]string{"Subject": "inv"}}, facts("x@b.example", []string{"y@a.example"}, t0, hdr("Subject", "inv")), false},
		{"no conditions", Rule{}, Facts{Received: t0}, true},
	}
	for _, tt := range tests {
		r := tt.rule
		r.Name, r.Keep = "r", "1y"
		p := &Policy{Rules: []Rule{r}, Default: Rule{Name: "def", Keep: "1d"}}
		if errs := p.Validate(); errs != nil {
			t.Fatalf("%s: Validate() = %v", tt.name, errs)
		}
		rule, _, _ := p.Evaluate(tt.f)
		if got := rule == "r"; got != tt.want {
			t.Errorf("%s: rule matched = %v (Evaluate() = %q), want %v", tt.name, got, rule, tt.want)
		}
	}
}

func TestDirection(t *testing.T) {
	t.Parallel()
	p := &Policy{InternalDomains: []string{"example.com", "Example.ORG"}, Default: Rule{Keep: "1y"}}
	c, err := p.Compile()
	if err != nil {
		t.Fatal(err)
	}
	t0 := date(2025, 1, 1, 0, 0, time.UTC)
	tests := []struct {
		name   string
		sender string
		rcpts  []string
		header map[string][]string
		want   Direction
	}{
		{"inbound", "a@outside.net", []string{"b@example.com"}, nil, Inbound},
		{"inbound, some recipients external", "a@outside.net", []string{"c@else.net", "b@example.org"}, nil, Inbound},
		{"outbound", "b@example.com", []string{"a@outside.net"}, nil, Outbound},
		{"outbound with internal cc", "b@example.com", []string{"c@example.org", "a@outside.net"}, nil, Outbound},
		{"internal", "b@example.com", []string{"c@example.org", "d@EXAMPLE.com"}, nil, InternalDirection},
		{"relayed external to external", "a@outside.net", []string{"c@else.net"}, nil, DirectionNone},
		{"subdomain is not internal", "a@mail.example.com", []string{"c@else.net"}, nil, DirectionNone},
		{"null sender counts as external", "", []string{"b@example.com"}, nil, Inbound},
		{"null sender, header From internal", "", []string{"c@else.net"}, map[string][]string{"From": {"b@example.com"}}, Outbound},
		{"no recipients", "b@example.com", nil, nil, DirectionNone},
		{"no recipients, no sender", "", nil, nil, DirectionNone},
		{"recipients from header", "a@outside.net", nil, map[string][]string{"To": {"Bob <b@example.com>"}}, Inbound},
		{"address without domain", "a@outside.net", []string{"postmaster"}, nil, DirectionNone},
	}
	for _, tt := range tests {
		f := facts(tt.sender, tt.rcpts, t0, tt.header)
		if got := c.Direction(f); got != tt.want {
			t.Errorf("%s: Direction(%q → %q) = %q, want %q", tt.name, tt.sender, tt.rcpts, got, tt.want)
		}
	}
	// Rules select by direction.
	for _, d := range []Direction{Inbound, Outbound, InternalDirection} {
		q := &Policy{InternalDomains: p.InternalDomains, Rules: []Rule{{Name: "d", Direction: string(d), Keep: "6y"}}, Default: Rule{Keep: "1y"}}
		for _, tt := range tests {
			rule, _, _ := q.Evaluate(facts(tt.sender, tt.rcpts, t0, tt.header))
			if got, want := rule == "d", tt.want == d; got != want {
				t.Errorf("%s: rule direction=%s matched %v, want %v", tt.name, d, got, want)
			}
		}
	}
}

func TestEvaluateDefaultAndFailSafe(t *testing.T) {
	t.Parallel()
	t0 := date(2025, 3, 15, 0, 0, time.UTC)
	f := facts("a@b.example", []string{"c@d.example"}, t0, nil)
	tests := []struct {
		name        string
		p           Policy
		wantRule    string
		wantForever bool
	}{
		{"default named", Policy{Rules: []Rule{{Name: "x", Senders: []string{"@x.example"}, Keep: "1y"}}, Default: Rule{Name: "short", Keep: "30d"}}, "short", false},
		{"default unnamed", Policy{Default: Rule{Keep: "30d"}}, DefaultName, false},
		{"bad period keeps forever", Policy{Rules: []Rule{{Name: "x", Keep: "6 yrs"}}}, "x", true},
		{"bad zone keeps forever", Policy{TimeZone: "Mars/Olympus", Default: Rule{Keep: "30d"}}, DefaultName, true},
		{"bad anchor keeps all forever", Policy{Rules: []Rule{{Name: "x", Keep: "6y", From: "end of year"}}, Default: Rule{Keep: "30d"}}, "x", true},
		{"no rules, no default", Policy{}, "", true},
		{"no match, no default", Policy{Rules: []Rule{{Name: "x", Senders: []string{"@x.example"}, Keep: "1y"}}}, "", true},
	}
	for _, tt := range tests {
		rule, until, forever := tt.p.Evaluate(f)
		if rule != tt.wantRule || forever != tt.wantForever || forever != until.IsZero() {
			t.Errorf("%s: Evaluate() = %q, %v, %v, want %q, forever=%v", tt.name, rule, until, forever, tt.wantRule, tt.wantForever)
		}
	}
	// Received falls back to the earliest envelope; unknown receipt keeps.
	p := &Policy{Default: Rule{Keep: "1d"}}
	f2 := Facts{Envelopes: []sealmail.Envelope{{Received: t0.Add(time.Hour)}, {Received: t0}, {}}}
	if _, until, _ := p.Evaluate(f2); !until.Equal(t0.AddDate(0, 0, 1)) {
		t.Errorf("Evaluate(received from envelopes) until = %v, want %v", until, t0.AddDate(0, 0, 1))
	}
	if rule, until, forever := p.Evaluate(Facts{}); rule != DefaultName || !until.IsZero() || !forever {
		t.Errorf("Evaluate(no receipt time) = %q, %v, %v, want default, zero, true", rule, until, forever)
	}
}

func TestCompile(t *testing.T) {
	t.Parallel()
	if _, err := (&Policy{}).Compile(); err == nil {
		t.Errorf("Compile(empty policy) = nil error, want one")
	}
	p := germanPolicy()
	c, err := p.Compile()
	if err != nil {
		t.Fatalf("Compile() = %v", err)
	}
	f := facts("alice@supplier.com", []string{"bob@example.de"}, date(2025, 3, 15, 10, 0, time.UTC), nil)
	r1, u1, f1 := p.Evaluate(f)
	r2, u2, f2 := c.Evaluate(f)
	if r1 != r2 || !u1.Equal(u2) || f1 != f2 {
		t.Errorf("Compiled.Evaluate() = %q %v %v, Policy.Evaluate() = %q %v %v", r2, u2, f2, r1, u1, f1)
	}
}
