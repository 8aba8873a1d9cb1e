// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sealmail/sealmail"
)

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, "synthetic", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// report builds a CRLF journal report with the given envelope part body
// (already encoded) and original.
func buildReport(envHeader, envBody, original string) []byte {
	s := "From: a@example.com\r\n" +
		"Message-ID: <r1@journal.report.generator>\r\n" +
		"Content-Type: multipart/mixed; boundary=\"B\"\r\n" +
		"X-MS-Journal-Report:\r\n" +
		"\r\n" +
		"--B\r\n" + envHeader + "\r\n" + envBody + "\r\n" +
		"--B\r\n" +
		"Content-Type: message/rfc822\r\n" +
		"\r\n" + original + "\r\n" +
		"--B--\r\n"
	return []byte(s)
}

const plainOriginal = "From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\n\r\nbody\r\n"

func TestParseEdgeCases(t *testing.T) {
	t.Parallel()
	basic := readSample(t, "01-exchange2016-basic.eml")
	huge := strings.Repeat("x", 2<<20)

	tests := []struct {
		name     string
		data     []byte
		kind     string
		whole    bool   // Original must be the whole data
		original string // else Original must equal this
		warn     string // a warning must contain this
		sender   string
		rcpts    []sealmail.Recipient
	}{
		{name: "empty", data: []byte{}, kind: KindPlain, whole: true},
		{name: "nil", data: nil, kind: KindPlain, whole: true},
		{name: "garbage", data: []byte("\x00\xff\xfe garbage ::: \n\n\r\r--\n"), kind: KindPlain, whole: true},
		{name: "only marker header", data: []byte("X-MS-Journal-Report:"), kind: KindMalformed, whole: true, warn: "not multipart"},
		{
			name:  "truncated inside original",
			data:  basic[:len(basic)-200],
			kind:  KindMalformed,
			whole: true,
			warn:  "truncated",
		},
		{
			name:  "truncated inside envelope",
			data:  basic[:bytes.Index(basic, []byte("Subject: Q1 numbers\r\nMessage-Id"))],
			kind:  KindMalformed,
			whole: true,
			warn:  "no message/rfc822 part",
		},
		{
			name:  "truncated before envelope",
			data:  basic[:bytes.Index(basic, []byte("Sender: alice@contoso.com"))],
			kind:  KindMalformed,
			whole: true,
			warn:  "no envelope block",
		},
		{
			name: "no rfc822 part",
			data: []byte("X-MS-Journal-Report:\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n" +
				"--B\r\nContent-Type: text/plain\r\n\r\nSender: a@example.com\r\nTo: b@example.com\r\n--B--\r\n"),
			kind:  KindMalformed,
			whole: true,
			warn:  "no message/rfc822 part",
		},
		{
			name:  "no boundary",
			data:  []byte("X-MS-Journal-Report:\r\nContent-Type: multipart/mixed\r\n\r\nSender: a@example.com\r\n"),
			kind:  KindMalformed,
			whole: true,
			warn:  "without boundary",
		},
		{
			name:     "bare LF report",
			data:     toLF(buildReport("Content-Type: text/plain\r\n", "Sender: s@example.com\r\nTo: t@example.com", plainOriginal)),
			kind:     KindReport,
			original: string(toLF([]byte(plainOriginal))),
			sender:   "s@example.com",
			rcpts:    []sealmail.Recipient{{Address: "t@example.com", Kind: sealmail.RcptTo}},
		},
		{
			name: "huge header lines",
			data: buildReport("Content-Type: text/plain\r\nX-Huge: "+huge+"\r\n",
				"Sender: s@example.com\r\nTo: t@example.com, Expanded: "+huge,
				"X-Long: "+huge+"\r\n\r\nbody"),
			kind:     KindReport,
			original: "X-Long: " + huge + "\r\n\r\nbody",
			sender:   "s@example.com",
			rcpts:    []sealmail.Recipient{{Address: "t@example.com", Kind: sealmail.RcptTo, ExpandedFrom: huge}},
		},
		{
			name: "html envelope",
			data: buildReport("Content-Type: text/html; charset=utf-8\r\n",
				"<html><body><p>Sender: s@example.com</p><p>Bcc: b@example.com, Forwarded: &lt;f@example.com&gt;</p>"+
					"<div>Recipient:&nbsp;r@example.com</div></body></html>",
				plainOriginal),
			kind:     KindReport,
			original: plainOriginal,
			sender:   "s@example.com",
			rcpts: []sealmail.Recipient{
				{Address: "b@example.com", Kind: sealmail.RcptBcc, ForwardedFrom: "f@example.com"},
				{Address: "r@example.com", Kind: sealmail.RcptUnknown},
			},
		},
		{
			name: "base64 envelope with latin1 charset",
			data: buildReport("Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n",
				"U2VuZGVyOiBzQGV4YW1wbGUuY29tDQpTdWJqZWN0OiDcYmVyDQpUbzogdEBleGFtcGxlLmNvbQ0K",
				plainOriginal),
			kind:     KindReport,
			original: plainOriginal,
			sender:   "s@example.com",
			rcpts:    []sealmail.Recipient{{Address: "t@example.com", Kind: sealmail.RcptTo}},
		},
		{
			name: "unspecified sender and null recipients",
			data: buildReport("Content-Type: text/plain\r\n",
				"Sender: Unspecified Address\r\nMessage-Id: Unknown Message-ID\r\nTo: <>\r\nCc: c@example.com",
				plainOriginal),
			kind:     KindReport,
			original: plainOriginal,
			warn:     "Unspecified Address",
			sender:   "",
			rcpts:    []sealmail.Recipient{{Address: "c@example.com", Kind: sealmail.RcptCc}},
		},
		{
			name: "boundary prefix inside a part is content",
			data: buildReport("Content-Type: text/plain\r\n", "Sender: s@example.com\r\nTo: t@example.com",
				"Subject: x\r\n\r\n--BX not a delimiter\r\n--B- neither"),
			kind:     KindReport,
			original: "Subject: x\r\n\r\n--BX not a delimiter\r\n--B- neither",
			sender:   "s@example.com",
			rcpts:    []sealmail.Recipient{{Address: "t@example.com", Kind: sealmail.RcptTo}},
		},
		{
			name: "empty original",
			data: buildReport("Content-Type: text/plain\r\n", "Sender: s@example.com\r\nTo: t@example.com", ""),
			kind: KindReport, original: "", sender: "s@example.com",
			rcpts: []sealmail.Recipient{{Address: "t@example.com", Kind: sealmail.RcptTo}},
		},
		{
			name:  "processed-by-journaling stamp is not a marker",
			data:  []byte("X-MS-Exchange-Organization-Processed-By-Journaling: Journal Agent\r\nX-MS-Exchange-CrossPremises-Processed-By-Journaling: Journal Agent\r\nSubject: x\r\n\r\nSender: s@example.com\r\n"),
			kind:  KindPlain,
			whole: true,
		},
		{
			name: "bounce that does not wrap a report is plain",
			data: []byte("Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n" +
				"--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--B\r\nContent-Type: message/rfc822\r\n\r\n" + plainOriginal + "\r\n--B--\r\n"),
			kind:  KindPlain,
			whole: true,
		},
		{
			name: "GCC variant",
			data: bytes.Replace(buildReport("Content-Type: text/plain\r\n", "Sender: s@example.com\r\nRecipient: t@example.com", plainOriginal),
				[]byte("X-MS-Journal-Report:"), []byte("X-MS-Gcc-Journal-Report:"), 1),
			kind: KindReport, original: plainOriginal, warn: "GCC", sender: "s@example.com",
			rcpts: []sealmail.Recipient{{Address: "t@example.com", Kind: sealmail.RcptUnknown}},
		},
		{
			name: "lowercase 2003 marker",
			data: bytes.Replace(buildReport("Content-Type: text/plain\r\n", "Sender: <SMTP:s@example.com>\r\nRecipients:\r\n\tx@example.com,\r\n\ty@example.com", plainOriginal),
				[]byte("X-MS-Journal-Report:"), []byte("content-identifier: exjournalreport"), 1),
			kind: KindReport, original: plainOriginal, sender: "s@example.com",
			rcpts: []sealmail.Recipient{{Address: "x@example.com", Kind: sealmail.RcptUnknown}, {Address: "y@example.com", Kind: sealmail.RcptUnknown}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			smtp := smtpFacts()
			res := Parse(tt.data, smtp, Options{Trusted: true})
			checkInvariants(t, tt.data, res)
			if res.Kind != tt.kind {
				t.Errorf("Parse(%s).Kind = %q, want %q (warnings %q)", tt.name, res.Kind, tt.kind, res.Envelope.Warnings)
			}
			if tt.whole {
				if !sameSlice(res.Original, tt.data) {
					t.Errorf("Parse(%s).Original is not the whole data", tt.name)
				}
			} else if string(res.Original) != tt.original {
				t.Errorf("Parse(%s).Original = %.80q (len %d), want %.80q (len %d)", tt.name, res.Original, len(res.Original), tt.original, len(tt.original))
			}
			if tt.warn != "" && !strings.Contains(strings.Join(res.Envelope.Warnings, "\n"), tt.warn) {
				t.Errorf("Parse(%s).Envelope.Warnings = %q, want one containing %q", tt.name, res.Envelope.Warnings, tt.warn)
			}
			if tt.kind == KindReport {
				if res.Envelope.Sender != tt.sender {
					t.Errorf("Parse(%s).Envelope.Sender = %q, want %q", tt.name, res.Envelope.Sender, tt.sender)
				}
				if !reflect.DeepEqual(res.Envelope.Recipients, tt.rcpts) {
					t.Errorf("Parse(%s).Envelope.Recipients = %+v, want %+v", tt.name, res.Envelope.Recipients, tt.rcpts)
				}
			}
			if tt.kind == KindMalformed && (res.Envelope.Source != sealmail.SourceSMTPEnvelope || res.Envelope.Sender != smtp.MailFrom) {
				t.Errorf("Parse(%s).Envelope = %+v, want the SMTP envelope", tt.name, res.Envelope)
			}
		})
	}
}

// TestParsePlainRecipients covers the plain-message recipient rule: RCPT TO
// first, then X-Original-To and Delivered-To for a trusted source, without
// duplicates (case-insensitive).
func TestParsePlainRecipients(t *testing.T) {
	t.Parallel()
	data := []byte("Return-Path: <s@example.org>\r\n" +
		"X-Original-To: Dave@Example.com\r\n" +
		"Delivered-To: dave@example.com\r\n" +
		"Delivered-To: <archive@archive.example>\r\n" +
		"X-Original-To: not an address\r\n" +
		"From: s@example.org\r\n\r\nhello\r\n")
	smtp := smtpFacts()
	smtp.MailFrom = "s@example.org"
	smtp.RcptTo = []string{"erin@example.com", "ERIN@example.com", "archive@archive.example"}

	tests := []struct {
		trusted bool
		want    []sealmail.Recipient
	}{
		{true, []sealmail.Recipient{
			{Address: "erin@example.com", Kind: sealmail.RcptUnknown},
			{Address: "archive@archive.example", Kind: sealmail.RcptUnknown},
			{Address: "Dave@Example.com", Kind: sealmail.RcptUnknown},
		}},
		{false, []sealmail.Recipient{
			{Address: "erin@example.com", Kind: sealmail.RcptUnknown},
			{Address: "archive@archive.example", Kind: sealmail.RcptUnknown},
		}},
	}
	for _, tt := range tests {
		res := Parse(data, smtp, Options{Trusted: tt.trusted})
		if !reflect.DeepEqual(res.Envelope.Recipients, tt.want) {
			t.Errorf("Parse(plain, trusted=%v).Envelope.Recipients = %+v, want %+v", tt.trusted, res.Envelope.Recipients, tt.want)
		}
		if res.Envelope.Sender != "s@example.org" || res.Envelope.Source != sealmail.SourceSMTPEnvelope {
			t.Errorf("Parse(plain, trusted=%v).Envelope = %+v, want sender s@example.org from the smtp envelope", tt.trusted, res.Envelope)
		}
		if !reflect.DeepEqual(res.Envelope.RcptTo, smtp.RcptTo) {
			t.Errorf("Parse(plain).Envelope.RcptTo = %q, want %q", res.Envelope.RcptTo, smtp.RcptTo)
		}
	}
}

// TestParseDoesNotAliasInput checks that Parse neither changes data nor
// shares smtp.RcptTo, and that appending to Original cannot overwrite data.
func TestParseDoesNotAliasInput(t *testing.T) {
	t.Parallel()
	data := readSample(t, "01-exchange2016-basic.eml")
	before := bytes.Clone(data)
	smtp := smtpFacts()
	res := Parse(data, smtp, Options{Trusted: true})
	_ = append(res.Original, "XXXX"...)
	res.Envelope.RcptTo[0] = "changed"
	if !bytes.Equal(data, before) {
		t.Errorf("Parse changed data (or appending to Original did)")
	}
	if smtp.RcptTo[0] != "journal@archive.example.com" {
		t.Errorf("Envelope.RcptTo shares smtp.RcptTo")
	}
}

func TestParseBlock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         string
		sender     string
		onBehalfOf string
		messageID  string
		rcpts      []sealmail.Recipient
	}{
		{
			in:     "Sender: a@x\r\nOn-Behalf-Of: b@x\r\nSubject: To: c@x\r\nMessage-ID: <m@x>\r\nTo: d@x\r\ncc: e@x, expanded: g@x\r\nBCC: f@x, Forwarded: h@x\r\nRecipient: [EX:/o=X/cn=Y, Z]\r\n",
			sender: "a@x", onBehalfOf: "b@x", messageID: "<m@x>",
			rcpts: []sealmail.Recipient{
				{Address: "d@x", Kind: sealmail.RcptTo},
				{Address: "e@x", Kind: sealmail.RcptCc, ExpandedFrom: "g@x"},
				{Address: "f@x", Kind: sealmail.RcptBcc, ForwardedFrom: "h@x"},
				{Address: "[EX:/o=X/cn=Y, Z]", Kind: sealmail.RcptUnknown},
			},
		},
		{
			// The second Sender:, and On-Behalf-Of, are not recipients.
			in:     "Sender: a@x\nSender: z@x\nOn-Behalf-Of: b@x\nRecipient: c@x \n",
			sender: "a@x", onBehalfOf: "b@x",
			rcpts: []sealmail.Recipient{{Address: "c@x", Kind: sealmail.RcptUnknown}},
		},
		{
			// Exchange 2003, with a Message-ID wrapped over two lines.
			in:     "Sender: \"A\" <SMTP:a@x>\r\nMessage-ID: <abc\r\n\tdef@x>\r\nRecipients:\r\n\t\"B, b\" <SMTP:b@x>,\r\n\t<EX:/O=X/CN=C>\r\n\r\n",
			sender: "a@x", messageID: "<abcdef@x>",
			rcpts: []sealmail.Recipient{{Address: "b@x", Kind: sealmail.RcptUnknown}, {Address: "EX:/O=X/CN=C", Kind: sealmail.RcptUnknown}},
		},
	}
	for _, tt := range tests {
		b := parseBlock(tt.in)
		if !b.haveSender || b.sender != tt.sender || b.onBehalfOf != tt.onBehalfOf || b.messageID != tt.messageID {
			t.Errorf("parseBlock(%q) = sender %q obo %q mid %q, want %q %q %q", tt.in, b.sender, b.onBehalfOf, b.messageID, tt.sender, tt.onBehalfOf, tt.messageID)
		}
		if !reflect.DeepEqual(b.rcpts, tt.rcpts) {
			t.Errorf("parseBlock(%q).rcpts = %+v, want %+v", tt.in, b.rcpts, tt.rcpts)
		}
	}
}

// checkInvariants asserts what Parse promises for any input.
func checkInvariants(t testing.TB, data []byte, res *Result) {
	t.Helper()
	if res == nil {
		t.Fatalf("Parse returned nil")
	}
	if offsetIn(data, res.Original) < 0 && !sameSlice(res.Original, data) {
		t.Fatalf("Original (len %d) is not a subslice of data (len %d)", len(res.Original), len(data))
	}
	if res.Report != nil && !sameSlice(res.Report, data) {
		t.Fatalf("Report is not data")
	}
	switch res.Kind {
	case KindReport, KindNDR:
		if res.Report == nil {
			t.Fatalf("Kind %q without Report", res.Kind)
		}
	case KindMalformed:
		if res.Report == nil || !sameSlice(res.Original, data) || res.Envelope.Source != sealmail.SourceSMTPEnvelope || len(res.Envelope.Warnings) == 0 {
			t.Fatalf("malformed report: Original/Report must be data, Source smtp-envelope, a warning set: %+v", res.Envelope)
		}
	case KindPlain:
		if res.Report != nil || !sameSlice(res.Original, data) {
			t.Fatalf("plain message: Report must be nil and Original data")
		}
	default:
		t.Fatalf("Kind = %q", res.Kind)
	}
	switch res.Envelope.Source {
	case sealmail.SourceExchangeReport:
		if res.Report == nil || res.Envelope.Untrusted != nil {
			t.Fatalf("exchange-report envelope without Report or with Untrusted")
		}
	case sealmail.SourceSMTPEnvelope:
		if !sameSlice(res.Original, data) {
			t.Fatalf("smtp-envelope source but Original is not the whole data")
		}
	default:
		t.Fatalf("Envelope.Source = %q", res.Envelope.Source)
	}
	for _, r := range res.Envelope.Recipients {
		if !r.Kind.Valid() || r.Address == "" {
			t.Fatalf("bad recipient %+v", r)
		}
	}
}

func TestParseEncodedRecipients(t *testing.T) {
	t.Parallel()
	data := []byte("From: s@example.org\r\nBcc-Is-Gone: yes\r\n\r\nhello\r\n")
	smtp := smtpFacts()
	smtp.MailFrom = "s@example.org"
	smtp.RcptTo = []string{
		"archive+bob=example.com@Archive.Example",
		"archive+frank+tag=example.net@archive.example", // local part with "+"
		"archive+a=b=example.net@archive.example",       // local part with "="
		"archive+bob=example.com@other.example",         // not an archive domain
		"plain@archive.example",                         // no encoding
		"archive+=example.com@archive.example",          // empty local part
		"archive+x=@archive.example",                    // empty domain
		"archive+BOB=EXAMPLE.COM@archive.example",       // repeat of the first
	}
	opts := Options{Trusted: true, EncodedRecipientDomains: []string{"archive.example"}}
	want := []sealmail.Recipient{
		{Address: "bob@example.com", Kind: sealmail.RcptUnknown},
		{Address: "frank+tag@example.net", Kind: sealmail.RcptUnknown},
		{Address: "a=b@example.net", Kind: sealmail.RcptUnknown},
		{Address: "archive+bob=example.com@other.example", Kind: sealmail.RcptUnknown},
		{Address: "plain@archive.example", Kind: sealmail.RcptUnknown},
		{Address: "archive+=example.com@archive.example", Kind: sealmail.RcptUnknown},
		{Address: "archive+x=@archive.example", Kind: sealmail.RcptUnknown},
	}
	res := Parse(data, smtp, opts)
	if !reflect.DeepEqual(res.Envelope.Recipients, want) {
		t.Errorf("Parse(encoded).Envelope.Recipients = %+v, want %+v", res.Envelope.Recipients, want)
	}
	if !reflect.DeepEqual(res.Envelope.RcptTo, smtp.RcptTo) {
		t.Errorf("Parse(encoded).Envelope.RcptTo = %q, want as received %q", res.Envelope.RcptTo, smtp.RcptTo)
	}
	opts.Trusted = false
	res = Parse(data, smtp, opts)
	if got := res.Envelope.Recipients[0].Address; got != smtp.RcptTo[0] {
		t.Errorf("Parse(encoded, untrusted) decoded %q, want it kept as %q", got, smtp.RcptTo[0])
	}
}
