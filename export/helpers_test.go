// SPDX-License-Identifier: Apache-2.0

package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sealmail/sealmail"
)

const corpusDir = "../../shared/corpus/mime"

// requireTool returns the path of a command-line tool. A missing tool
// fails the test when CI is set and skips it otherwise.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (Debian package %s): required when CI is set", name, debPackage[name])
		}
		t.Skipf("%s not found: install Debian package %s to run this test", name, debPackage[name])
	}
	return p
}

var debPackage = map[string]string{
	"unzip":     "unzip",
	"sha256sum": "coreutils",
	"python3":   "python3",
	"pffexport": "pff-tools",
}

// corpusItems loads every file under the named corpus subdirectories (in
// sorted path order) as items with ids from firstID on and received times
// spread over several years.
func corpusItems(t *testing.T, firstID sealmail.MessageID, dirs ...string) []Item {
	t.Helper()
	var paths []string
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(corpusDir, d), func(p string, de os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if de.Type().IsRegular() && !bytes.HasPrefix([]byte(de.Name()), []byte("LICENSE")) {
				paths = append(paths, p)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read corpus: %v", err)
		}
	}
	slices.Sort(paths)
	if len(paths) == 0 {
		t.Fatalf("no corpus files under %s %v", corpusDir, dirs)
	}
	base := time.Date(2019, 3, 4, 5, 6, 7, 0, time.UTC)
	items := make([]Item, 0, len(paths))
	for i, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		it := Item{
			ID:       firstID + sealmail.MessageID(i),
			Received: base.Add(time.Duration(i) * 37 * time.Hour).In(time.FixedZone("X", 3600)),
			Raw:      raw,
		}
		if i%3 == 0 {
			it.Envelopes = []sealmail.Envelope{{Sender: "sender" + strconv.Itoa(i) + "@example.com", MailFrom: "journal@example.com"}}
		}
		items = append(items, it)
	}
	return items
}

// crafted are hand-written messages for the hard cases: From lines in the
// body (quoted or not), CRLF, no final line break, RFC 2047 headers.
func crafted(firstID sealmail.MessageID) []Item {
	msgs := []string{
		"From: a@example.com\nSubject: from lines\n\nFrom here on\n>From quoted\n>>From twice\nFrom\nFromage\n >From indented\n\nFrom after blank\n",
		"From: a@example.com\r\nSubject: crlf\r\n\r\nline one\r\nFrom crlf\r\n>From crlf quoted\r\n",
		"Subject: no final newline\n\nlast line From x",
		"Subject: =?UTF-8?B?w6lww6l0w6k=?= and =?ISO-8859-1?Q?caf=E9?=\nDate: Tue, 1 Jan 2013 12:00:00 +0200\nTo: =?UTF-8?Q?J=C3=B6rg?= <j@example.com>\n\nbody\n",
		"",
		"\n",
		"From nobody Thu Jan  1 00:00:00 1970\nSubject: mbox line at top\n\n>From x\n",
		"Subject: binary\n\n\x00\x01\x02\xff\xfe\r\rlone CR\r\n\n\n",
	}
	items := make([]Item, len(msgs))
	for i, m := range msgs {
		items[i] = Item{
			ID:       firstID + sealmail.MessageID(i),
			Received: time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC),
			Raw:      []byte(m),
		}
	}
	items[1].Envelopes = []sealmail.Envelope{{MailFrom: "<>"}}
	items[2].Envelopes = []sealmail.Envelope{{Sender: "has space@example.com"}}
	return items
}

// mboxNormal is what an mboxrd export should give back for raw: LF line
// ends and a final line break.
func mboxNormal(raw []byte) []byte {
	b := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	return b
}

// mboxrdUnquote removes one '>' from every line matching ^>+From .
func mboxrdUnquote(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i+1], b[i+1:]
		} else {
			b = nil
		}
		if len(line) > 0 && line[0] == '>' && isFromLine(line) {
			line = line[1:]
		}
		out = append(out, line...)
	}
	return out
}

// mboxMessage is one message as a reader sees it.
type mboxMessage struct {
	fromLine string // after "From "
	body     []byte // unquoted
}

// parseMboxrd is an independent mboxrd reader: a message starts at each
// line beginning "From ", its last line (the separating empty line) is
// dropped, and the body is unquoted.
func parseMboxrd(t *testing.T, data []byte) []mboxMessage {
	t.Helper()
	if len(data) == 0 {
		return nil
	}
	if !bytes.HasPrefix(data, []byte("From ")) {
		t.Fatalf("mbox does not start with a From line: %q", data[:min(len(data), 40)])
	}
	var out []mboxMessage
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			t.Fatalf("unterminated From line %q", data)
		}
		m := mboxMessage{fromLine: string(data[len("From "):nl])}
		data = data[nl+1:]
		end := len(data)
		if i := bytes.Index(data, []byte("\nFrom ")); i >= 0 {
			end = i + 1
		}
		body := data[:end]
		data = data[end:]
		if !bytes.HasSuffix(body, []byte("\n")) {
			t.Fatalf("message %d does not end with an empty line", len(out)+1)
		}
		body = body[:len(body)-1]
		if len(body) > 0 && !bytes.HasSuffix(body, []byte("\n")) {
			t.Fatalf("message %d: no empty line before the next From line", len(out)+1)
		}
		m.body = mboxrdUnquote(body)
		out = append(out, m)
	}
	return out
}

// readManifestJSON decodes a manifest.json file.
func readManifestJSON(t *testing.T, data []byte) Manifest {
	t.Helper()
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("manifest.json: %v\n%s", err, data)
	}
	return m
}

// checkManifest checks the manifest files' content against the writer's
// manifest and the items.
func checkManifest(t *testing.T, got Manifest, jsonData, csvData []byte, items []Item) {
	t.Helper()
	if got.Count != len(items) || len(got.Messages) != len(items) {
		t.Fatalf("manifest count = %d (%d rows), want %d", got.Count, len(got.Messages), len(items))
	}
	for i, r := range got.Messages {
		it := items[i]
		if r.ID != it.ID || r.Seq != i+1 || r.Size != int64(len(it.Raw)) || r.SHA256 != sha256hex(it.Raw) {
			t.Errorf("row %d = id %d seq %d size %d sha %s, want id %d seq %d size %d sha %s",
				i, r.ID, r.Seq, r.Size, r.SHA256, it.ID, i+1, len(it.Raw), sha256hex(it.Raw))
		}
		if !r.Received.Equal(it.Received) {
			t.Errorf("row %d received = %v, want %v", i, r.Received, it.Received)
		}
	}
	fromJSON := readManifestJSON(t, jsonData)
	want := got
	want.Files = nil
	if !manifestEqual(fromJSON, want) {
		t.Errorf("manifest.json differs from Manifest():\njson %+v\nwant %+v", fromJSON, want)
	}
	recs, err := csv.NewReader(bytes.NewReader(csvData)).ReadAll()
	if err != nil {
		t.Fatalf("manifest.csv: %v", err)
	}
	if len(recs) != len(items)+1 || !slices.Equal(recs[0], csvHeader) {
		t.Fatalf("manifest.csv has %d records, header %v; want %d, %v", len(recs), recs[0], len(items)+1, csvHeader)
	}
	for i, rec := range recs[1:] {
		r := got.Messages[i]
		want := []string{strconv.Itoa(r.Seq), r.ID.String(), r.File, r.Date.Format(time.RFC3339), r.DateSource,
			r.Received.Format(time.RFC3339), r.From, r.To, r.Subject, strconv.FormatInt(r.Size, 10), r.SHA256}
		if !slices.Equal(rec, want) {
			t.Errorf("manifest.csv record %d = %q, want %q", i+1, rec, want)
		}
	}
}

func manifestEqual(a, b Manifest) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// sha256sumCheck runs `sha256sum -c file` in dir and checks that it
// verified want files.
func sha256sumCheck(t *testing.T, dir, file string, want int) {
	t.Helper()
	tool := requireTool(t, "sha256sum")
	cmd := exec.Command(tool, "-c", "--strict", file)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sha256sum -c %s: %v\n%s", file, err, out)
	}
	if n := bytes.Count(out, []byte(": OK\n")); n != want {
		t.Errorf("sha256sum -c %s verified %d files, want %d\n%s", file, n, want, out)
	}
}
