// SPDX-License-Identifier: Apache-2.0

package pst

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// genMessage builds a MIME message with a text body and the given
// attachments (base64).
func genMessage(i int, subject, body string, atts map[string][]byte) []byte {
	var b bytes.Buffer
	est := 2*len(body) + 4096
	for _, a := range atts {
		est += len(a)*140/100 + 512
	}
	b.Grow(est)
	fmt.Fprintf(&b, "From: Sender %d <sender%d@example.com>\r\nTo: Rcpt <rcpt%d@example.org>\r\n", i, i, i)
	fmt.Fprintf(&b, "Subject: =?UTF-8?B?%s?=\r\nDate: Mon, 2 Mar 2026 10:%02d:00 +0100\r\n", base64.StdEncoding.EncodeToString([]byte(subject)), i%60)
	fmt.Fprintf(&b, "Message-ID: <gen-%d@example.com>\r\nMIME-Version: 1.0\r\n", i)
	b.WriteString("Content-Type: multipart/mixed; boundary=\"BOUNDARY\"\r\n\r\n")
	b.WriteString("--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	writeB64(&b, []byte(body))
	names := make([]string, 0, len(atts))
	for n := range atts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "--BOUNDARY\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", n)
		writeB64(&b, atts[n])
	}
	b.WriteString("--BOUNDARY--\r\n")
	return b.Bytes()
}

func writeB64(b *bytes.Buffer, data []byte) {
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(data)))
	base64.StdEncoding.Encode(enc, data)
	for len(enc) > 0 {
		n := min(len(enc), 76)
		b.Write(enc[:n])
		b.WriteString("\r\n")
		enc = enc[n:]
	}
}

func randBytes(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestLargeAttachments crosses the XBLOCK (> 8 KB) and XXBLOCK (> 8 MB, here
// 64 MB) data tree sizes, and the 32 MB FMap boundary of the file.
func TestLargeAttachments(t *testing.T) {
	pffexport := requireTool(t, "pffexport", "pff-tools")
	sizes := map[string]int{"small-9k.bin": 9 * 1024, "medium-3m.bin": 3 << 20, "large-64m.bin": 64<<20 + 12345}
	if raceEnabled {
		// still an XXBLOCK (> 8,347,696 bytes) in a file past 32 MB (FMap)
		delete(sizes, "large-64m.bin")
		sizes["large-33m.bin"] = 33 << 20
	}
	want := map[string]string{}
	out := filepath.Join(t.TempDir(), "large.pst")
	w, err := CreateFile(out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := w.Folder(RootFolder, "Large")
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for name, n := range sizes {
		data := randBytes(uint64(n), n)
		want[name] = hashOf(data)
		raw := genMessage(i, "large "+name, strings.Repeat("body text ", 1000), map[string][]byte{name: data})
		if err := w.AddMessage(f, raw, nil); err != nil {
			t.Fatalf("AddMessage(%s): %v", name, err)
		}
		i++
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 32<<20 || (st.Size()-amapFirst)/intervalSize <= fmapFirst {
		t.Fatalf("file is %d bytes, want more than 128 AMap intervals", st.Size())
	}
	c, err := checkFile(out)
	if err != nil {
		t.Fatalf("structure check: %v", err)
	}
	if c.messages != 3 {
		t.Errorf("checker found %d messages, want 3", c.messages)
	}
	dir := t.TempDir()
	run(t, pffexport, "-q", "-t", filepath.Join(dir, "x"), out)
	got := map[string]string{}
	filepath.WalkDir(filepath.Join(dir, "x.export"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(filepath.Dir(p)) == "Attachments" {
			name := filepath.Base(p)
			name = name[strings.Index(name, "_")+1:]
			got[name] = sha256File(t, p)
		}
		return nil
	})
	for name, h := range want {
		if got[name] != h {
			t.Errorf("pffexport attachment %s: sha256 %q, want %q", name, got[name], h)
		}
	}
}

// TestManyMessages fills one folder beyond one heap page and one row-matrix
// block (and the row index beyond one BTH leaf), with bodies in the heap, in
// a subnode and in a subnode data tree, and creates enough folders for a
// multi-level NBT.
func TestManyMessages(t *testing.T) {
	pffexport := requireTool(t, "pffexport", "pff-tools")
	const n = 700
	out := filepath.Join(t.TempDir(), "many.pst")
	w, err := CreateFile(out, Options{DisplayName: "Many"})
	if err != nil {
		t.Fatal(err)
	}
	big, err := w.Folder(RootFolder, "Big")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := w.Folder(RootFolder, fmt.Sprintf("Empty %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	bodies := map[int]string{}
	for i := range n {
		body := fmt.Sprintf("message %d ", i) + strings.Repeat("Grüße ✓ ", []int{1, 600, 1500}[i%3])
		bodies[i] = body
		subj := fmt.Sprintf("Nachricht %03d – Prüfung 検査", i)
		if err := w.AddMessage(big, genMessage(i, subj, body, nil), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := checkFile(out)
	if err != nil {
		t.Fatalf("structure check: %v", err)
	}
	if got := c.folderCounts[uint32(big)]; got != n {
		t.Errorf("folder count %d, want %d", got, n)
	}
	dir := t.TempDir()
	run(t, pffexport, "-q", "-t", filepath.Join(dir, "x"), out)
	fdir := filepath.Join(dir, "x.export", "Top of Personal Folders", "Big")
	ents, err := os.ReadDir(fdir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != n {
		t.Fatalf("pffexport exported %d messages, want %d", len(ents), n)
	}
	for i, e := range ents {
		if i%37 != 0 {
			continue
		}
		body, err := os.ReadFile(filepath.Join(fdir, e.Name(), "Message.txt"))
		if err != nil || normText(string(body)) != normText(bodies[i]) {
			t.Errorf("%s: body differs (%d bytes, want %d)", e.Name(), len(body), len(bodies[i]))
		}
	}
}
