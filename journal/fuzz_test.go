// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks Parse's promises on any input: it never panics, Original
// is always a subslice of data (or data itself), Report is nil or data, and
// the Kind, Source and recipient invariants of checkInvariants hold. Seeds are
// every file of the journal corpus plus the LF form of each, and a few
// hand-made fragments.
func FuzzParse(f *testing.F) {
	for _, set := range corpusSets {
		dir := filepath.Join(corpusDir, set)
		entries, err := os.ReadDir(dir)
		if err != nil {
			f.Fatalf("read corpus (see ../shared/corpus/journal/MANIFEST.md): %v", err)
		}
		for _, e := range entries {
			if e.IsDir() || filepath.Ext(e.Name()) == ".json" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, true)
			f.Add(toLF(b), false)
		}
	}
	f.Add([]byte(""), true)
	f.Add([]byte("X-MS-Journal-Report:\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\nSender: a@b\r\n--B\r\nContent-Type: message/rfc822\r\n\r\n\r\n--B--"), true)
	f.Add([]byte("Content-Type: multipart/report; boundary=B\n\n--B\nContent-Type: message/rfc822\n\nContent-Identifer: ExJournalReport\nContent-Type: multipart/mixed; boundary=C\n\n--C\n\nSender: <SMTP:a@b>\nRecipients:\n\t<EX:/o=x>\n--C\nContent-Type: message/rfc822\n\nx\n--C--\n--B--\n"), true)

	f.Fuzz(func(t *testing.T, data []byte, trusted bool) {
		res := Parse(data, smtpFacts(), Options{Trusted: trusted})
		checkInvariants(t, data, res)
		if !trusted && res.Envelope.Untrusted == nil && res.Kind != KindPlain && res.Kind != KindMalformed {
			t.Fatalf("untrusted report without Untrusted claim")
		}
	})
}
