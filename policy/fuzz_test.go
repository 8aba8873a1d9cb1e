// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/sealmail/sealmail"
)

func FuzzParsePeriod(f *testing.F) {
	for _, s := range []string{"90d", "2w", "18m", "6y", "10y", "forever", "FOREVER", "6 yrs", "0y", "06y", "1000y", "1001y", "99999999999999999999d", "", "y", "6", "6Y", "-1d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeriod(s)
		if err != nil {
			if p != (Period{}) {
				t.Errorf("ParsePeriod(%q) = %+v with error %v, want zero Period", s, p, err)
			}
			return
		}
		back, err := ParsePeriod(p.String())
		if err != nil || back != p {
			t.Fatalf("ParsePeriod(%q).String() = %q, reparses to %+v, %v", s, p.String(), back, err)
		}
		if p.Forever {
			return
		}
		if p.N <= 0 {
			t.Fatalf("ParsePeriod(%q) = %+v, want N > 0", s, p)
		}
		// Adding never moves backwards and never overflows.
		for _, from := range []time.Time{
			time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC),
			time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC),
		} {
			to := p.AddTo(from)
			if !to.After(from) || to.Year() > from.Year()+1001 {
				t.Fatalf("%s.AddTo(%v) = %v", p, from, to)
			}
		}
	})
}

func FuzzHoldsJSON(f *testing.F) {
	var s Holds
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	_, _ = s.Create("case-1", "from:@acme.example", "matter 1", "legal", t0)
	_, _ = s.Create("case-2", "*", "matter 2", "legal", t0)
	_, _ = s.Release("case-1", "dpo", "settled", t0.Add(time.Hour))
	seed, _ := json.Marshal(&s)
	f.Add(seed)
	f.Add([]byte(`{"version":1,"holds":[]}`))
	f.Add([]byte(`{"version":2,"holds":[]}`))
	f.Add([]byte(`{"version":1,"holds":[{"name":"c","query":"*","reason":"r","created_by":"me","created":"2026-03-01T09:00:00+02:00"}]}`))
	f.Add([]byte(`{"version":1,"holds":null}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Holds
		if err := json.Unmarshal(b, &s); err != nil {
			return
		}
		enc, err := json.Marshal(&s)
		if err != nil {
			// A time outside year 0-9999 decodes but cannot be encoded;
			// such a document is refused by neither side silently.
			return
		}
		var back Holds
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("decode of re-encoded %s: %v", enc, err)
		}
		if !reflect.DeepEqual(back.All(), s.All()) {
			t.Fatalf("round trip changed holds:\n got %+v\nwant %+v", back.All(), s.All())
		}
		enc2, _ := json.Marshal(&back)
		if string(enc2) != string(enc) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
		// At most one active hold per name, and a release can always be
		// recorded on an active one.
		seen := map[string]bool{}
		for _, h := range s.Active() {
			if seen[h.Name] {
				t.Fatalf("two active holds named %q", h.Name)
			}
			seen[h.Name] = true
		}
	})
}

func FuzzEvaluate(f *testing.F) {
	f.Add("alice@supplier.com", "bob@example.de", "From", "Alice <alice@supplier.com>", "[invoice] 42", int64(1742032800))
	f.Add("", "", "To", "undisclosed-recipients:;", "=?UTF-8?Q?Rechnung?=", int64(0))
	f.Add("<>", "postmaster", "Cc", "a@b, c@d", "=?x?q?", int64(-62135596800))
	f.Fuzz(func(t *testing.T, sender, rcpt, hname, hval, subject string, unix int64) {
		p := germanPolicy()
		c, err := p.Compile()
		if err != nil {
			t.Fatal(err)
		}
		recv := time.Unix(unix%(400*365*86400), 0)
		fa := Facts{
			Envelopes: []sealmail.Envelope{{Sender: sender, Recipients: []sealmail.Recipient{{Address: rcpt}}}},
			Header:    map[string][]string{hname: {hval}, "Subject": {subject}},
			Received:  recv,
		}
		rule, until, forever := c.Evaluate(fa)
		if rule == "" {
			t.Fatalf("Evaluate() matched no rule despite a default")
		}
		if forever != until.IsZero() {
			t.Fatalf("Evaluate() = %q, %v, %v: forever and zero until disagree", rule, until, forever)
		}
		if !forever && !until.After(recv) {
			t.Fatalf("Evaluate(received %v) = %q until %v: not after receipt", recv, rule, until)
		}
		_ = c.Direction(fa)
	})
}
