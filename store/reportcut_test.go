// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// journalReport wraps original the way Exchange does: a text part, then the
// original as an unencoded message/rfc822 attachment.
func journalReport(original string) string {
	return "X-MS-Journal-Report:\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: text/plain\r\n\r\nSender: a@example.com\r\nRecipient: b@example.org\r\n--b\r\n" +
		"Content-Type: message/rfc822\r\n\r\n" + original + "\r\n--b--\r\n"
}

// TestReportWithoutEmbeddedOriginal: a report that holds the original
// verbatim is stored without it (format version 2) and read back
// byte-exact; other reports are stored whole (version 1).
func TestReportWithoutEmbeddedOriginal(t *testing.T) {
	t.Parallel()
	s, ident := newStore(t, Options{})
	ctx := context.Background()
	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 1<<16) // 1.1 MiB
	for _, tc := range []struct {
		name, original, report string
		cut                    bool
	}{
		{"embedded", big, journalReport(big), true},
		{"at the start", "Subject: s\r\n\r\nx\r\n", "Subject: s\r\n\r\nx\r\n trailer", true},
		{"at the end", "Subject: e\r\n\r\ny\r\n", "head Subject: e\r\n\r\ny\r\n", true},
		{"twice", "Subject: t\r\n\r\nz\r\n", "Subject: t\r\n\r\nz\r\n|Subject: t\r\n\r\nz\r\n", true},
		{"prefix only", "Subject: p\r\n\r\nlong body\r\n", "Subject: p\r\n\r\nlong bod|Subject: p\r\n\r\nlong body\r\n", true},
		{"not embedded (encoded)", "Subject: n\r\n\r\nq\r\n", "U3ViamVjdDogbg0KDQpxDQo=", false},
	} {
		m := msg(tc.original)
		m.Report = []byte(tc.report)
		res, err := s.Append(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		ps := get(t, s, res.ID, ident)
		p := ps[0]
		if string(p.Original) != tc.original || string(p.Report) != tc.report {
			t.Errorf("%s: read back original %d bytes, report %d bytes; want %d and %d byte-exact",
				tc.name, len(p.Original), len(p.Report), len(tc.original), len(tc.report))
		}
		wantStored := len(tc.report)
		if tc.cut {
			wantStored -= len(tc.original)
		}
		if (p.Header.ReportCut != nil) != tc.cut || p.Header.ReportSize != int64(wantStored) {
			t.Errorf("%s: header v%d report_cut %v report_size %d; want cut %v, %d bytes stored",
				tc.name, p.Header.Version, p.Header.ReportCut, p.Header.ReportSize, tc.cut, wantStored)
		}
	}
}

func plaintext(h PayloadHeader, data string) []byte {
	line, _ := json.Marshal(h)
	return append(append(line, '\n'), data...)
}

// TestPayloadVersions: version 2 needs report_cut on a message entry,
// version 1 must not have it; a cut beyond the report is corrupt; unknown
// versions are unsupported.
func TestPayloadVersions(t *testing.T) {
	t.Parallel()
	orig := "abc"
	sum := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" // sha256("abc")
	at := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		name string
		h    PayloadHeader
		data string
		want error
	}{
		{"v1", PayloadHeader{Version: 1, Kind: "message", Size: 3, SHA256: sum, ReportSize: 2}, orig + "rr", nil},
		{"v2", PayloadHeader{Version: 2, Kind: "message", Size: 3, SHA256: sum, ReportSize: 2, ReportCut: at(1)}, orig + "rr", nil},
		{"v1 with cut", PayloadHeader{Version: 1, Kind: "message", Size: 3, SHA256: sum, ReportSize: 2, ReportCut: at(1)}, orig + "rr", ErrCorrupt},
		{"v2 without cut", PayloadHeader{Version: 2, Kind: "message", Size: 3, SHA256: sum, ReportSize: 2}, orig + "rr", ErrCorrupt},
		{"v2 envelope", PayloadHeader{Version: 2, Kind: "envelope", ReportSize: 2, ReportCut: at(0)}, "rr", ErrCorrupt},
		{"cut beyond", PayloadHeader{Version: 2, Kind: "message", Size: 3, SHA256: sum, ReportSize: 2, ReportCut: at(3)}, orig + "rr", ErrCorrupt},
		{"negative cut", PayloadHeader{Version: 2, Kind: "message", Size: 3, SHA256: sum, ReportSize: 2, ReportCut: at(-1)}, orig + "rr", ErrCorrupt},
		{"v3", PayloadHeader{Version: 3, Kind: "message", Size: 3, SHA256: sum}, orig, ErrUnsupportedVersion},
	} {
		p, err := parsePlaintext(plaintext(tc.h, tc.data))
		if !errors.Is(err, tc.want) || (tc.want != nil) != (err != nil) {
			t.Errorf("%s: parsePlaintext error %v, want %v", tc.name, err, tc.want)
			continue
		}
		if tc.name == "v2" && string(p.Report) != "rabcr" {
			t.Errorf("v2: report %q, want %q", p.Report, "rabcr")
		}
	}
}

// FuzzReportCut: cutting the original out of a report and splicing it back
// at the offset gives the report again, and what is cut is the original.
func FuzzReportCut(f *testing.F) {
	f.Add([]byte("head ORIG tail"), []byte("ORIG"))
	f.Add([]byte("ORIORIG"), []byte("ORIG"))
	f.Add([]byte("x"), []byte(""))
	f.Fuzz(func(t *testing.T, report, original []byte) {
		stored, cut := cutOriginal(report, original)
		if cut == nil {
			if !bytes.Equal(stored, report) {
				t.Fatalf("no cut, but the report changed")
			}
			if len(original) > 0 && bytes.Contains(report, original) {
				t.Fatalf("report %q holds original %q, not cut", report, original)
			}
			return
		}
		got := append(append(append([]byte(nil), stored[:*cut]...), original...), stored[*cut:]...)
		if !bytes.Equal(got, report) {
			t.Fatalf("splice(%q at %d) = %q, want %q", stored, *cut, got, report)
		}
	})
}

// FuzzPayloadPlaintext: any plaintext either parses or fails with
// ErrCorrupt or ErrUnsupportedVersion; a parsed report_cut splices the
// original back into the report.
func FuzzPayloadPlaintext(f *testing.F) {
	f.Add(plaintext(PayloadHeader{Version: 1, Kind: "message", Size: 3, SHA256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", ReportSize: 2}, "abcrr"))
	cut := int64(1)
	f.Add(plaintext(PayloadHeader{Version: 2, Kind: "message", Size: 3, SHA256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", ReportSize: 2, ReportCut: &cut}, "abcrr"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePlaintext(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("parsePlaintext error %v is neither ErrCorrupt nor ErrUnsupportedVersion", err)
			}
			return
		}
		if c := p.Header.ReportCut; c != nil && !bytes.Equal(p.Report[*c:*c+int64(len(p.Original))], p.Original) {
			t.Fatalf("report %q does not hold the original %q at %d", p.Report, p.Original, *c)
		}
	})
}
