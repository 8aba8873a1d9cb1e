// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/extract"
)

// TestMain lets the test binary be the extraction sandbox's child, as
// sealmail's hidden subcommand is.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "extract-child" {
		os.Exit(extract.ServeChild(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

const docCorpus = "../extract/testdata"

// withAttachments returns a message with a text body and one base64
// attachment per file (name, type, bytes).
func withAttachments(subject string, atts ...[3]string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: a@example.com\r\nTo: b@example.com\r\nSubject: %s\r\nMIME-Version: 1.0\r\n", subject)
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nPlease see attached.\r\n")
	for _, a := range atts {
		fmt.Fprintf(&b, "--b\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", a[1], a[0], a[0])
		enc := base64.StdEncoding.EncodeToString([]byte(a[2]))
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--b--\r\n")
	return []byte(b.String())
}

func docFile(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(docCorpus, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func needDocTools(t testing.TB) {
	t.Helper()
	needTool(t, "pdftotext", "poppler-utils")
	needTool(t, "catdoc", "catdoc")
	needTool(t, "xls2csv", "catdoc")
}

// TestAttachmentText: the words of every document format are found by
// bare words and by attachment:, and the hit names the attachment whose
// text (or name) matched, and only that one.
func TestAttachmentText(t *testing.T) {
	t.Parallel()
	needDocTools(t)
	x, err := Open(t.TempDir(), Options{Extractor: extract.NewLocal(extract.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	formats := []struct{ file, name, ct string }{
		{"sample.pdf", "Rechnung 2024.pdf", "application/pdf"},
		{"sample.docx", "contract.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"sample.xlsx", "ledger.xlsx", "application/octet-stream"},
		{"sample.pptx", "board.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
		{"sample.odt", "letter.odt", "application/vnd.oasis.opendocument.text"},
		{"sample.ods", "sheet.ods", "application/vnd.oasis.opendocument.spreadsheet"},
		{"sample.odp", "slides.odp", "application/vnd.oasis.opendocument.presentation"},
		{"sample.doc", "old.doc", "application/msword"},
		{"sample.xls", "old.xls", "application/vnd.ms-excel"},
		{"sample.rtf", "memo.rtf", "application/rtf"},
		{"sample.zip", "bundle.zip", "application/zip"},
	}
	var atts [][3]string
	for _, f := range formats {
		atts = append(atts, [3]string{f.name, f.ct, docFile(t, "corpus/"+f.file)})
	}
	ctx := context.Background()
	docs := []Doc{
		{ID: 1, Raw: withAttachments("all formats", atts...)},
		{ID: 2, Raw: withAttachments("only a picture", [3]string{"photo.png", "image/png", "\x89PNG\r\n\x1a\nnot text"})},
	}
	if err := x.Add(ctx, docs); err != nil {
		t.Fatal(err)
	}
	for _, f := range formats {
		word := "seal" + strings.TrimPrefix(filepath.Ext(f.file), ".")
		for _, q := range []string{word, "attachment:" + word} {
			res, err := x.Search(ctx, q, SearchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != 1 || res.Hits[0].ID != 1 {
				t.Errorf("Search(%q) = %+v, want message 1", q, res)
				continue
			}
			var matched []string
			for _, a := range res.Hits[0].Attachments {
				if a.Matched {
					matched = append(matched, a.Name)
				}
			}
			want := []string{f.name}
			if word == "sealdocx" {
				want = []string{"contract.docx", "bundle.zip"} // the ZIP holds a copy
			}
			if !slices.Equal(matched, want) {
				t.Errorf("Search(%q): matched attachments %q, want %q", q, matched, want)
			}
		}
	}
	for q, want := range map[string][]sealmail.MessageID{
		"Überweisung":                   {1},
		`attachment:"Zanzibar freight"`: {1},
		"filename:rechnung":             {1},
		"body:sealpdf":                  nil, // attachment text is not the body
		"flag:unextracted":              nil,
		"has:attachment":                {1, 2},
	} {
		if got := ids(t, x, q); !slices.Equal(got, want) {
			t.Errorf("IDs(%q) = %v, want %v", q, got, want)
		}
	}
	res, err := x.Search(ctx, "filename:rechnung", SearchOptions{})
	if err != nil || len(res.Hits) != 1 {
		t.Fatalf("Search(filename:rechnung) = %v, %v", res, err)
	}
	for _, a := range res.Hits[0].Attachments {
		if a.Matched != (a.Name == "Rechnung 2024.pdf") {
			t.Errorf("filename:rechnung: attachment %q matched=%v", a.Name, a.Matched)
		}
	}
	if st := x.ExtractStats(); st.Attachments != int64(len(formats)) || st.Unextracted != 0 || st.Time <= 0 {
		t.Errorf("ExtractStats = %+v, want %d attachments, none unextracted", st, len(formats))
	}
}

// TestAttachmentTNEF indexes a real Outlook message whose winmail.dat
// carries the only copy of the text (MimeKit's ukr.eml, MIT).
func TestAttachmentTNEF(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(corpusDir, "mimekit/tnef/ukr.eml"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := Open(t.TempDir(), Options{Extractor: extract.NewLocal(extract.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	ctx := context.Background()
	if err := x.Add(ctx, []Doc{{ID: 7, Raw: raw}}); err != nil {
		t.Fatal(err)
	}
	res, err := x.Search(ctx, "шостий", SearchOptions{})
	if err != nil || res.Total != 1 {
		t.Fatalf("Search(шостий) = %+v, %v", res, err)
	}
	if a := res.Hits[0].Attachments; len(a) != 1 || a[0].Name != "winmail.dat" || !a[0].Matched {
		t.Errorf("hit attachments %+v, want winmail.dat matched", a)
	}
}

// TestUnextracted: an attachment the sandbox gives up on is marked, and
// searchable as such, with its reason; the rest of the batch is indexed.
func TestUnextracted(t *testing.T) {
	t.Parallel()
	needDocTools(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A tiny unpacked bound, so that the bomb stops at its limit long before
	// the timeout even on a loaded machine under the race detector, while
	// huge.pdf keeps pdftotext busy for well over the timeout (about 20 s).
	sb, err := extract.NewSandbox(extract.Options{Command: []string{exe, "extract-child"}, Timeout: 6 * time.Second,
		Limits: extract.Limits{MaxUnpackedBytes: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	x, err := Open(t.TempDir(), Options{Extractor: sb})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	ctx := context.Background()
	docs := []Doc{
		{ID: 1, Raw: withAttachments("slow", [3]string{"huge.pdf", "application/pdf", docFile(t, "hostile/huge.pdf")})},
		{ID: 2, Raw: withAttachments("bomb", [3]string{"bomb.zip", "application/zip", docFile(t, "hostile/bomb.zip")})},
		{ID: 3, Raw: withAttachments("fine", [3]string{"fine.pdf", "application/pdf", docFile(t, "corpus/sample.pdf")})},
		{ID: 4, Raw: withAttachments("broken", [3]string{"broken.docx", "application/octet-stream", docFile(t, "corpus/sample.docx")[:1500]})},
	}
	if err := x.Add(ctx, docs); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string][]sealmail.MessageID{
		"flag:unextracted":           {1, 2, 4},
		"flag:unextracted-timeout":   {1},
		"flag:unextracted-limit":     {2},
		"flag:unextracted-malformed": {4},
		"sealpdf":                    {3},
		"-flag:unextracted":          {3},
	} {
		if got := ids(t, x, q); !slices.Equal(got, want) {
			t.Errorf("IDs(%q) = %v, want %v", q, got, want)
		}
	}
	res, err := x.Search(ctx, "flag:unextracted-timeout", SearchOptions{})
	if err != nil || len(res.Hits) != 1 {
		t.Fatalf("Search = %+v, %v", res, err)
	}
	if a := res.Hits[0].Attachments; len(a) != 1 || a[0].Reason != extract.ReasonTimeout || a[0].Name != "huge.pdf" {
		t.Errorf("hit attachments %+v, want huge.pdf with reason timeout", a)
	}
}

// TestBloom: every word of a text is in its filter; few others are.
func TestBloom(t *testing.T) {
	t.Parallel()
	var words []string
	for i := range 5000 {
		words = append(words, fmt.Sprintf("w%d", i))
	}
	b := bloomOf(strings.Join(words, " "))
	for _, w := range words {
		if !bloomHas(b, w) {
			t.Fatalf("bloom lacks %q", w)
		}
	}
	fp := 0
	for i := range 10000 {
		if bloomHas(b, fmt.Sprintf("other%d", i)) {
			fp++
		}
	}
	if fp > 300 { // 3%: the design rate is about 1%
		t.Errorf("%d false positives in 10000", fp)
	}
	if bloomHas(nil, "x") || bloomOf(" ,. ") != nil {
		t.Error("an empty text has words")
	}
}
