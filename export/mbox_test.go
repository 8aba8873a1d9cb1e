// SPDX-License-Identifier: Apache-2.0

package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealmail/sealmail"
)

// pyMailbox reads an mbox with Python's mailbox.mbox and prints, for each
// message, its "From " line (get_from) and its bytes (get_bytes), in order.
const pyMailbox = `
import base64, json, mailbox, sys
box = mailbox.mbox(sys.argv[1], create=False)
out = []
for key in box.iterkeys():
    out.append({"from": box.get_message(key).get_from(),
                "data": base64.b64encode(box.get_bytes(key)).decode()})
box.close()
json.dump(out, sys.stdout)
`

func TestMbox(t *testing.T) {
	t.Parallel()
	// The whole MIME corpus: CRLF and LF files, 8-bit bodies, files with
	// "From " and ">From " lines (flanker/torture.eml,
	// mimekit/mbox/content-length.mbox.txt), plus the crafted cases.
	items := append(corpusItems(t, 1, "."), crafted(5000)...)
	dir := t.TempDir()
	path := filepath.Join(dir, "export.mbox")
	w, err := NewMbox(path, Options{Now: fixedNow, Query: "all"})
	if err != nil {
		t.Fatal(err)
	}
	addAll(t, w, items)
	m := w.Manifest()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// No body line may start with "From ": only separators do.
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	seps := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "From ") {
			seps++
		}
	}
	if seps != len(items) {
		t.Fatalf("mbox has %d lines starting \"From \", want %d separators", seps, len(items))
	}
	if bytes.Contains(data, []byte("\r\n")) {
		t.Errorf("mbox contains CRLF")
	}

	// Go reader.
	msgs := parseMboxrd(t, data)
	if len(msgs) != len(items) {
		t.Fatalf("Go reader found %d messages, want %d", len(msgs), len(items))
	}
	for i, it := range items {
		if want := mboxFromLine(it); msgs[i].fromLine != want {
			t.Errorf("message %d From line %q, want %q", it.ID, msgs[i].fromLine, want)
		}
		if !bytes.Equal(msgs[i].body, mboxNormal(it.Raw)) {
			t.Errorf("message %d: Go reader got %d bytes, want %d", it.ID, len(msgs[i].body), len(mboxNormal(it.Raw)))
		}
	}

	// Python's mailbox.
	py := requireTool(t, "python3")
	out, err := exec.Command(py, "-c", pyMailbox, path).Output()
	if err != nil {
		t.Fatalf("python3 mailbox: %v", err)
	}
	var pyMsgs []struct{ From, Data string }
	if err := json.Unmarshal(out, &pyMsgs); err != nil {
		t.Fatal(err)
	}
	if len(pyMsgs) != len(items) {
		t.Fatalf("python3 mailbox.mbox found %d messages, want %d", len(pyMsgs), len(items))
	}
	for i, it := range items {
		body, _ := base64.StdEncoding.DecodeString(pyMsgs[i].Data)
		if got := mboxrdUnquote(body); !bytes.Equal(got, mboxNormal(it.Raw)) {
			t.Errorf("message %d: python3 mailbox got %d bytes (unquoted), want %d", it.ID, len(got), len(mboxNormal(it.Raw)))
		}
		if want := mboxFromLine(it); pyMsgs[i].From != want {
			t.Errorf("message %d: python3 get_from() = %q, want %q", it.ID, pyMsgs[i].From, want)
		}
	}

	// Manifest: digests of the original bytes; sha256sum -c covers the
	// mbox and both manifest files.
	jsonData, _ := os.ReadFile(path + "." + ManifestJSON)
	csvData, _ := os.ReadFile(path + "." + ManifestCSV)
	checkManifest(t, m, jsonData, csvData, items)
	if m.Digest != digestOriginal || m.Format != "mbox" {
		t.Errorf("manifest format %q digest %q", m.Format, m.Digest)
	}
	sha256sumCheck(t, dir, "export.mbox."+ManifestSHA256, 3)
	checkDigest(t, dir, m.Output)
	checkDigest(t, dir, m.SumFile)
	if m.Output.Name != "export.mbox" || m.SumFile.Name != "export.mbox.manifest.sha256" {
		t.Errorf("Output %q SumFile %q, want export.mbox and export.mbox.manifest.sha256", m.Output.Name, m.SumFile.Name)
	}
}

// mboxFromLine is the separator line we expect, without "From ".
func mboxFromLine(it Item) string {
	return mboxSender(it.Envelopes) + " " + it.Received.UTC().Format(time.ANSIC)
}

func TestMboxQuoting(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "q.mbox")
	w, err := NewMbox(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	items := crafted(1)
	addAll(t, w, items[:2])
	got, _ := os.ReadFile(path)
	want := "From MAILER-DAEMON Thu Feb 29 23:59:59 2024\n" +
		"From: a@example.com\nSubject: from lines\n\n>From here on\n>>From quoted\n>>>From twice\nFrom\nFromage\n >From indented\n\n>From after blank\n\n" +
		"From MAILER-DAEMON Thu Feb 29 23:59:59 2024\n" +
		"From: a@example.com\nSubject: crlf\n\nline one\n>From crlf\n>>From crlf quoted\n\n"
	if string(got) != want {
		t.Errorf("mbox =\n%q\nwant\n%q", got, want)
	}
}

func TestMboxSender(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		envs []sealmail.Envelope
		want string
	}{
		{nil, "MAILER-DAEMON"},
		{[]sealmail.Envelope{{}}, "MAILER-DAEMON"},
		{[]sealmail.Envelope{{MailFrom: "<>"}}, "MAILER-DAEMON"},
		{[]sealmail.Envelope{{MailFrom: "bounce@example.org"}}, "bounce@example.org"},
		{[]sealmail.Envelope{{Sender: "alice@example.com", MailFrom: "journal@example.com"}}, "alice@example.com"},
		{[]sealmail.Envelope{{Sender: "<bob@example.com>"}}, "bob@example.com"},
		{[]sealmail.Envelope{{Sender: "a b@example.com"}}, "MAILER-DAEMON"},
		{[]sealmail.Envelope{{Sender: "jörg@example.com"}}, "MAILER-DAEMON"},
		{[]sealmail.Envelope{{Sender: "x@example.com\n"}}, "x@example.com"},
		{[]sealmail.Envelope{{Sender: "x@exa\rmple.com"}}, "MAILER-DAEMON"},
	} {
		if got := mboxSender(tc.envs); got != tc.want {
			t.Errorf("mboxSender(%+v) = %q, want %q", tc.envs, got, tc.want)
		}
	}
}

func TestConcurrentAdd(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.mbox")
	w, err := NewMbox(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				it := Item{ID: sealmail.MessageID(g*100 + i + 1), Raw: []byte("Subject: x\n\nFrom me\n")}
				if err := w.Add(context.Background(), it); err != nil {
					t.Errorf("Add: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if n := len(parseMboxrd(t, data)); n != 100 || w.Manifest().Count != 100 {
		t.Errorf("read %d messages, manifest count %d, want 100", n, w.Manifest().Count)
	}
}

// TestWriteFailure breaks the output file under a zip and an mbox writer:
// Add must fail naming the path, and the error must stick.
func TestWriteFailure(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	big := Item{ID: 1, Raw: bytes.Repeat([]byte("x\n"), 200<<10)}
	zpath, mpath := filepath.Join(tmp, "z.zip"), filepath.Join(tmp, "m.mbox")
	z, err := NewEMLZip(zpath, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMbox(mpath, Options{})
	if err != nil {
		t.Fatal(err)
	}
	z.f.Close()
	m.f.Close()
	for _, tc := range []struct {
		w    Writer
		path string
	}{{z, zpath}, {m, mpath}} {
		err := tc.w.Add(context.Background(), big)
		if err == nil || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("Add to a closed file = %v, want an error naming %s", err, tc.path)
			continue
		}
		big2 := big
		big2.ID = 2
		if err2 := tc.w.Add(context.Background(), big2); err2 == nil {
			t.Errorf("second Add after a write error succeeded")
		}
		if cerr := tc.w.Close(); cerr == nil {
			t.Errorf("Close after a write error = nil, want the error")
		}
		if n := tc.w.Manifest().Count; n != 0 {
			t.Errorf("manifest count = %d, want 0", n)
		}
	}
	if _, err := os.Stat(mpath + "." + ManifestSHA256); err == nil {
		t.Errorf("a failed mbox export has a manifest.sha256")
	}
}
