// SPDX-License-Identifier: Apache-2.0

package policy_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/policy"
)

// The TOML tags are what the operator writes (docs/retention.md);
// decode the example files strictly, as cmd/sealmail does.
func decodeTOML(t *testing.T, path string) *policy.Policy {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p policy.Policy
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return &p
}

func TestConfigFiles(t *testing.T) {
	t.Parallel()
	de := decodeTOML(t, "testdata/retention-de.toml")
	if errs := de.Validate(); errs != nil {
		t.Fatalf("Validate(retention-de.toml) = %v", errs)
	}
	if len(de.Rules) != 5 || de.Rules[2].Headers["Subject"] != "[invoice]" || de.Default.Keep != "90d" {
		t.Errorf("decoded policy = %+v", *de)
	}

	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	c, err := de.Compile()
	if err != nil {
		t.Fatal(err)
	}
	recv := time.Date(2025, 3, 15, 11, 0, 0, 0, berlin)
	env := func(from string, to ...string) []sealmail.Envelope {
		e := sealmail.Envelope{Sender: from, Received: recv}
		for _, r := range to {
			e.Recipients = append(e.Recipients, sealmail.Recipient{Address: r, Kind: sealmail.RcptTo})
		}
		return []sealmail.Envelope{e}
	}
	tests := []struct {
		f        policy.Facts
		rule     string
		until    time.Time
		eligible time.Time // first instant Eligible says yes
	}{
		{policy.Facts{Envelopes: env("a@supplier.com", "bob@example.de"), Received: recv}, "handelsbrief_in_6y", time.Date(2032, 1, 1, 0, 0, 0, 0, berlin), time.Date(2032, 1, 1, 0, 0, 0, 0, berlin)},
		{policy.Facts{Envelopes: env("a@supplier.com", "x@buchhaltung.example.de"), Received: recv}, "buchungsbeleg_8y", time.Date(2034, 1, 1, 0, 0, 0, 0, berlin), time.Date(2034, 1, 1, 0, 0, 0, 0, berlin)},
		{policy.Facts{Envelopes: env("cfo@example.de", "jahresabschluss@example.de"), Received: recv}, "buecher_10y", time.Date(2036, 1, 1, 0, 0, 0, 0, berlin), time.Date(2036, 1, 1, 0, 0, 0, 0, berlin)},
		{policy.Facts{Envelopes: env("news@shop.example", "bob@example-gmbh.de"), Header: map[string][]string{"Subject": {"[Invoice] 2025-17"}}, Received: recv}, "buchungsbeleg_8y_subject", time.Date(2034, 1, 1, 0, 0, 0, 0, berlin), time.Date(2034, 1, 1, 0, 0, 0, 0, berlin)},
		{policy.Facts{Envelopes: env("bob@example.de", "carol@example-gmbh.de"), Received: recv}, "not_tax_relevant", recv.AddDate(0, 0, 90), recv.AddDate(0, 0, 90)},
	}
	for _, tt := range tests {
		rule, until, forever := c.Evaluate(tt.f)
		if rule != tt.rule || !until.Equal(tt.until) || forever {
			t.Errorf("Evaluate(%v) = %q, %v, %v, want %q, %v", tt.f.Envelopes[0].Recipients, rule, until, forever, tt.rule, tt.until)
		}
		if ok, why := policy.Eligible(tt.eligible.Add(-time.Second), until, forever, nil); ok {
			t.Errorf("Eligible before %v = true, %q", tt.eligible, why)
		}
		if ok, why := policy.Eligible(tt.eligible, until, forever, nil); !ok {
			t.Errorf("Eligible at %v = false, %q", tt.eligible, why)
		}
	}

	sec := decodeTOML(t, "testdata/retention-sec.toml")
	if errs := sec.Validate(); errs != nil {
		t.Fatalf("Validate(retention-sec.toml) = %v", errs)
	}
	r := time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)
	if rule, until, _ := sec.Evaluate(policy.Facts{Received: r}); rule != "sec_17a4_b4_3y" || !until.Equal(time.Date(2029, 3, 15, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("Evaluate(SEC default) = %q, %v, want sec_17a4_b4_3y, 2029-03-15", rule, until)
	}
	if rule, _, forever := sec.Evaluate(policy.Facts{Envelopes: []sealmail.Envelope{{Sender: "chair@board.example.com"}}, Received: r}); rule != "board_forever" || !forever {
		t.Errorf("Evaluate(board) = %q, forever=%v, want board_forever, true", rule, forever)
	}
}

func TestConfigUnknownKey(t *testing.T) {
	t.Parallel()
	var p policy.Policy
	dec := toml.NewDecoder(bytes.NewReader([]byte("[default]\nkeep = \"6y\"\nfrom_date = \"x\"\n")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err == nil {
		t.Errorf("decode with unknown key from_date = nil, want error")
	}
}
