// SPDX-License-Identifier: Apache-2.0

package export

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// readAll drains r: the messages, and the item errors in order.
func readAll(t *testing.T, r Reader) ([]*Message, []*ItemError) {
	t.Helper()
	var msgs []*Message
	var ies []*ItemError
	for i := 0; ; i++ {
		if i > 1_000_000 {
			t.Fatal("reader does not end")
		}
		m, err := r.Next()
		if err == io.EOF {
			return msgs, ies
		}
		var ie *ItemError
		if errors.As(err, &ie) {
			ies = append(ies, ie)
			continue
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		msgs = append(msgs, m)
	}
}

// TestMboxImportReadsOwnExport writes the crafted and corpus messages with
// our mboxrd writer and reads them back: every message comes back as the
// writer's normal form (LF, final line break), "From " lines in bodies
// included, with the "From " line's date.
func TestMboxImportReadsOwnExport(t *testing.T) {
	t.Parallel()
	items := append(crafted(1), corpusItems(t, 100, "crymap", "mikel-mail/mime_emails", "mikel-mail/error_emails", "flanker/torture.eml")...)
	path := filepath.Join(t.TempDir(), "out.mbox")
	w, err := NewMbox(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if err := w.Add(context.Background(), it); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, format, err := OpenMbox(path, MboxAuto, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if format != MboxRD {
		t.Errorf("detected %s, want mboxrd", format)
	}
	msgs, ies := readAll(t, r)
	if len(ies) != 0 {
		t.Fatalf("item errors: %v", ies)
	}
	if len(msgs) != len(items) {
		t.Fatalf("read %d messages, wrote %d", len(msgs), len(items))
	}
	for i, m := range msgs {
		if want := mboxNormal(items[i].Raw); !bytes.Equal(m.Raw, want) {
			t.Errorf("message %d:\n got %q\nwant %q", i, trunc(m.Raw), trunc(want))
		}
		if !m.Received.Equal(items[i].Received.Truncate(time.Second)) {
			t.Errorf("message %d: received %v, want %v", i, m.Received, items[i].Received)
		}
		if m.Folder != "out" {
			t.Errorf("folder %q, want out", m.Folder)
		}
	}
	if done, total := r.Progress(); done != total || total == 0 {
		t.Errorf("Progress() = %d, %d; want the file size twice", done, total)
	}
}

func trunc(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

// TestMboxVariants reads hand-made mboxo and mboxrd files: the same quoted
// lines unquote differently, as qmail mbox(5) says.
func TestMboxVariants(t *testing.T) {
	t.Parallel()
	file := "From a@example.com Mon Jan  2 15:04:05 2006\n" +
		"Subject: one\n\n>From here\n>>From twice\nFrom not after blank stays\n\n" +
		"From b@example.com Tue Jan  3 15:04:05 2006\r\n" +
		"Subject: two, CRLF\r\n\r\nbody\r\n\r\n"
	for _, tc := range []struct {
		format MboxFormat
		first  string
	}{
		{MboxRD, "Subject: one\n\nFrom here\n>From twice\nFrom not after blank stays\n"},
		{MboxO, "Subject: one\n\nFrom here\n>>From twice\nFrom not after blank stays\n"},
	} {
		r := NewMboxReader(strings.NewReader(file), "x", tc.format, ReaderOptions{})
		msgs, ies := readAll(t, r)
		if len(ies) != 0 || len(msgs) != 2 {
			t.Fatalf("%s: %d messages, %v", tc.format, len(msgs), ies)
		}
		if got := string(msgs[0].Raw); got != tc.first {
			t.Errorf("%s: first = %q, want %q", tc.format, got, tc.first)
		}
		if got, want := string(msgs[1].Raw), "Subject: two, CRLF\r\n\r\nbody\r\n"; got != want {
			t.Errorf("%s: second = %q, want %q", tc.format, got, want)
		}
		if want := time.Date(2006, 1, 3, 15, 4, 5, 0, time.UTC); !msgs[1].Received.Equal(want) {
			t.Errorf("%s: received %v, want %v", tc.format, msgs[1].Received, want)
		}
		if msgs[1].Position != fmt.Sprintf("offset %d", strings.Index(file, "From b@")) {
			t.Errorf("position %q", msgs[1].Position)
		}
	}
	if f, proved, err := DetectMboxFormat(strings.NewReader(file)); err != nil || f != MboxRD || !proved {
		t.Errorf("DetectMboxFormat = %s, %v, %v; want mboxrd, proved", f, proved, err)
	}
	if f, proved, _ := DetectMboxFormat(strings.NewReader("From a b\n\n>From x\n")); f != MboxRD || proved {
		t.Errorf("DetectMboxFormat without evidence = %s, %v; want mboxrd, not proved", f, proved)
	}
}

// TestMboxoRoundTrip writes messages the mboxo way (^From quoted, nothing
// else) and reads them back exactly.
func TestMboxoRoundTrip(t *testing.T) {
	t.Parallel()
	originals := []string{
		"Subject: a\n\nFrom the start\nplain\n",
		"Subject: b\n\n>>From stays as it was\nFrom again\n\n\nFrom after blanks\n",
	}
	var b bytes.Buffer
	for _, o := range originals {
		b.WriteString("From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n")
		for _, l := range strings.SplitAfter(o, "\n") {
			if strings.HasPrefix(l, "From ") {
				b.WriteString(">")
			}
			b.WriteString(l)
		}
		b.WriteString("\n")
	}
	msgs, _ := readAll(t, NewMboxReader(&b, "", MboxO, ReaderOptions{}))
	if len(msgs) != len(originals) {
		t.Fatalf("%d messages, want %d", len(msgs), len(originals))
	}
	for i, m := range msgs {
		if string(m.Raw) != originals[i] {
			t.Errorf("message %d = %q, want %q", i, m.Raw, originals[i])
		}
	}
}

// TestMboxTooLarge skips a message over the limit with an item error and
// reads the next one.
func TestMboxTooLarge(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 100_000) // one line longer than the 64 KiB buffer
	file := "From a Mon Jan  2 15:04:05 2006\nSubject: 1\n\nsmall\n\n" +
		"From b Mon Jan  2 15:04:05 2006\nSubject: 2\n\n" + big + "\nFrom inside long message\n\n" +
		"From c Mon Jan  2 15:04:05 2006\nSubject: 3\n\nsmall\n\n"
	msgs, ies := readAll(t, NewMboxReader(strings.NewReader(file), "", MboxRD, ReaderOptions{MaxMessageBytes: 50_000}))
	if len(msgs) != 2 || string(msgs[0].Raw) != "Subject: 1\n\nsmall\n" || string(msgs[1].Raw) != "Subject: 3\n\nsmall\n" {
		t.Fatalf("messages %d", len(msgs))
	}
	if len(ies) != 1 || !errors.Is(ies[0], ErrTooLarge) || ies[0].Position != fmt.Sprintf("offset %d", strings.Index(file, "From b")) {
		t.Fatalf("item errors %v, want one ErrTooLarge at the second message", ies)
	}
	// Without a limit problem the long line comes back whole.
	msgs, _ = readAll(t, NewMboxReader(strings.NewReader(file), "", MboxRD, ReaderOptions{}))
	if len(msgs) != 3 || !strings.Contains(string(msgs[1].Raw), big+"\nFrom inside long message\n") {
		t.Fatalf("long message not read whole")
	}
}

// genMbox is an endless-looking mbox of n messages of about size bytes,
// generated on the fly.
type genMbox struct {
	n, i int
	body string
	buf  bytes.Buffer
}

func (g *genMbox) Read(p []byte) (int, error) {
	for g.buf.Len() < len(p) && g.i < g.n {
		fmt.Fprintf(&g.buf, "From gen@example.com Mon Jan  2 15:04:05 2006\nMessage-ID: <%d@gen>\nSubject: %d\n\n%s\n>From quoted\n\n", g.i, g.i, g.body)
		g.i++
	}
	return g.buf.Read(p)
}

// TestMboxConstantMemory reads 256 MiB of mbox and checks that the heap
// stays small: the reader holds one message, not the file.
func TestMboxConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 256 MiB")
	}
	body := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
	g := &genMbox{n: 4096, body: body}
	r := NewMboxReader(g, "", MboxRD, ReaderOptions{})
	var peak uint64
	var ms runtime.MemStats
	n := 0
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(m.Raw, []byte("\nFrom quoted\n")) {
			t.Fatalf("message %d ends %q", n, m.Raw[len(m.Raw)-20:])
		}
		n++
		if n%256 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if n != g.n {
		t.Fatalf("read %d messages, want %d", n, g.n)
	}
	if peak > 16<<20 {
		t.Errorf("heap reached %d bytes reading 256 MiB: the reader keeps more than one message", peak)
	}
}

func writeFile(t *testing.T, p, data string, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		os.Chtimes(p, mtime, mtime)
	}
}

// TestMaildir reads a Maildir++ tree: root INBOX, nested folders, cur and
// new, never tmp.
func TestImportMaildir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	mtime := time.Date(2015, 5, 6, 7, 8, 9, 0, time.UTC)
	writeFile(t, filepath.Join(root, "cur", "1400000000.M1P1.host:2,S"), "Subject: inbox cur\r\n\r\nexact\r\n", time.Time{})
	writeFile(t, filepath.Join(root, "new", "1400000001.M2P2.host"), "Subject: inbox new\n\n", time.Time{})
	writeFile(t, filepath.Join(root, "tmp", "1400000002.M3P3.host"), "Subject: in progress\n\n", time.Time{})
	writeFile(t, filepath.Join(root, ".Sent", "cur", "nodate:2,S"), "Subject: sent\n\n", mtime)
	writeFile(t, filepath.Join(root, ".Archive.2019", "new", "1500000000.x"), "Subject: archived\n\n", time.Time{})
	os.MkdirAll(filepath.Join(root, ".Empty", "cur"), 0o755)
	r, err := OpenMaildir(root, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msgs, ies := readAll(t, r)
	if len(ies) != 0 {
		t.Fatal(ies)
	}
	type row struct{ folder, subject, pos string }
	var got []row
	for _, m := range msgs {
		s, _, _ := strings.Cut(string(m.Raw), "\n")
		got = append(got, row{m.Folder, strings.TrimSpace(s), m.Position})
	}
	want := []row{
		{"Archive/2019", "Subject: archived", "new/1500000000.x"},
		{"INBOX", "Subject: inbox cur", "cur/1400000000.M1P1.host:2,S"},
		{"INBOX", "Subject: inbox new", "new/1400000001.M2P2.host"},
		{"Sent", "Subject: sent", "cur/nodate:2,S"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if string(msgs[1].Raw) != "Subject: inbox cur\r\n\r\nexact\r\n" {
		t.Errorf("not byte-exact: %q", msgs[1].Raw)
	}
	if !msgs[1].Received.Equal(time.Unix(1400000000, 0)) || !msgs[3].Received.Equal(mtime) {
		t.Errorf("received %v, %v", msgs[1].Received, msgs[3].Received)
	}
	if _, err := OpenMaildir(t.TempDir(), ReaderOptions{}); err == nil {
		t.Error("an empty directory opened as a Maildir")
	}
}

// TestEMLZip reads a zip of .eml files streamed entry by entry; a corrupt
// entry is an item error, the others are read.
func TestImportEMLZip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "mail.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	entries := []struct{ name, data string }{
		{"a.eml", "Subject: a\r\n\r\nA\r\n"},
		{"Inbox/b.eml", "Subject: b\n\n" + strings.Repeat("b", 5000) + "\n"},
		{"Inbox/notes.txt", "not mail"},
		{"Inbox/sub/c.EML", "Subject: c\n\n"},
	}
	for _, e := range entries {
		w, err := zw.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(e.data))
	}
	zw.Close()
	f.Close()
	// Corrupt b.eml's stored data: it is deflated, so flip a byte in it.
	data, _ := os.ReadFile(p)
	i := bytes.Index(data, []byte("Inbox/b.eml")) + len("Inbox/b.eml") + 5
	data[i] ^= 0xff
	os.WriteFile(p, data, 0o600)

	r, err := OpenEML(p, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	msgs, ies := readAll(t, r)
	if len(msgs) != 2 || string(msgs[0].Raw) != entries[0].data || msgs[0].Folder != "" ||
		string(msgs[1].Raw) != entries[3].data || msgs[1].Folder != "Inbox/sub" {
		t.Fatalf("messages %+v", msgs)
	}
	if len(ies) != 1 || ies[0].Folder != "Inbox" {
		t.Fatalf("item errors %v, want one for Inbox/b.eml", ies)
	}

	// The same as a directory.
	root := filepath.Join(dir, "tree")
	for _, e := range entries {
		writeFile(t, filepath.Join(root, e.name), e.data, time.Time{})
	}
	r, err = OpenEML(root, ReaderOptions{MaxMessageBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	msgs, ies = readAll(t, r)
	if len(msgs) != 2 || len(ies) != 1 || !errors.Is(ies[0], ErrTooLarge) || ies[0].Position != "Inbox/b.eml" {
		t.Fatalf("directory: %d messages, %v", len(msgs), ies)
	}
}
