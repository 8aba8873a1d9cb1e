// SPDX-License-Identifier: Apache-2.0

package index

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestExtract(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		body     []string // substrings of Body
		notBody  []string
		attText  []string
		names    []string
		subject  string
		hasAtt   bool
		flags    []string
		checkAll bool
	}{
		{
			name: "html to text without script and style",
			raw: "Content-Type: text/html; charset=utf-8\r\n\r\n<html><head><title>t</title><style>p{color:red}</style></head>" +
				"<body><p>Hello&nbsp;<b>world</b> &amp; friends</p><script>var secret=1;</script></body></html>",
			body:    []string{"Hello\u00a0world", "& friends"},
			notBody: []string{"color", "secret", "<p>", "<b>"},
		},
		{
			name:    "RFC 2047 subject split inside a multibyte character",
			raw:     "Subject: =?utf-8?B?5pel5pys?= =?utf-8?B?6Kqe?=\r\n\r\nx",
			subject: "日本語",
		},
		{
			name:    "RFC 2047 split UTF-8 character across words",
			raw:     "Subject: =?UTF-8?Q?caf=C3?= =?UTF-8?Q?=A9_au_lait?=\r\n\r\nx",
			subject: "café au lait",
		},
		{
			name: "RFC 2231 latin-1 filename with continuations",
			raw: "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\n" +
				"Content-Disposition: attachment;\r\n filename*0*=iso-8859-1''R%E9sum;\r\n filename*1*=%E9.pdf\r\n\r\nxx\r\n--b--\r\n",
			names:  []string{"Résumé.pdf"},
			hasAtt: true,
		},
		{
			name: "RFC 2047 encoded name parameter",
			raw: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf; name=\"=?utf-8?Q?Gr=C3=BC=C3=9Fe.pdf?=\"\r\n" +
				"\r\nxx\r\n--b--\r\n",
			names:  []string{"Grüße.pdf"},
			hasAtt: true,
		},
		{
			name: "nested message/rfc822 with its own attachment",
			raw: "Subject: fwd\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\nContent-Type: text/plain\r\n\r\nsee below\r\n" +
				"--outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner subject\r\nFrom: inner@example.com\r\n" +
				"Content-Type: multipart/mixed; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\ninner body text\r\n" +
				"--inner\r\nContent-Type: text/csv; name=data.csv\r\nContent-Disposition: attachment; filename=data.csv\r\n\r\nalpha,beta\r\n" +
				"--inner--\r\n--outer--\r\n",
			subject: "fwd",
			body:    []string{"see below", "inner subject", "inner@example.com", "inner body text"},
			notBody: []string{"alpha"},
			attText: []string{"alpha,beta"},
			names:   []string{"data.csv"},
			hasAtt:  true,
		},
		{
			name: "text-like attachments by extension; binary ones only by name",
			raw: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\n" +
				"Content-Disposition: attachment; filename=invite.ics\r\n\r\nBEGIN:VCALENDAR\r\nSUMMARY:Board meeting\r\n" +
				"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=blob.bin\r\n\r\nbinarystuff\r\n--b--\r\n",
			attText: []string{"Board meeting"},
			names:   []string{"invite.ics", "blob.bin"},
			hasAtt:  true,
		},
		{
			name: "attached .eml is read as a message",
			raw: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\n" +
				"Content-Disposition: attachment; filename=old.eml\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
				"U3ViamVjdDogb2xkIG5ld3MNCg0KZm9yZ290dGVuIHRleHQNCg==\r\n--b--\r\n",
			attText: []string{"old news", "forgotten text"},
			names:   []string{"old.eml"},
			hasAtt:  true,
		},
		{
			name:  "bad base64 is decoded as far as possible and flagged",
			raw:   "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29y!!bGQ=\r\n",
			body:  []string{"hello world"},
			flags: []string{FlagDecodeError},
		},
		{
			name:  "unknown transfer encoding is indexed raw and flagged",
			raw:   "Content-Transfer-Encoding: x-custom\r\n\r\nplain words\r\n",
			body:  []string{"plain words"},
			flags: []string{FlagDecodeError},
		},
		{
			name: "quoted-printable with soft breaks",
			raw:  "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nau=DFer=\r\nordentlich =3D ok\r\n",
			body: []string{"außerordentlich = ok"},
		},
		{
			name: "missing close delimiter",
			raw:  "Content-Type: multipart/mixed; boundary=b\r\n\r\npreamble\r\n--b\r\n\r\nfirst\r\n--b\r\n\r\nsecond part never closed",
			body: []string{"first", "second part never closed"}, notBody: []string{"preamble"},
		},
		{
			name: "boundary prefix of another line is not a delimiter",
			raw:  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--bb not a delimiter\r\n--b--\r\n",
			body: []string{"one", "--bb not a delimiter"},
		},
		{
			name: "multipart/digest parts default to message/rfc822",
			raw:  "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: digest item\r\n\r\nitem body\r\n--d--\r\n",
			body: []string{"digest item", "item body"},
		},
		{
			name:    "signature part of multipart/signed is skipped",
			raw:     "Content-Type: multipart/signed; boundary=s\r\n\r\n--s\r\n\r\nsigned text\r\n--s\r\nContent-Type: application/pgp-signature; name=signature.asc\r\n\r\nSIG\r\n--s--\r\n",
			body:    []string{"signed text"},
			notBody: []string{"SIG"},
		},
		{
			name: "uuencoded body",
			raw:  "Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a.txt\r\n+:&5L;&\\@=V]R;&0`\r\n`\r\nend\r\n",
			body: []string{"hello world"},
		},
		{
			name: "no header at all",
			raw:  "just a line of text\nand another",
			body: []string{"just a line of text"},
		},
		{
			name:    "8-bit latin-1 subject without encoding",
			raw:     "Subject: Caf\xe9\r\n\r\nx",
			subject: "Café",
		},
	}
	for _, tt := range tests {
		x := Extract([]byte(tt.raw))
		for _, s := range tt.body {
			if !strings.Contains(x.Body, s) {
				t.Errorf("%s: Extract body = %q, want it to contain %q", tt.name, x.Body, s)
			}
		}
		for _, s := range tt.notBody {
			if strings.Contains(x.Body, s) {
				t.Errorf("%s: Extract body = %q, want no %q", tt.name, x.Body, s)
			}
		}
		for _, s := range tt.attText {
			if !strings.Contains(x.AttachText, s) {
				t.Errorf("%s: Extract attachment text = %q, want it to contain %q", tt.name, x.AttachText, s)
			}
		}
		if tt.names != nil && !slices.Equal(x.AttachNames, tt.names) {
			t.Errorf("%s: Extract names = %q, want %q", tt.name, x.AttachNames, tt.names)
		}
		if tt.subject != "" && x.Subject != tt.subject {
			t.Errorf("%s: Extract subject = %q, want %q", tt.name, x.Subject, tt.subject)
		}
		if x.HasAttachment != tt.hasAtt {
			t.Errorf("%s: Extract has attachment = %v, want %v", tt.name, x.HasAttachment, tt.hasAtt)
		}
		if !slices.Equal(x.Flags(), tt.flags) {
			t.Errorf("%s: Extract flags = %v, want %v", tt.name, x.Flags(), tt.flags)
		}
	}
}

func TestExtractBounds(t *testing.T) {
	// Text cap.
	big := "Subject: big\r\n\r\n" + strings.Repeat("word ", MaxTextBytes/5+1000)
	x := Extract([]byte(big))
	if len(x.Body) > MaxTextBytes || !x.Truncated {
		t.Errorf("Extract(%d bytes of text) = %d bytes, truncated %v; want ≤ %d and truncated", len(big), len(x.Body), x.Truncated, MaxTextBytes)
	}
	// Nesting depth: message/rfc822 inside message/rfc822, deeper than MaxDepth.
	var b strings.Builder
	for range MaxDepth + 10 {
		b.WriteString("Content-Type: message/rfc822\r\n\r\n")
	}
	b.WriteString("Subject: deep\r\n\r\nbottom\r\n")
	x = Extract([]byte(b.String()))
	if !x.Truncated || strings.Contains(x.Body, "bottom") {
		t.Errorf("Extract(depth %d) truncated %v, body %q; want truncated without the bottom text", MaxDepth+10, x.Truncated, x.Body)
	}
	// mimekit's stack-overflow sample: a 135 KB To header of encoded words.
	raw, err := os.ReadFile(filepath.Join(corpusDir, "mimekit/messages/stack-overflow.txt"))
	if err != nil {
		t.Fatal(err)
	}
	x = Extract(raw)
	if len(x.To) != 1 || !strings.Contains(x.To[0], "date>2017-08-20T10:08:28.617</pr") {
		t.Errorf("Extract(stack-overflow.txt) To = %.100q…, want the decoded words", x.To)
	}
}
