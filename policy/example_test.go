// SPDX-License-Identifier: Apache-2.0

package policy_test

import (
	"fmt"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/policy"
)

func Example() {
	p := policy.Policy{
		TimeZone:        "Europe/Berlin",
		InternalDomains: []string{"example.de"},
		Rules: []policy.Rule{
			{Name: "handelsbrief_6y", Direction: "inbound", Keep: "6y", From: policy.FromEndOfYear},
		},
		Default: policy.Rule{Name: "not_tax_relevant", Keep: "90d"},
	}
	c, err := p.Compile()
	if err != nil {
		fmt.Println(err)
		return
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	received := time.Date(2025, 3, 15, 10, 0, 0, 0, berlin)
	rule, until, forever := c.Evaluate(policy.Facts{
		Envelopes: []sealmail.Envelope{{
			Sender:     "alice@supplier.example",
			Recipients: []sealmail.Recipient{{Address: "bob@example.de", Kind: sealmail.RcptTo}},
		}},
		Received: received,
	})
	fmt.Println(rule, until, forever)

	var holds policy.Holds
	if _, err := holds.Create("case-4711", "from:@supplier.example", "Supplier dispute", "legal@example.de", received); err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2032, 6, 1, 0, 0, 0, 0, time.UTC)
	fmt.Println(policy.Eligible(now, until, forever, []string{"case-4711"}))
	if _, err := holds.Release("case-4711", "legal@example.de", "", now); err != nil {
		fmt.Println(err)
	}
	if _, err := holds.Release("case-4711", "legal@example.de", "settled", now); err != nil {
		fmt.Println(err)
	}
	fmt.Println(policy.Eligible(now, until, forever, nil))
	fmt.Println(policy.Erasable(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), until, forever, nil, false))
	// Output:
	// handelsbrief_6y 2032-01-01 00:00:00 +0100 CET false
	// false held by case-4711
	// policy: release hold "case-4711": reason is empty; say why the matter no longer needs the hold
	// true retention ended 2032-01-01 CET
	// false retained until 2032-01-01 CET; restrict it instead, or override the retention
}
