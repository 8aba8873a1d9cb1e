// SPDX-License-Identifier: Apache-2.0

package pst

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sealmail/sealmail"
)

// memFile is an in-memory io.WriteSeeker and io.ReaderAt.
type memFile struct {
	b   []byte
	off int64
}

func (m *memFile) Write(p []byte) (int, error) {
	if need := m.off + int64(len(p)); need > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, need-int64(len(m.b)))...)
	}
	copy(m.b[m.off:], p)
	m.off += int64(len(p))
	return len(p), nil
}

func (m *memFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		m.off = off
	case io.SeekCurrent:
		m.off += off
	case io.SeekEnd:
		m.off = int64(len(m.b)) + off
	}
	return m.off, nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func TestCRCAgainstOutlook(t *testing.T) {
	for _, name := range []string{"outlook-empty-unicode.pst", "pstsdk-sample1-unicode.pst"} {
		h := make([]byte, 564)
		f, err := os.Open(filepath.Join(corpusDir, "pst", name))
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadFull(f, h)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := crc(h[8:8+471]), binary.LittleEndian.Uint32(h[4:]); got != want {
			t.Errorf("crc(%s partial header) = %#x, want %#x", name, got, want)
		}
		if got, want := crc(h[8:8+516]), binary.LittleEndian.Uint32(h[0x20C:]); got != want {
			t.Errorf("crc(%s full header) = %#x, want %#x", name, got, want)
		}
	}
}

func TestSig(t *testing.T) {
	tests := []struct {
		ib, bid uint64
		want    uint16
	}{
		{0x4200, 0x17f, 0x437f}, // Outlook's density list
		{0x9200, 0x17d, 0x937d}, // Outlook's NBT root
		{0, 0, 0},
	}
	for _, tc := range tests {
		if got := sig(tc.ib, tc.bid); got != tc.want {
			t.Errorf("sig(%#x, %#x) = %#x, want %#x", tc.ib, tc.bid, got, tc.want)
		}
	}
}

func TestIntervalPages(t *testing.T) {
	tests := []struct {
		i                 int64
		n                 int
		pmap, fmap, fpmap bool
	}{
		{0, 2, true, false, false},
		{1, 1, false, false, false},
		{8, 2, true, false, false},
		{128, 3, true, true, false},
		{624, 3, true, true, false},
		{625, 1, false, false, false},
		{8192, 3, true, false, true},
		{8192 + 31744, 3, true, false, true},
	}
	for _, tc := range tests {
		n, p, f, fp := intervalPages(tc.i)
		if n != tc.n || p != tc.pmap || f != tc.fmap || fp != tc.fpmap {
			t.Errorf("intervalPages(%d) = %d %v %v %v, want %d %v %v %v", tc.i, n, p, f, fp, tc.n, tc.pmap, tc.fmap, tc.fpmap)
		}
	}
}

func TestFillLevel(t *testing.T) {
	tests := []struct {
		free int
		want byte
	}{{8176, 0}, {3584, 0}, {3583, 1}, {2560, 1}, {1000, 7}, {64, 11}, {8, 14}, {7, 15}, {0, 15}}
	for _, tc := range tests {
		if got := fillLevel(tc.free); got != tc.want {
			t.Errorf("fillLevel(%d) = %d, want %d", tc.free, got, tc.want)
		}
	}
}

func TestTCLayout(t *testing.T) {
	cols, rgib := tcLayout([]uint32{tagSubject, tagMessageFlags, tagDeliveryTime, tagSubfolders, 0x00170002})
	want := []struct {
		tag uint32
		ib  int
	}{{tagRowID, 0}, {tagRowVer, 4}, {tagDeliveryTime, 8}, {tagSubject, 16}, {tagMessageFlags, 20}, {0x00170002, 24}, {tagSubfolders, 26}}
	if len(cols) != len(want) {
		t.Fatalf("tcLayout: %d columns, want %d", len(cols), len(want))
	}
	for i, w := range want {
		if cols[i].tag != w.tag || cols[i].ib != w.ib || cols[i].iBit != i {
			t.Errorf("tcLayout column %d = %#x@%d bit %d, want %#x@%d bit %d", i, cols[i].tag, cols[i].ib, cols[i].iBit, w.tag, w.ib, i)
		}
	}
	if rgib != [4]int{24, 26, 27, 28} {
		t.Errorf("tcLayout rgib = %v, want [24 26 27 28]", rgib)
	}
}

func TestHeap(t *testing.T) {
	h := &heap{clientSig: sigPC}
	if _, err := h.alloc(make([]byte, maxHeapAlloc+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("alloc(3581 bytes) error = %v, want ErrTooLarge", err)
	}
	var hids []uint32
	var vals [][]byte
	for i := range 300 {
		v := bytes.Repeat([]byte{byte(i)}, 1+i*7%500)
		hid, err := h.alloc(v)
		if err != nil {
			t.Fatal(err)
		}
		hids, vals = append(hids, hid), append(vals, v)
	}
	pages := h.chunks()
	if len(pages) < 10 {
		t.Fatalf("heap has %d pages, want at least 10 (page 8 carries an HNBITMAPHDR)", len(pages))
	}
	c := newChecker(nil, 0)
	for i, hid := range hids {
		if got := c.heapAlloc(pages, hid); !bytes.Equal(got, vals[i]) {
			t.Errorf("heapAlloc(%#x) = %d bytes, want %d", hid, len(got), len(vals[i]))
		}
	}
	for i, p := range pages {
		if len(p) > maxBlockData {
			t.Errorf("page %d is %d bytes", i, len(p))
		}
	}
	if len(c.errs) > 0 {
		t.Error(c.errs)
	}
}

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name, raw               string
		subject, from, text     string
		atts                    int
		firstAtt, firstAttBytes string
	}{
		{"plain", "From: A <a@x.org>\r\nSubject: hi\r\n\r\nbody\r\n", "hi", "a@x.org", "body\r\n", 0, "", ""},
		{"latin1 body", "Subject: =?iso-8859-1?q?Gr=FC=DFe?=\nContent-Type: text/plain; charset=iso-8859-1\n\nGr\xfc\xdfe\n", "Grüße", "", "Grüße\n", 0, "", ""},
		{"iso-2022-jp", "Subject: =?ISO-2022-JP?B?GyRCJF4kXyRgJGEkYhsoQg==?=\n\nx", "まみむめも", "", "x", 0, "", ""},
		{"undeclared 8bit", "Subject: Caf\xe9\n\nna\xefve", "Café", "", "naïve", 0, "", ""},
		{"no header", "just text", "", "", "just text", 0, "", ""},
		{"garbage header", ":::\nSubject ok\n\x00\x01\n\nbody", "", "", "body", 0, "", ""},
		{"path in filename", "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nt\n--b\nContent-Type: application/pdf; name=\"../../etc/passwd\"\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n--b--\n",
			"", "", "t", 1, "passwd", "hello"},
		{"unterminated multipart", "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nfirst\n--b\nContent-Disposition: attachment; filename=x.txt\n\ncut off",
			"", "", "first", 1, "x.txt", "cut off"},
		{"rfc2231 latin1 filename", "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Disposition: attachment;\n filename*=iso-8859-1''Gr%FC%DFe.txt\n\nx\n--b--\n",
			"", "", "", 1, "Grüße.txt", "x"},
		{"rfc2231 continuation", "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; name*0*=utf-8''%E6%97%A5; name*1=\".txt\"\n\nx\n--b--\n",
			"", "", "", 1, "日.txt", "x"},
		{"bad base64", "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Disposition: attachment; filename=a\nContent-Transfer-Encoding: base64\n\naGVs!!bG8=\n--b--",
			"", "", "", 1, "a", "hello"},
	}
	for _, tc := range tests {
		m := parseMessage([]byte(tc.raw))
		from := ""
		if m.from != nil {
			from = m.from.email
		}
		if m.subject != tc.subject || from != tc.from || m.text != tc.text || len(m.atts) != tc.atts {
			t.Errorf("parseMessage(%s) = subject %q from %q text %q atts %d, want %q %q %q %d",
				tc.name, m.subject, from, m.text, len(m.atts), tc.subject, tc.from, tc.text, tc.atts)
			continue
		}
		if tc.atts > 0 && (m.atts[0].filename != tc.firstAtt || string(m.atts[0].data) != tc.firstAttBytes) {
			t.Errorf("parseMessage(%s) attachment = %q %q, want %q %q", tc.name, m.atts[0].filename, m.atts[0].data, tc.firstAtt, tc.firstAttBytes)
		}
	}
}

func TestParseAttachedMessage(t *testing.T) {
	raw := "Subject: outer\nContent-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: text/plain\n\nouter body\n--o\n" +
		"Content-Type: message/rfc822\n\nSubject: inner\nContent-Type: multipart/mixed; boundary=i\n\n--i\nContent-Type: text/plain\n\ninner body\n--i\n" +
		"Content-Disposition: attachment; filename=in.bin\n\nDATA\n--i--\n--o--\n"
	m := parseMessage([]byte(raw))
	if len(m.atts) != 1 || m.atts[0].msg == nil {
		t.Fatalf("parseMessage: %d attachments, want 1 attached message", len(m.atts))
	}
	in := m.atts[0].msg
	if in.subject != "inner" || in.text != "inner body" || len(in.atts) != 1 || string(in.atts[0].data) != "DATA" {
		t.Errorf("attached message = %q %q %d, want inner, inner body, 1 attachment", in.subject, in.text, len(in.atts))
	}
}

func TestRecipientsFromEnvelope(t *testing.T) {
	m := parseMessage([]byte("To: A <a@x.org>\nCc: b@x.org\n\n"))
	env := &sealmail.Envelope{Recipients: []sealmail.Recipient{
		{Address: "A@x.org", Kind: sealmail.RcptTo},       // already in To
		{Address: "hidden@x.org", Kind: sealmail.RcptBcc}, // Bcc
		{Address: "list@x.org", Kind: sealmail.RcptUnknown},
		{Address: "cc2@x.org", Kind: sealmail.RcptCc},
	}}
	got := recipients(m, env)
	want := []recip{{address{"A", "a@x.org"}, 1}, {address{"", "b@x.org"}, 2}, {address{"", "hidden@x.org"}, 3},
		{address{"", "list@x.org"}, 3}, {address{"", "cc2@x.org"}, 2}}
	if len(got) != len(want) {
		t.Fatalf("recipients() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("recipients()[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestWriterErrors(t *testing.T) {
	w, err := Create(&memFile{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Folder(FolderID(0x12345), "x"); err == nil {
		t.Errorf("Folder(unknown parent) = nil error")
	}
	if err := w.AddMessage(FolderID(nidRootFolder), []byte("x"), nil); err == nil {
		t.Errorf("AddMessage(root folder) = nil error")
	}
	if err := w.AddMessage(DeletedItems, []byte("Subject: x\n\ny"), nil); err != nil {
		t.Errorf("AddMessage(DeletedItems) = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close() = %v, want ErrClosed", err)
	}
	if err := w.AddMessage(DeletedItems, nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("AddMessage after Close = %v, want ErrClosed", err)
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte("Subject: hi\n\nbody"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\nSubject: x\n\n--b--"))
	f.Add([]byte("Subject: =?utf-8?q?=E2=98=BA?=\nContent-Type: text/html; charset=koi8-r\nContent-Transfer-Encoding: quoted-printable\n\n=F0=F2"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := parseMessage(raw)
		var check func(m *mailMsg)
		check = func(m *mailMsg) {
			for _, s := range []string{m.subject, m.text, m.rawHeaders, string(m.html)} {
				if !utf8.ValidString(s) {
					t.Fatalf("invalid UTF-8 %q", s)
				}
			}
			for _, a := range m.atts {
				if strings.ContainsAny(a.filename, "/\\") {
					t.Fatalf("filename %q has a path", a.filename)
				}
				if a.msg != nil {
					check(a.msg)
				}
			}
		}
		check(m)
	})
}

// FuzzAddMessage writes each input as a message and requires a structurally
// valid file.
func FuzzAddMessage(f *testing.F) {
	f.Add([]byte("Subject: hi\nTo: a@b.c\n\nbody"))
	f.Add(genMessage(1, "s", strings.Repeat("long body ", 900), map[string][]byte{"a": make([]byte, 9000)}))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\nSubject: x\nContent-Type: multipart/mixed; boundary=c\n\n--c\nContent-Type: message/rfc822\n\n\n--c--\n--b--"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		mf := &memFile{}
		w, err := Create(mf, Options{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddMessage(DeletedItems, raw, nil); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if c := checkPST(mf, int64(len(mf.b))); len(c.errs) > 0 || c.messages != 1 {
			t.Fatalf("check: %v (%d messages)", c.errs, c.messages)
		}
	})
}

// FuzzCheckPST feeds corrupted files to the checker, which must report
// problems and never crash.
func FuzzCheckPST(f *testing.F) {
	mf := &memFile{}
	w, err := Create(mf, Options{TempDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	if err := w.AddMessage(DeletedItems, genMessage(1, "x", "y", map[string][]byte{"a": make([]byte, 10000)}), nil); err != nil {
		f.Fatal(err)
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	good := mf.b
	f.Add(uint32(0x30), []byte{1})
	f.Add(uint32(amapFirst+100), []byte{0xFF, 0})
	f.Add(uint32(binary.LittleEndian.Uint64(good[0xE0:])), []byte{7, 7, 7})
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		b := bytes.Clone(good)
		o := int(off) % len(b)
		copy(b[o:], patch)
		c := newChecker(bytes.NewReader(b), int64(len(b)))
		c.run() // no recover: a crash here is a checker bug
	})
}
