// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"os"
	"path/filepath"
	"testing"
)

func benchmarkFile(b *testing.B, path string) {
	data, err := os.ReadFile(filepath.Join(corpusDir, path))
	if err != nil {
		b.Fatal(err)
	}
	smtp := smtpFacts()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(data, smtp, Options{Trusted: true})
	}
}

func BenchmarkParseSmallReport(b *testing.B) {
	benchmarkFile(b, "synthetic/01-exchange2016-basic.eml")
}

func BenchmarkParseLargeReport(b *testing.B) {
	benchmarkFile(b, "real/integraldefense-ace/pdf_attachment.email.rfc822")
}

func BenchmarkParsePlain(b *testing.B) {
	benchmarkFile(b, "synthetic/12-postfix-always-bcc-not-journal.eml")
}
