// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/sealmail/sealmail"
)

const corpusDir = "../../shared/corpus/journal"

// corpusSets are the directories with an expected.json, relative to corpusDir.
var corpusSets = []string{"synthetic", "real/integraldefense-ace"}

type expRecipient struct {
	Address       string  `json:"address"`
	Field         string  `json:"field"`
	ExpandedFrom  *string `json:"expanded_from"`
	ForwardedFrom *string `json:"forwarded_from"`
}

type expDigest struct {
	Length int    `json:"length"`
	SHA256 string `json:"sha256"`
}

type expSample struct {
	File          string         `json:"file"`
	FileSHA256    string         `json:"file_sha256"`
	FileLength    int            `json:"file_length"`
	Kind          string         `json:"kind"`
	JournalFormat *string        `json:"journal_format"`
	Sender        *string        `json:"sender"`
	OnBehalfOf    *string        `json:"on_behalf_of"`
	MessageID     *string        `json:"message_id"`
	Recipients    []expRecipient `json:"recipients"`
	Original      expDigest      `json:"original"`
}

type corpusSample struct {
	path string
	data []byte
	exp  expSample
}

// loadCorpus reads every sample named in the corpus expected.json files and
// checks that the file is the one expected.json describes.
func loadCorpus(t testing.TB) []corpusSample {
	t.Helper()
	var out []corpusSample
	for _, set := range corpusSets {
		dir := filepath.Join(corpusDir, set)
		raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
		if err != nil {
			t.Fatalf("read corpus (see ../shared/corpus/journal/MANIFEST.md): %v", err)
		}
		var doc struct {
			Samples []expSample `json:"samples"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("decode %s/expected.json: %v", dir, err)
		}
		for _, s := range doc.Samples {
			p := filepath.Join(dir, s.File)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := sum(data); got != s.FileSHA256 || len(data) != s.FileLength {
				t.Fatalf("%s: sha256 %s len %d, expected.json says %s len %d", p, got, len(data), s.FileSHA256, s.FileLength)
			}
			out = append(out, corpusSample{path: p, data: data, exp: s})
		}
	}
	if len(out) < 23 {
		t.Fatalf("corpus has %d samples, want at least 23", len(out))
	}
	return out
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// smtpFacts is a plausible SMTP transaction for a corpus sample.
func smtpFacts() sealmail.Envelope {
	return sealmail.Envelope{
		Received:   time.Date(2024, 3, 12, 8, 41, 8, 0, time.UTC),
		MailFrom:   "journal-ndr@contoso.com",
		RcptTo:     []string{"journal@archive.example.com"},
		ClientIP:   "203.0.113.25",
		HELO:       "ex16-mbx01.contoso.local",
		TLS:        "TLS 1.3",
		AuthUser:   "exchange",
		ReceivedBy: "127.0.0.1:2525",
	}
}

var fieldKind = map[string]sealmail.RcptKind{
	"To": sealmail.RcptTo, "Cc": sealmail.RcptCc, "Bcc": sealmail.RcptBcc, "Recipient": sealmail.RcptUnknown,
}

func wantRecipients(exp []expRecipient) []sealmail.Recipient {
	out := []sealmail.Recipient{}
	for _, r := range exp {
		w := sealmail.Recipient{Address: r.Address, Kind: fieldKind[r.Field]}
		if r.ExpandedFrom != nil {
			w.ExpandedFrom = *r.ExpandedFrom
		}
		if r.ForwardedFrom != nil {
			w.ForwardedFrom = *r.ForwardedFrom
		}
		out = append(out, w)
	}
	return out
}

func wantFormat(e expSample) string {
	switch e.Kind {
	case KindNDR:
		return FormatJournalNDR
	case KindMalformed:
		return FormatMalformed
	case KindPlain:
		return FormatPlain
	}
	return *e.JournalFormat
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// offsetIn returns where sub starts in data, or -1 if sub is not a subslice
// of data (an empty sub counts as a subslice).
func offsetIn(data, sub []byte) int {
	if len(sub) == 0 {
		return 0
	}
	if len(data) == 0 {
		return -1
	}
	d := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	s := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	if s < d || s+uintptr(len(sub)) > d+uintptr(len(data)) {
		return -1
	}
	return int(s - d)
}

func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafe.SliceData(a) == unsafe.SliceData(b))
}

// checkTransport checks that every transport field of smtp was copied.
func checkTransport(t *testing.T, name string, got, smtp sealmail.Envelope) {
	t.Helper()
	if !got.Received.Equal(smtp.Received) || got.MailFrom != smtp.MailFrom || !reflect.DeepEqual(got.RcptTo, smtp.RcptTo) ||
		got.ClientIP != smtp.ClientIP || got.HELO != smtp.HELO || got.TLS != smtp.TLS ||
		got.AuthUser != smtp.AuthUser || got.ReceivedBy != smtp.ReceivedBy {
		t.Errorf("%s: transport fields = %+v, want copied from %+v", name, got, smtp)
	}
}

func TestParseCorpusTrusted(t *testing.T) {
	t.Parallel()
	for _, s := range loadCorpus(t) {
		t.Run(s.exp.File, func(t *testing.T) {
			t.Parallel()
			smtp := smtpFacts()
			res := Parse(s.data, smtp, Options{Trusted: true})
			e := s.exp
			if res.Kind != e.Kind {
				t.Errorf("Parse(%q).Kind = %q, want %q", e.File, res.Kind, e.Kind)
			}
			if want := wantFormat(e); res.Format != want {
				t.Errorf("Parse(%q).Format = %q, want %q", e.File, res.Format, want)
			}
			checkTransport(t, e.File, res.Envelope, smtp)
			off := offsetIn(s.data, res.Original)
			if off < 0 {
				t.Fatalf("Parse(%q).Original is not a subslice of data", e.File)
			}

			switch e.Kind {
			case KindReport, KindNDR:
				if !sameSlice(res.Report, s.data) {
					t.Errorf("Parse(%q).Report is not data", e.File)
				}
				if got, want := len(res.Original), e.Original.Length; got != want {
					t.Errorf("Parse(%q): len(Original) = %d, want %d", e.File, got, want)
				}
				if got := sum(res.Original); got != e.Original.SHA256 {
					t.Errorf("Parse(%q): sha256(Original) = %s, want %s", e.File, got, e.Original.SHA256)
				}
				env := res.Envelope
				if env.Source != sealmail.SourceExchangeReport {
					t.Errorf("Parse(%q).Envelope.Source = %q, want %q", e.File, env.Source, sealmail.SourceExchangeReport)
				}
				if env.Sender != str(e.Sender) {
					t.Errorf("Parse(%q).Envelope.Sender = %q, want %q", e.File, env.Sender, str(e.Sender))
				}
				if env.OnBehalfOf != str(e.OnBehalfOf) {
					t.Errorf("Parse(%q).Envelope.OnBehalfOf = %q, want %q", e.File, env.OnBehalfOf, str(e.OnBehalfOf))
				}
				if want := wantRecipients(e.Recipients); !reflect.DeepEqual(env.Recipients, want) {
					t.Errorf("Parse(%q).Envelope.Recipients = %+v, want %+v", e.File, env.Recipients, want)
				}
				if e.MessageID != nil && res.OriginalMessageID != *e.MessageID {
					t.Errorf("Parse(%q).OriginalMessageID = %q, want %q", e.File, res.OriginalMessageID, *e.MessageID)
				}
				if env.ReportMessageID == "" {
					t.Errorf("Parse(%q).Envelope.ReportMessageID is empty", e.File)
				}
				if env.Untrusted != nil {
					t.Errorf("Parse(%q).Envelope.Untrusted = %+v, want nil", e.File, env.Untrusted)
				}
			case KindMalformed:
				// Malformed reports are archived whole (DESIGN.md "Journal
				// envelopes"); expected.json's original digest is the
				// part a lenient reader would pick, not what sealmail stores.
				if !sameSlice(res.Original, s.data) || !sameSlice(res.Report, s.data) {
					t.Errorf("Parse(%q): Original and Report must both be the whole data", e.File)
				}
				if res.Envelope.Source != sealmail.SourceSMTPEnvelope || res.Envelope.Sender != smtp.MailFrom {
					t.Errorf("Parse(%q).Envelope = %+v, want the SMTP envelope", e.File, res.Envelope)
				}
				if len(res.Envelope.Warnings) == 0 {
					t.Errorf("Parse(%q).Envelope.Warnings is empty, want a malformed-report warning", e.File)
				}
			case KindPlain:
				if !sameSlice(res.Original, s.data) || res.Report != nil {
					t.Errorf("Parse(%q): Original must be data and Report nil", e.File)
				}
				if got := sum(res.Original); got != e.Original.SHA256 || len(res.Original) != e.Original.Length {
					t.Errorf("Parse(%q): Original digest %s len %d, want %s len %d", e.File, got, len(res.Original), e.Original.SHA256, e.Original.Length)
				}
				if res.Envelope.Source != sealmail.SourceSMTPEnvelope || res.Envelope.Sender != smtp.MailFrom {
					t.Errorf("Parse(%q).Envelope = %+v, want the SMTP envelope", e.File, res.Envelope)
				}
			default:
				t.Fatalf("expected.json kind %q unknown", e.Kind)
			}
		})
	}
}

func TestParseCorpusUntrusted(t *testing.T) {
	t.Parallel()
	for _, s := range loadCorpus(t) {
		t.Run(s.exp.File, func(t *testing.T) {
			t.Parallel()
			smtp := smtpFacts()
			res := Parse(s.data, smtp, Options{})
			e := s.exp
			env := res.Envelope
			if res.Kind != e.Kind {
				t.Errorf("Parse(%q, untrusted).Kind = %q, want %q", e.File, res.Kind, e.Kind)
			}
			if !sameSlice(res.Original, s.data) {
				t.Errorf("Parse(%q, untrusted).Original is not the whole data", e.File)
			}
			if env.Source != sealmail.SourceSMTPEnvelope {
				t.Errorf("Parse(%q, untrusted).Envelope.Source = %q, want %q", e.File, env.Source, sealmail.SourceSMTPEnvelope)
			}
			if env.Sender != smtp.MailFrom {
				t.Errorf("Parse(%q, untrusted).Envelope.Sender = %q, want %q", e.File, env.Sender, smtp.MailFrom)
			}
			want := []sealmail.Recipient{{Address: "journal@archive.example.com", Kind: sealmail.RcptUnknown}}
			if !reflect.DeepEqual(env.Recipients, want) {
				t.Errorf("Parse(%q, untrusted).Envelope.Recipients = %+v, want %+v", e.File, env.Recipients, want)
			}
			if env.OnBehalfOf != "" || env.ReportMessageID != "" {
				t.Errorf("Parse(%q, untrusted) took OnBehalfOf %q / ReportMessageID %q from the report", e.File, env.OnBehalfOf, env.ReportMessageID)
			}
			checkTransport(t, e.File, env, smtp)
			switch e.Kind {
			case KindReport, KindNDR:
				if !sameSlice(res.Report, s.data) {
					t.Errorf("Parse(%q, untrusted).Report is not data", e.File)
				}
				u := env.Untrusted
				if u == nil {
					t.Fatalf("Parse(%q, untrusted).Envelope.Untrusted = nil, want the claimed envelope", e.File)
				}
				if u.Source != sealmail.SourceExchangeReport || u.Sender != str(e.Sender) || u.OnBehalfOf != str(e.OnBehalfOf) {
					t.Errorf("Parse(%q, untrusted).Envelope.Untrusted = %+v, want sender %q on-behalf-of %q", e.File, u, str(e.Sender), str(e.OnBehalfOf))
				}
				if w := wantRecipients(e.Recipients); !reflect.DeepEqual(u.Recipients, w) {
					t.Errorf("Parse(%q, untrusted).Envelope.Untrusted.Recipients = %+v, want %+v", e.File, u.Recipients, w)
				}
				if u.MailFrom != "" || u.ClientIP != "" || u.RcptTo != nil || u.Untrusted != nil {
					t.Errorf("Parse(%q, untrusted): claim carries transport fields: %+v", e.File, u)
				}
			default:
				if env.Untrusted != nil {
					t.Errorf("Parse(%q, untrusted).Envelope.Untrusted = %+v, want nil", e.File, env.Untrusted)
				}
			}
		})
	}
}

// TestParseCorpusLF converts every CRLF sample to bare LF (as a store-after-
// delivery copy would be) and checks the same envelope and the LF form of the
// same original come out.
func TestParseCorpusLF(t *testing.T) {
	t.Parallel()
	for _, s := range loadCorpus(t) {
		if !bytesContains(s.data, "\r\n") {
			continue
		}
		t.Run(s.exp.File, func(t *testing.T) {
			t.Parallel()
			crlf := Parse(s.data, smtpFacts(), Options{Trusted: true})
			lfData := toLF(s.data)
			lf := Parse(lfData, smtpFacts(), Options{Trusted: true})
			if lf.Kind != crlf.Kind || lf.Format != crlf.Format {
				t.Errorf("Parse(LF %q) = %s/%s, want %s/%s", s.exp.File, lf.Kind, lf.Format, crlf.Kind, crlf.Format)
			}
			if !reflect.DeepEqual(lf.Envelope.Recipients, crlf.Envelope.Recipients) || lf.Envelope.Sender != crlf.Envelope.Sender {
				t.Errorf("Parse(LF %q).Envelope = %+v, want %+v", s.exp.File, lf.Envelope, crlf.Envelope)
			}
			if got, want := string(lf.Original), string(toLF(crlf.Original)); got != want {
				t.Errorf("Parse(LF %q).Original differs from the LF form of the CRLF original (len %d vs %d)", s.exp.File, len(got), len(want))
			}
			if offsetIn(lfData, lf.Original) < 0 {
				t.Errorf("Parse(LF %q).Original is not a subslice of data", s.exp.File)
			}
		})
	}
}
