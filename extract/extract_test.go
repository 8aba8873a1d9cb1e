// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needTool skips the test when a Debian tool is missing, or fails it when
// CI is set (the CI job installs every tool).
func needTool(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (apt-get install %s); required when CI is set", name, pkg)
		}
		t.Skipf("%s not found: apt-get install %s", name, pkg)
	}
}

// corpus lists the generated documents (testdata/gen.sh) and the words
// each must yield.
var corpus = []struct {
	file   string
	format Format
	tool   string // the Debian tool it needs, if any
	words  []string
}{
	{"sample.pdf", PDF, "pdftotext", []string{"sealpdf", "Zanzibar", "Überweisung", "4711"}},
	{"sample.docx", DOCX, "", []string{"sealdocx", "Zanzibar", "Überweisung", "4711"}},
	{"sample.odt", ODT, "", []string{"sealodt", "Zanzibar", "Überweisung"}},
	{"sample.doc", DOC, "catdoc", []string{"sealdoc", "Zanzibar", "Überweisung"}},
	{"sample.rtf", RTF, "", []string{"sealrtf", "Zanzibar", "Überweisung"}},
	{"sample.xlsx", XLSX, "", []string{"sealxlsx", "Zanzibar", "Überweisung", "4711", "12.5"}},
	{"sample.ods", ODS, "", []string{"sealods", "Zanzibar", "Überweisung", "4711"}},
	{"sample.xls", XLS, "xls2csv", []string{"sealxls", "Zanzibar", "Überweisung", "4711"}},
	{"sample.pptx", PPTX, "", []string{"sealpptx", "Zanzibar", "Überweisung"}},
	{"sample.odp", ODP, "", []string{"sealodp", "Zanzibar", "Überweisung"}},
	{"sample.zip", ZIP, "", []string{"sealzip", "sealdocx", "contracts/sample.docx", "logo.png"}},
	{"nested.zip", ZIP, "", []string{"sealnested", "sealzip", "sealdocx", "inner.zip"}},
}

func readTestdata(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkCorpus(t *testing.T, ex interface {
	Extract(context.Context, Input) Result
}) {
	for _, c := range corpus {
		t.Run(c.file, func(t *testing.T) {
			if c.tool != "" {
				needTool(t, c.tool, map[string]string{"pdftotext": "poppler-utils"}[c.tool]+" catdoc")
			}
			// The declared name is deliberately unhelpful: the content decides.
			r := ex.Extract(context.Background(), Input{Data: readTestdata(t, "corpus/"+c.file), Name: "attachment" + filepath.Ext(c.file)})
			if r.Format != c.format || r.Reason != "" || r.Truncated {
				t.Fatalf("Extract(%s) = %v, want format %s and no reason", c.file, r, c.format)
			}
			for _, w := range c.words {
				if !strings.Contains(r.Text, w) {
					t.Errorf("Extract(%s) text lacks %q: %q", c.file, w, r.Text)
				}
			}
		})
	}
}

func TestLocalCorpus(t *testing.T) {
	t.Parallel()
	checkCorpus(t, NewLocal(Options{}))
}

// tnefOf returns the first application/ms-tnef part of a corpus message.
func tnefOf(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err != nil {
			t.Fatalf("%s: no TNEF part: %v", path, err)
		}
		if ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct == "application/ms-tnef" {
			b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

// TestTNEF reads a real winmail.dat (MimeKit's test data, MIT): an Outlook
// message whose body is HTML in KOI8-U.
func TestTNEF(t *testing.T) {
	t.Parallel()
	data := tnefOf(t, "../../shared/corpus/mime/mimekit/tnef/ukr.eml")
	r := NewLocal(Options{}).Extract(context.Background(), Input{Data: data, Name: "winmail.dat", ContentType: "application/ms-tnef"})
	if r.Format != TNEF || r.Reason != "" {
		t.Fatalf("Extract(winmail.dat) = %v", r)
	}
	for _, w := range []string{"шостий", "RR Test 1"} {
		if !strings.Contains(r.Text, w) {
			t.Errorf("TNEF text lacks %q: %q", w, r.Text)
		}
	}
}

// TestTNEFBuilt checks the parts of TNEF real samples lack: attachments,
// with a document inside, and a compressed-RTF body.
func TestTNEFBuilt(t *testing.T) {
	t.Parallel()
	docx := readTestdata(t, "corpus/sample.docx")
	rtf := []byte(`{\rtf1\ansi\ansicpg1252 Hello \'fcber compressed world\par}`)
	data := buildTNEF(rtf, "Vertrag.docx", docx)
	r := NewLocal(Options{}).Extract(context.Background(), Input{Data: data, Name: "winmail.dat"})
	if r.Format != TNEF || r.Reason != "" {
		t.Fatalf("Extract = %v", r)
	}
	for _, w := range []string{"Hello über compressed world", "Vertrag.docx", "sealdocx"} {
		if !strings.Contains(r.Text, w) {
			t.Errorf("TNEF text lacks %q: %q", w, r.Text)
		}
	}
}

// buildTNEF writes a TNEF stream (MS-OXTNEF) with an uncompressed ("MELA")
// PR_RTF_COMPRESSED body and one attachment.
func buildTNEF(rtf []byte, name string, data []byte) []byte {
	var b bytes.Buffer
	le := func(v any) {
		switch v := v.(type) {
		case uint16:
			b.Write([]byte{byte(v), byte(v >> 8)})
		case uint32:
			b.Write([]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
		}
	}
	attr := func(level byte, id uint32, d []byte) {
		b.WriteByte(level)
		le(id)
		le(uint32(len(d)))
		b.Write(d)
		var sum uint16
		for _, c := range d {
			sum += uint16(c)
		}
		le(sum)
	}
	le(uint32(0x223e9f78))
	le(uint16(1))
	// MAPI properties: one PT_BINARY PR_RTF_COMPRESSED.
	var props bytes.Buffer
	w32 := func(v uint32) { props.Write([]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}) }
	comp := append(make([]byte, 16), rtf...)
	copy(comp[0:], []byte{byte(len(rtf) + 12), 0, 0, 0})
	copy(comp[4:], []byte{byte(len(rtf)), 0, 0, 0})
	copy(comp[8:], []byte("MELA"))
	w32(1)
	props.Write([]byte{0x02, 0x01, 0x09, 0x10}) // PT_BINARY, 0x1009
	w32(1)
	w32(uint32(len(comp)))
	props.Write(comp)
	props.Write(make([]byte, pad4(len(comp))-len(comp)))
	attr(1, 0x00069003, props.Bytes())
	attr(2, 0x00069002, []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0})
	attr(2, 0x00018010, append([]byte(name), 0))
	attr(2, 0x0006800f, data)
	return b.Bytes()
}

// TestDetect checks that magic bytes win over declarations, and that a
// name or type alone is not enough for a binary format.
func TestDetect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data     string
		ct, name string
		want     Format
	}{
		{"%PDF-1.7\n", "", "invoice.doc", PDF},
		{"\x89PNG\r\n\x1a\n", "application/ms-tnef", "winmail.dat", ""},
		{"PK\x03\x04rest", "", "a.docx", DOCX},
		{"PK\x03\x04rest", "", "a.bin", ZIP},
		{`{\rtf1 x}`, "", "", RTF},
		{"plain words", "", "notes.txt", Text},
		{"plain words", "application/pdf", "x.pdf", ""},
		{"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/vnd.ms-excel", "", XLS},
	}
	for _, tt := range tests {
		if got := Detect([]byte(tt.data), tt.ct, tt.name); got != tt.want {
			t.Errorf("Detect(%q, %q, %q) = %q, want %q", tt.data, tt.ct, tt.name, got, tt.want)
		}
	}
}

// TestHostile runs the hostile inputs in-process: each is bounded and
// reported, in bounded time.
func TestHostile(t *testing.T) {
	t.Parallel()
	needTool(t, "pdftotext", "poppler-utils")
	tests := []struct {
		name   string
		data   func(t *testing.T) []byte
		opts   Options
		reason Reason
		trunc  bool
	}{
		{name: "zip bomb", data: file("hostile/bomb.zip"), reason: ReasonLimit},
		{name: "nested archives", data: file("hostile/deep.zip"), reason: ReasonLimit},
		{name: "pdf page tree loop", data: file("hostile/loop.pdf"), reason: ""},
		{name: "pdf too slow", data: file("hostile/huge.pdf"), opts: Options{Timeout: 2 * time.Second}, reason: ReasonTimeout},
		{name: "xlsx shared strings bomb", data: sharedStringsBomb, reason: "", trunc: true},
		{name: "truncated docx", data: func(t *testing.T) []byte { return readTestdata(t, "corpus/sample.docx")[:2000] }, reason: ReasonMalformed},
		{name: "garbage after PDF magic", data: func(*testing.T) []byte { return []byte("%PDF-1.4\n" + strings.Repeat("garbage ", 1000)) }, reason: ReasonMalformed},
		{name: "deep RTF groups", data: func(*testing.T) []byte {
			return []byte(`{\rtf1 sealrtfdeep` + strings.Repeat("{", 200000) + "x" + strings.Repeat("}", 200000) + "}")
		}, reason: ""},
		{name: "encrypted zip member", data: encryptedZip, reason: ReasonEncrypted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data(t)
			begin := time.Now()
			r := NewLocal(tt.opts).Extract(context.Background(), Input{Data: data, Name: "hostile"})
			if r.Reason != tt.reason || r.Truncated != tt.trunc {
				t.Errorf("Extract = %v, want reason %q truncated %v", r, tt.reason, tt.trunc)
			}
			if len(r.Text) > DefaultMaxTextBytes {
				t.Errorf("text %d bytes, bound %d", len(r.Text), DefaultMaxTextBytes)
			}
			t.Logf("%v in %v", r, time.Since(begin).Round(time.Millisecond))
		})
	}
}

func file(rel string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte { return readTestdata(t, rel) }
}

// sharedStringsBomb is an XLSX whose sheet refers to one 64 KiB shared
// string 200,000 times (12 GiB if expanded), and whose shared strings part
// holds 5 MiB of other strings: the text is the strings once, cut at the
// text bound, never the expansion.
func sharedStringsBomb(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, fill func(w io.Writer)) {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		fill(w)
	}
	add("[Content_Types].xml", func(w io.Writer) { io.WriteString(w, `<Types/>`) })
	add("xl/workbook.xml", func(w io.Writer) { io.WriteString(w, `<workbook><sheets><sheet name="bomb"/></sheets></workbook>`) })
	add("xl/sharedStrings.xml", func(w io.Writer) {
		io.WriteString(w, `<sst><si><t>`+strings.Repeat("a", 64<<10)+`</t></si>`)
		for i := range 500000 {
			fmt.Fprintf(w, "<si><t>word%d</t></si>", i)
		}
		io.WriteString(w, `</sst>`)
	})
	add("xl/worksheets/sheet1.xml", func(w io.Writer) {
		io.WriteString(w, `<worksheet><sheetData><row>`)
		for range 200000 {
			io.WriteString(w, `<c t="s"><v>0</v></c>`)
		}
		io.WriteString(w, `</row></sheetData></worksheet>`)
	})
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// encryptedZip is a ZIP whose one member has the encryption flag set.
func encryptedZip(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "secret.txt", Method: zip.Store, Flags: 0x1})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("ciphertext"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
