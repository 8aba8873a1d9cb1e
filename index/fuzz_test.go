// SPDX-License-Identifier: Apache-2.0

package index

import (
	"testing"
	"unicode/utf8"
)

// FuzzExtract checks that extraction never panics, stays within its bounds
// and yields valid UTF-8, on inputs seeded from the shared MIME corpus.
func FuzzExtract(f *testing.F) {
	for _, c := range readCorpus(f, ".") {
		if len(c.raw) <= 32<<10 {
			f.Add(c.raw)
		}
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: message/rfc822\n\n--x--\n"))
	f.Add([]byte("Subject: =?utf-7?Q?+AGE-?= =?gb2312?B?1tA=?=\n\nhi"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		w := &walker{x: &Extracted{}}
		x := w.extract(raw) // no recover: a panic fails the fuzz run
		if n := len(x.Body) + len(x.AttachText); n > MaxTextBytes+MaxParts*2 {
			t.Fatalf("extracted %d bytes of text, bound %d", n, MaxTextBytes)
		}
		for name, s := range map[string]string{"subject": x.Subject, "body": x.Body, "attachment text": x.AttachText} {
			if !utf8.ValidString(s) {
				t.Fatalf("%s is not valid UTF-8: %q", name, s)
			}
		}
		for _, n := range x.AttachNames {
			if !utf8.ValidString(n) {
				t.Fatalf("attachment name %q is not valid UTF-8", n)
			}
		}
	})
}
