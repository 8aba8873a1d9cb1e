// SPDX-License-Identifier: Apache-2.0

package export

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzMboxQuote writes two messages as an mbox and reads them back with
// the test's mboxrd reader: the quoting must round-trip (to LF line ends)
// and no body line may look like a separator.
func FuzzMboxQuote(f *testing.F) {
	for _, s := range []string{
		"", "\n", "\r\n", "From x", "From ", ">From x\n", ">>From x\n", "From\n", "Fromage\n",
		"a\nFrom b\n\nFrom c", "a\r\nFrom b\r\n", "x\r", "\r\r\n", ">>>", ">From",
		"Subject: s\n\nbody\n\n\n",
	} {
		f.Add([]byte(s), []byte(">"+s))
	}
	for _, name := range []string{"flanker/torture-part.eml", "crymap/rfc3501_p56.eml"} {
		if b, err := os.ReadFile(filepath.Join(corpusDir, name)); err == nil {
			f.Add(b, []byte("From x\n"))
		}
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		for i, raw := range [][]byte{a, b} {
			it := Item{ID: 1, Received: time.Unix(int64(i), 0), Raw: raw}
			if err := writeMboxMessage(bw, it); err != nil {
				t.Fatal(err)
			}
		}
		bw.Flush()
		out := buf.Bytes()
		msgs := parseMboxrd(t, out)
		if len(msgs) != 2 {
			t.Fatalf("read %d messages, want 2; mbox %q", len(msgs), out)
		}
		for i, raw := range [][]byte{a, b} {
			if want := mboxNormal(raw); !bytes.Equal(msgs[i].body, want) {
				t.Errorf("message %d round trip = %q, want %q", i, msgs[i].body, want)
			}
		}
		if n := bytes.Count(out, []byte("\nFrom ")) + 1; n != 2 {
			t.Errorf("mbox has %d separator-like lines, want 2: %q", n, out)
		}
	})
}

// FuzzHeaderFields checks that header parsing and RFC 2047 decoding never
// panic and always give a clean, capped, single-line UTF-8 value.
func FuzzHeaderFields(f *testing.F) {
	for _, s := range []string{
		"Subject: =?UTF-8?B?w6lww6l0w6k=?=\n\n",
		"Subject: a\r\n b\r\nFrom: x\r\n\r\n",
		"Subject: =?iso-2022-jp?B?GyRCJUYlOSVIGyhC?=\n",
		"Subject : =?x?Q?=FF?= \x00\x01\xff\n",
		"From nobody\nDate: Tue, 1 Jan 2013 12:00:00 +0200\n",
		": empty name\n\tcontinued\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := newRow(Item{Raw: raw})
		for _, v := range []string{r.From, r.To, r.Subject} {
			if !utf8.ValidString(v) || len(v) > maxFieldBytes {
				t.Fatalf("field %q: valid UTF-8 %v, %d bytes", v, utf8.ValidString(v), len(v))
			}
			for _, c := range v {
				if unicode.IsControl(c) {
					t.Fatalf("field %q holds control character %U", v, c)
				}
			}
		}
		if r.DateSource != "header" && r.DateSource != "received" {
			t.Fatalf("date source %q", r.DateSource)
		}
	})
}
