// SPDX-License-Identifier: Apache-2.0

package pst

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sealmail/sealmail/mimepart"
)

// readAllPST reads every message of a PST: mail, and the errors of the rest.
func readAllPST(t *testing.T, r *Reader) ([]*Message, []error) {
	t.Helper()
	var msgs []*Message
	var errs []error
	for range r.Count() + 1 {
		m, err := r.Next()
		if err == io.EOF {
			return msgs, errs
		}
		var me *MessageError
		if !errors.As(err, &me) && err != nil {
			t.Fatalf("Next: %v", err)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		msgs = append(msgs, m)
	}
	t.Fatal("Next does not end")
	return nil, nil
}

// leafParts walks a MIME message: the SHA-256 of every decoded attachment
// (not message/rfc822) and the embedded messages.
func leafParts(t *testing.T, raw []byte, depth int) (attachments []string, embedded [][]byte) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("rebuilt message does not parse: %v", err)
	}
	var walk func(h map[string][]string, body io.Reader)
	walk = func(h map[string][]string, body io.Reader) {
		ct := ""
		if v := h["Content-Type"]; len(v) > 0 {
			ct = v[0]
		}
		mt, params, _ := mime.ParseMediaType(ct)
		switch {
		case strings.HasPrefix(mt, "multipart/"):
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatalf("multipart: %v", err)
				}
				walk(p.Header, p)
			}
		case mt == "message/rfc822":
			b, _ := io.ReadAll(body)
			embedded = append(embedded, b)
		default:
			if d := h["Content-Disposition"]; len(d) > 0 && strings.HasPrefix(d[0], "attachment") {
				b, err := io.ReadAll(body)
				if err != nil {
					t.Fatal(err)
				}
				if enc := h["Content-Transfer-Encoding"]; len(enc) > 0 && strings.EqualFold(enc[0], "base64") {
					b, err = decodeBase64(b)
					if err != nil {
						t.Fatalf("attachment base64: %v", err)
					}
				}
				sum := sha256.Sum256(b)
				attachments = append(attachments, hex.EncodeToString(sum[:]))
			}
		}
	}
	walk(m.Header, m.Body)
	return attachments, embedded
}

func decodeBase64(b []byte) ([]byte, error) {
	s := strings.Join(strings.Fields(string(b)), "")
	return io.ReadAll(base64Decoder(s))
}

func subjectOf(t *testing.T, raw []byte) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	// The writer decodes subjects with mimepart (lenient: raw 8-bit inside
	// an encoded word, as some clients send it); compare alike.
	s, _ := mimepart.DecodeWords(m.Header.Get("Subject"))
	return s
}

// readpstSubjects runs readpst and returns the subjects of the .eml files
// it writes (mail only: contacts and appointments become .vcf and .ics).
func readpstSubjects(t *testing.T, file string) []string {
	t.Helper()
	readpst := requireTool(t, "readpst", "pst-utils")
	out := t.TempDir()
	run(t, readpst, "-q", "-D", "-e", "-b", "-8", "-o", out, file)
	var subjects []string
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".eml") {
			b, _ := os.ReadFile(p)
			subjects = append(subjects, subjectOf(t, b))
		}
		return nil
	})
	slices.Sort(subjects)
	return subjects
}

// pffexportSubjects runs pffexport and returns the subjects of the
// messages it exports (OutlookHeaders.txt of each top-level message; not
// those of embedded messages).
func pffexportSubjects(t *testing.T, file string) []string {
	t.Helper()
	pffexport := requireTool(t, "pffexport", "pff-tools")
	out := t.TempDir()
	run(t, pffexport, "-q", "-t", filepath.Join(out, "x"), file)
	var subjects []string
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "OutlookHeaders.txt" || strings.Contains(p, "/Attachments/") {
			return nil
		}
		b, _ := os.ReadFile(p)
		subject := ""
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Subject:"); ok {
				subject = strings.TrimSpace(v)
			}
		}
		subjects = append(subjects, subject)
		return nil
	})
	slices.Sort(subjects)
	return subjects
}

// pffexportAttachments runs pffexport and returns the SHA-256 of every
// file it writes as a message's attachment (directly in an Attachments
// directory; embedded messages are directories).
func pffexportAttachments(t *testing.T, file string) []string {
	t.Helper()
	pffexport := requireTool(t, "pffexport", "pff-tools")
	out := t.TempDir()
	run(t, pffexport, "-q", "-t", filepath.Join(out, "x"), file)
	var sums []string
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && filepath.Base(filepath.Dir(p)) == "Attachments" {
			b, _ := os.ReadFile(p)
			s := sha256.Sum256(b)
			sums = append(sums, hex.EncodeToString(s[:]))
		}
		return nil
	})
	slices.Sort(sums)
	return sums
}

// TestReadCorpus reads every PST of the corpus (Unicode and ANSI, Outlook
// and third-party writers): the mail messages, their subjects and
// attachments' SHA-256 agree with readpst and pffexport; the embedded
// message is rebuilt as message/rfc822; non-mail items are refused as such.
func TestReadCorpus(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join(corpusDir, "pst", "*.pst"))
	if len(files) != 6 {
		t.Fatalf("%d corpus PSTs, want 6", len(files))
	}
	want := map[string]struct {
		folder   string
		notMail  int
		embedded int
	}{
		"aspose-written-sample-unicode.pst": {"myInbox", 0, 0},
		"java-libpst-dist-list-unicode.pst": {"", 4, 0},
		"outlook-empty-unicode.pst":         {"", 0, 0},
		"pstsdk-sample1-unicode.pst":        {"Sample1", 0, 0},
		"pstsdk-sample2-ansi.pst":           {"Sample2", 0, 0},
		"pstsdk-submessage-unicode.pst":     {"submessage", 0, 1},
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			r, err := Open(f, ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			msgs, errs := readAllPST(t, r)
			w := want[name]
			if len(errs) != w.notMail {
				t.Errorf("%d refused (%v), want %d non-mail items", len(errs), errs, w.notMail)
			}
			for _, err := range errs {
				if !errors.Is(err, ErrNotMail) {
					t.Errorf("refused for another reason: %v", err)
				}
			}
			var subjects, sums []string
			embedded := 0
			for _, m := range msgs {
				if m.Folder != w.folder {
					t.Errorf("folder %q, want %q", m.Folder, w.folder)
				}
				subjects = append(subjects, subjectOf(t, m.Raw))
				a, e := leafParts(t, m.Raw, 0)
				sums = append(sums, a...)
				embedded += len(e)
				for _, inner := range e {
					if subjectOf(t, inner) == "" {
						t.Errorf("embedded message without a subject:\n%s", inner)
					}
					ia, _ := leafParts(t, inner, 1)
					sums = append(sums, ia...)
				}
			}
			slices.Sort(subjects)
			slices.Sort(sums)
			if rs := readpstSubjects(t, f); fmt.Sprint(subjects) != fmt.Sprint(rs) {
				t.Errorf("subjects %q, readpst %q", subjects, rs)
			}
			if ps := pffexportAttachments(t, f); fmt.Sprint(sums) != fmt.Sprint(ps) {
				t.Errorf("attachment SHA-256 %v, pffexport %v", sums, ps)
			}
			if embedded != w.embedded {
				t.Errorf("%d embedded messages, want %d", embedded, w.embedded)
			}
			// Rebuilding is deterministic: a re-run of an import finds the
			// same bytes.
			r2, _ := Open(f, ReadOptions{})
			defer r2.Close()
			again, _ := readAllPST(t, r2)
			for i := range again {
				if !bytes.Equal(again[i].Raw, msgs[i].Raw) {
					t.Errorf("message %d rebuilt differently the second time", i)
				}
			}
		})
	}
}

// TestReadOwnPST writes messages with attachments into a PST with our
// writer and reads them back: count, subjects, attachments' SHA-256.
func TestReadOwnPST(t *testing.T) {
	t.Parallel()
	raws := corpusMessages(t, 40)
	path := filepath.Join(t.TempDir(), "own.pst")
	w, err := CreateFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	folder, err := w.Folder(RootFolder, "Imported")
	if err != nil {
		t.Fatal(err)
	}
	var wantSums []string
	for _, p := range raws {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddMessage(folder, raw, nil); err != nil {
			t.Fatalf("AddMessage %s: %v", p, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wantSums = pffexportAttachments(t, path)
	// pffexport, not readpst: readpst drops a message of these files now
	// and then (2 runs in 8 here), pffexport does not.
	wantSubjects := pffexportSubjects(t, path)
	for i, s := range wantSubjects {
		wantSubjects[i] = strings.Join(strings.Fields(s), " ")
	}
	r, err := Open(path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	msgs, errs := readAllPST(t, r)
	if len(errs) != 0 || len(msgs) != len(raws) {
		t.Fatalf("read %d messages and %v, wrote %d", len(msgs), errs, len(raws))
	}
	var subjects, sums []string
	for _, m := range msgs {
		if m.Folder != "Imported" {
			t.Errorf("folder %q", m.Folder)
		}
		subjects = append(subjects, strings.Join(strings.Fields(subjectOf(t, m.Raw)), " "))
		a, _ := leafParts(t, m.Raw, 0)
		sums = append(sums, a...)
	}
	slices.Sort(subjects)
	slices.Sort(wantSubjects)
	slices.Sort(sums)
	if fmt.Sprint(subjects) != fmt.Sprint(wantSubjects) {
		t.Errorf("subjects\n got %q\nwant %q", subjects, wantSubjects)
	}
	if len(wantSums) == 0 {
		t.Fatal("the sample holds no attachments: the comparison would prove nothing")
	}
	if fmt.Sprint(sums) != fmt.Sprint(wantSums) {
		t.Errorf("attachment SHA-256\n got %v\nwant (pffexport) %v", sums, wantSums)
	}
}

// TestPermuteDecodeTable recovers the decoding table from the corpus again
// and compares it with the reader's.
func TestPermuteDecodeTable(t *testing.T) {
	if got := permuteTable(t); *got != permuteDecode {
		t.Fatal("permuteDecode differs from the table recovered from the corpus")
	}
}

// TestReadRejects checks clear errors for files that are not PSTs.
func TestReadRejects(t *testing.T) {
	t.Parallel()
	for _, b := range [][]byte{nil, []byte("not a pst"), bytes.Repeat([]byte("!BDN"), 200)} {
		if _, err := NewReader(bytes.NewReader(b), int64(len(b)), ReadOptions{}); !errors.Is(err, ErrNotPST) {
			t.Errorf("NewReader(%q...) = %v, want ErrNotPST", b[:min(len(b), 8)], err)
		}
	}
}

// FuzzReader damages the corpus PSTs (Unicode, ANSI, embedded message) at
// fuzzed places: the reader must return errors, never panic, hang or read
// without bound. The files stay outside the fuzzed input so that mutations
// are cheap; the input says which file, where and how.
func FuzzReader(f *testing.F) {
	var files [][]byte
	for _, name := range []string{"pstsdk-sample1-unicode.pst", "pstsdk-sample2-ansi.pst", "pstsdk-submessage-unicode.pst"} {
		b, err := os.ReadFile(filepath.Join(corpusDir, "pst", name))
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, b)
	}
	f.Add(byte(0), uint32(0xE0), byte(1), uint32(0), byte(0), []byte(nil))
	f.Add(byte(1), uint32(0xBC), byte(0x40), uint32(0x4400), byte(1), []byte{0xff, 0})
	f.Add(byte(2), uint32(0x4600), byte(0x80), uint32(0x4700), byte(2), []byte("!BDN"))
	f.Fuzz(func(t *testing.T, which byte, off1 uint32, x1 byte, off2 uint32, x2 byte, patch []byte) {
		b := bytes.Clone(files[int(which)%len(files)])
		b[int(off1)%len(b)] ^= x1
		b[int(off2)%len(b)] ^= x2
		copy(b[int(off2^off1)%len(b):], patch)
		r, err := NewReader(bytes.NewReader(b), int64(len(b)), ReadOptions{MaxMessageBytes: 4 << 20})
		if err != nil {
			return
		}
		for range r.Count() + 1 {
			if _, err := r.Next(); err == io.EOF {
				return
			}
		}
		t.Fatal("Next does not end")
	})
}

func base64Decoder(s string) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, strings.NewReader(s))
}
