// SPDX-License-Identifier: Apache-2.0

package export

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestNewRow(t *testing.T) {
	t.Parallel()
	recv := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, tc := range []struct {
		name, raw               string
		from, to, subject, date string
		dateSource              string
	}{
		{"plain LF", "From: Alice <a@example.com>\nTo: b@example.com\nSubject: Hello\nDate: Tue, 1 Jan 2013 12:00:00 +0200\n\nbody\nSubject: not a header\n",
			"Alice <a@example.com>", "b@example.com", "Hello", "2013-01-01T12:00:00+02:00", "header"},
		{"CRLF folded", "Subject: a long\r\n\tfolded subject\r\nFrom: x@example.com\r\n\r\n",
			"x@example.com", "", "a long folded subject", "2020-05-06T07:08:09Z", "received"},
		{"RFC 2047", "Subject: =?UTF-8?B?w6lww6l0w6k=?= =?ISO-8859-1?Q?caf=E9?=\nFrom: =?UTF-8?Q?J=C3=B6rg?= <j@example.com>\n\n",
			"Jörg <j@example.com>", "", "épétécafé", "2020-05-06T07:08:09Z", "received"},
		{"legacy charset", "Subject: =?iso-2022-jp?B?GyRCJUYlOSVIGyhC?=\n\n",
			"", "", "テスト", "2020-05-06T07:08:09Z", "received"},
		{"unknown charset read as text", "Subject: =?x-unknown?Q?abc?=\n\n",
			"", "", "abc", "2020-05-06T07:08:09Z", "received"},
		{"first field wins, space before colon", "Subject : one\nSubject: two\n\n",
			"", "", "one", "2020-05-06T07:08:09Z", "received"},
		{"bad date falls back", "Date: yesterday\n\n",
			"", "", "", "2020-05-06T07:08:09Z", "received"},
		{"raw 8-bit and controls", "Subject: caf\xe9\x01 \t x\n\n",
			"", "", "café x", "2020-05-06T07:08:09Z", "received"},
		{"mbox From line first", "From nobody Thu Jan  1 00:00:00 1970\nSubject: s\n\n",
			"", "", "s", "2020-05-06T07:08:09Z", "received"},
		{"no header", "", "", "", "", "2020-05-06T07:08:09Z", "received"},
		{"body only", "\nSubject: in body\n", "", "", "", "2020-05-06T07:08:09Z", "received"},
	} {
		r := newRow(Item{ID: 1, Received: recv, Raw: []byte(tc.raw)})
		if r.From != tc.from || r.To != tc.to || r.Subject != tc.subject {
			t.Errorf("%s: newRow(%q) from/to/subject = %q %q %q, want %q %q %q", tc.name, tc.raw, r.From, r.To, r.Subject, tc.from, tc.to, tc.subject)
		}
		if got := r.Date.Format(time.RFC3339); got != tc.date || r.DateSource != tc.dateSource {
			t.Errorf("%s: newRow(%q) date = %s (%s), want %s (%s)", tc.name, tc.raw, got, r.DateSource, tc.date, tc.dateSource)
		}
	}
}

func TestFieldCap(t *testing.T) {
	t.Parallel()
	raw := "Subject: " + strings.Repeat("é", 5000) + "\n\n"
	r := newRow(Item{Raw: []byte(raw)})
	if len(r.Subject) > maxFieldBytes || len(r.Subject) < maxFieldBytes-4 || !utf8.ValidString(r.Subject) {
		t.Errorf("capped subject has %d bytes (valid UTF-8 %v), want at most %d", len(r.Subject), utf8.ValidString(r.Subject), maxFieldBytes)
	}
}

func TestSHA256Line(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, want string }{
		{"a.eml", "abc  a.eml\n"},
		{"with space.mbox", "abc  with space.mbox\n"},
		{"back\\slash\nnl", "\\abc  back\\\\slash\\nnl\n"},
	} {
		if got := sha256Line("abc", tc.name); got != tc.want {
			t.Errorf("sha256Line(abc, %q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestManifestJSONShape(t *testing.T) {
	t.Parallel()
	m := &Manifest{Format: "mbox", Tool: "t", Query: `q "x"`, Digest: "d"}
	m.Messages = append(m.Messages, newRow(Item{ID: 3, Raw: []byte("Subject: s&t\nFrom: A <a@example.com>\n\n")}), newRow(Item{ID: 4}))
	var b bytes.Buffer
	if err := writeJSON(&b, m); err != nil {
		t.Fatal(err)
	}
	got := readManifestJSON(t, b.Bytes())
	if !manifestEqual(got, *m) {
		t.Errorf("writeJSON round trip = %+v, want %+v", got, *m)
	}
	if !bytes.Contains(b.Bytes(), []byte(`"from":"A <a@example.com>","to":"","subject":"s&t"`)) {
		t.Errorf("manifest.json escapes or misses the From field:\n%s", b.Bytes())
	}
	if n := bytes.Count(b.Bytes(), []byte("\n    {\"seq\"")); n != 2 {
		t.Errorf("manifest.json has %d one-line rows, want 2:\n%s", n, b.Bytes())
	}
}
