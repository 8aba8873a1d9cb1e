// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"testing"
	"time"
)

func benchFacts() Facts {
	return facts("alice@supplier.com", []string{"bob@example.de", "carol@example.de"}, date(2025, 3, 15, 10, 0, time.UTC),
		map[string][]string{"Subject": {"=?UTF-8?Q?Angebot_f=C3=BCr_M=C3=A4rz?="}, "From": {"Alice <alice@supplier.com>"}})
}

// BenchmarkCompiledEvaluate is the ingest path: one compiled policy, every
// message evaluated against it (falls through four rules).
func BenchmarkCompiledEvaluate(b *testing.B) {
	c, err := germanPolicy().Compile()
	if err != nil {
		b.Fatal(err)
	}
	f := benchFacts()
	b.ReportAllocs()
	for b.Loop() {
		c.Evaluate(f)
	}
}

// BenchmarkPolicyEvaluate compiles (validates, loads the zone) per call.
func BenchmarkPolicyEvaluate(b *testing.B) {
	p := germanPolicy()
	f := benchFacts()
	b.ReportAllocs()
	for b.Loop() {
		p.Evaluate(f)
	}
}
