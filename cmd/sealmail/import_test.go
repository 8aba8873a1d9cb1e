// SPDX-License-Identifier: Apache-2.0

package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

type importSummaryJSON struct {
	Kind      string         `json:"kind"`
	Owner     string         `json:"owner"`
	Daemon    bool           `json:"daemon"`
	Read      int            `json:"read"`
	Stored    int            `json:"stored"`
	Duplicate int            `json:"duplicate"`
	Skipped   int            `json:"skipped"`
	Refused   int            `json:"refused"`
	Reasons   map[string]int `json:"reasons"`
	Refusals  []refusal      `json:"refused_messages"`
}

func runImportCLI(t *testing.T, dir string, args ...string) importSummaryJSON {
	t.Helper()
	out, errOut, code := cli(t, nil, append([]string{"import", "--json", "--data", dir}, args...)...)
	if code != 0 {
		t.Fatalf("sealmail import %v: exit %d: %s", args, code, errOut)
	}
	var s importSummaryJSON
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("import --json: %v: %s", err, out)
	}
	return s
}

type listRow struct {
	ID       uint64    `json:"id"`
	Received time.Time `json:"received"`
	Receipts int       `json:"receipts"`
}

func listAll(t *testing.T, dir string) []listRow {
	t.Helper()
	out, errOut, code := cli(t, nil, "list", "--json", "--data", dir)
	if code != 0 {
		t.Fatalf("list: %s", errOut)
	}
	var rows []listRow
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l == "" {
			continue
		}
		var r listRow
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("list line %q: %v", l, err)
		}
		rows = append(rows, r)
	}
	return rows
}

// TestImport imports an mbox with the archive opened directly, then a
// Maildir and an EML zip through the daemon: messages byte-exact, a too
// large one refused and skipped, a second run adding nothing, a message
// already journaled becoming one more receipt, imported envelopes, and the
// runs in the audit log.
func TestImport(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	tmp := t.TempDir()

	// An mbox (mboxrd): a "From " line in a body, a quoted one, a message
	// over the limit.
	msgs := []string{
		"From: a@example.com\nSubject: one\nDate: Tue, 1 Jan 2013 12:00:00 +0000\n\nFrom the start\n>From quoted\n",
		"From: b@example.com\nSubject: two\n\nbody\n",
		"From: c@example.com\nSubject: big\n\n" + strings.Repeat("big line\n", 500),
		"From: d@example.com\nSubject: four\n\nlast\n",
	}
	var mb bytes.Buffer
	for _, m := range msgs {
		mb.WriteString("From sender@example.com Sat Mar  2 10:11:12 2013\n")
		for _, l := range strings.SplitAfter(m, "\n") {
			if strings.HasPrefix(strings.TrimLeft(l, ">"), "From ") {
				mb.WriteString(">")
			}
			mb.WriteString(l)
		}
		mb.WriteString("\n")
	}
	mbox := filepath.Join(tmp, "Old Inbox.mbox")
	os.WriteFile(mbox, mb.Bytes(), 0o600)

	s := runImportCLI(t, dir, "--mbox", mbox, "--owner", "Alice@Example.com", "--max-message-size", "2K")
	if s.Daemon || s.Read != 4 || s.Stored != 3 || s.Refused != 1 || s.Reasons["too large"] != 1 || s.Owner != "alice@example.com" {
		t.Fatalf("first mbox import: %+v", s)
	}
	if len(s.Refusals) != 1 || s.Refusals[0].Position != fmt.Sprintf("offset %d", bytes.Index(mb.Bytes(), []byte("From sender@example.com Sat Mar  2 10:11:12 2013\nFrom: c@"))) {
		t.Errorf("refusal %+v does not name the big message's offset", s.Refusals)
	}
	s = runImportCLI(t, dir, "--mbox", mbox, "--owner", "alice@example.com", "--max-message-size", "2K")
	if s.Stored != 0 || s.Skipped != 3 || s.Duplicate != 0 {
		t.Fatalf("second mbox import added something: %+v", s)
	}
	rows := listAll(t, dir)
	if len(rows) != 3 {
		t.Fatalf("%d messages stored, want 3", len(rows))
	}
	// Workers store in parallel: ids need not follow the mbox order.
	idOf := map[string]uint64{}
	for _, r := range rows {
		got, errOut, code := cli(t, nil, "get", fmt.Sprint(r.ID), "--data", dir, "--identity", identity)
		if code != 0 {
			t.Fatalf("get %d: %s", r.ID, errOut)
		}
		idOf[string(got)] = r.ID
		if want := time.Date(2013, 3, 2, 10, 11, 12, 0, time.UTC); !r.Received.Equal(want) {
			t.Errorf("message %d received %v, want the From line's %v", r.ID, r.Received, want)
		}
	}
	for _, want := range []string{msgs[0], msgs[1], msgs[3]} {
		if idOf[want] == 0 {
			t.Errorf("not stored byte-exact: %q (stored: %v)", want, idOf)
		}
	}
	env, _, _ := cli(t, nil, "get", fmt.Sprint(idOf[msgs[0]]), "--envelope", "--data", dir, "--identity", identity)
	var e struct {
		Source   string `json:"source"`
		Imported struct {
			Kind, Source, Folder, Owner string
			ReceivedFrom                string `json:"received_from"`
			At                          time.Time
		} `json:"imported"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(env), &e); err != nil {
		t.Fatalf("envelope %s: %v", env, err)
	}
	if e.Source != "import" || e.Imported.Kind != "mbox" || e.Imported.Source != mbox || e.Imported.Folder != "Old Inbox" ||
		e.Imported.Owner != "alice@example.com" || e.Imported.ReceivedFrom != "source" || time.Since(e.Imported.At) > time.Hour {
		t.Errorf("imported envelope %s", env)
	}

	// Through the daemon: a journaled copy first, then a Maildir that
	// holds the same bytes, the first mbox message again (another owner),
	// and a new one.
	d := startDaemon(t, dir)
	journaled := "From: j@example.com\r\nSubject: journaled before\r\n\r\nsame bytes\r\n"
	c, err := dialSMTP(d.addr, true)
	if err != nil {
		t.Fatal(err)
	}
	if code, reply, err := c.send("j@example.com", []string{"bob@example.com"}, []byte(journaled), false); code != 250 {
		t.Fatalf("send: %d %s %v", code, reply, err)
	}
	c.close()
	md := filepath.Join(tmp, "Maildir")
	for p, data := range map[string]string{
		"cur/1300000000.M1.h:2,S":      journaled,
		"new/1300000001.M2.h":          msgs[0],
		".Sent/cur/1300000002.M3.h:2,": "From: bob@example.com\nSubject: sent\n\nnew\n",
		"tmp/1300000003.M4.h":          "Subject: in delivery\n\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(md, p)), 0o700)
		os.WriteFile(filepath.Join(md, p), []byte(data), 0o600)
	}
	s = runImportCLI(t, dir, "--maildir", md, "--owner", "bob@example.com")
	if !s.Daemon || s.Read != 3 || s.Stored != 1 || s.Duplicate != 2 || s.Refused != 0 {
		t.Fatalf("maildir import through the daemon: %+v", s)
	}
	s = runImportCLI(t, dir, "--maildir", md, "--owner", "bob@example.com")
	if s.Stored != 0 || s.Duplicate != 0 || s.Skipped != 3 {
		t.Fatalf("second maildir import added something: %+v", s)
	}

	// An EML zip with a corrupt entry.
	zp := filepath.Join(tmp, "export.zip")
	f, _ := os.Create(zp)
	zw := zip.NewWriter(f)
	for _, e := range []struct{ name, data string }{
		{"2019/a.eml", "From: z@example.com\r\nSubject: zipped\r\n\r\nzip body " + strings.Repeat("z", 300) + "\r\n"},
		{"2019/broken.eml", "Subject: broken\r\n\r\n" + strings.Repeat("q", 300) + "\r\n"},
	} {
		w, _ := zw.Create(e.name)
		w.Write([]byte(e.data))
	}
	zw.Close()
	f.Close()
	zb, _ := os.ReadFile(zp)
	i := bytes.Index(zb, []byte("2019/broken.eml")) + len("2019/broken.eml") + 3
	zb[i] ^= 0xff
	os.WriteFile(zp, zb, 0o600)
	s = runImportCLI(t, dir, "--eml", zp)
	if s.Stored != 1 || s.Refused != 1 || s.Reasons["unreadable"] != 1 {
		t.Fatalf("eml zip import: %+v", s)
	}
	d.stop()

	rows = listAll(t, dir)
	if len(rows) != 6 {
		t.Fatalf("%d messages, want 6 (3 mbox, 1 journaled, 1 sent, 1 zipped)", len(rows))
	}
	receipts := map[uint64]int{}
	for _, r := range rows {
		receipts[r.ID] = r.Receipts
	}
	// The journaled message was the first the daemon stored after the
	// three of the mbox.
	if receipts[idOf[msgs[0]]] != 2 || receipts[4] != 2 {
		t.Errorf("receipts %v: the first mbox message and the journaled one should have 2", receipts)
	}

	out, _, _ := cli(t, nil, "audit", "show", "--json", "--type", "import", "--data", dir)
	var phases []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var ent struct {
			Actor  string `json:"actor"`
			Fields struct {
				Phase  string `json:"phase"`
				Kind   string `json:"kind"`
				Stored int    `json:"stored"`
			} `json:"fields"`
		}
		if err := json.Unmarshal([]byte(l), &ent); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		if ent.Actor == "" || ent.Actor == "unknown" {
			t.Errorf("import audited without who: %s", l)
		}
		phases = append(phases, ent.Fields.Kind+":"+ent.Fields.Phase+":"+fmt.Sprint(ent.Fields.Stored))
	}
	want := "[mbox:start:0 mbox:end:3 mbox:start:0 mbox:end:0 maildir:start:0 maildir:end:1 maildir:start:0 maildir:end:0 eml:start:0 eml:end:1]"
	if fmt.Sprint(phases) != want {
		t.Errorf("import audit entries %v, want %s", phases, want)
	}
	if _, errOut, code := cli(t, nil, "verify", "--data", dir); code != 0 {
		t.Errorf("verify after import: %s", errOut)
	}
}

// TestImportInterrupted stops an import with SIGINT part-way: it exits 130
// and says so, the audit log records it, and running the same command again
// stores exactly the rest.
func TestImportInterrupted(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("imports 8000 messages")
	}
	dir, _ := initArchive(t)
	const n = 8000
	var mb bytes.Buffer
	for i := range n {
		fmt.Fprintf(&mb, "From x@example.com Sat Mar  2 10:11:12 2013\nMessage-ID: <%d@example.com>\nSubject: %d\n\nbody %d\n\n", i, i, i)
	}
	mbox := filepath.Join(t.TempDir(), "big.mbox")
	os.WriteFile(mbox, mb.Bytes(), 0o600)

	cmd := exec.Command(sealmailBinary(t), "import", "--json", "--data", dir, "--mbox", mbox)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once some messages are stored: the segments have grown.
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	for i := 0; ; i++ {
		var size int64
		segs, _ := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
		for _, p := range segs {
			if fi, err := os.Stat(p); err == nil {
				size += fi.Size()
			}
		}
		if size > 256<<10 {
			break
		}
		select {
		case <-exited:
			t.Fatalf("import ended before it was interrupted: %s %s", out.String(), errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
		if i > 3000 {
			t.Fatal("import stored nothing within a minute")
		}
	}
	cmd.Process.Signal(os.Interrupt)
	<-exited
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("interrupted import: exit %d, want 130 (finished before the signal?): %s", code, errOut.String())
	}
	var first importSummaryJSON
	if err := json.Unmarshal(out.Bytes(), &first); err != nil {
		t.Fatalf("summary %q: %v", out.String(), err)
	}
	if !strings.Contains(out.String(), `"interrupted": true`) || first.Stored == 0 || first.Stored >= n {
		t.Fatalf("interrupted summary: %s", out.String())
	}
	stored := len(listAll(t, dir))
	second := runImportCLI(t, dir, "--mbox", mbox)
	if second.Skipped != stored || second.Stored != n-stored {
		t.Errorf("re-run: %+v; want %d skipped, %d stored", second, stored, n-stored)
	}
	if got := len(listAll(t, dir)); got != n {
		t.Errorf("%d messages after the re-run, want %d", got, n)
	}
	aud, _, _ := cli(t, nil, "audit", "show", "--json", "--type", "import", "--data", dir)
	if !bytes.Contains(aud, []byte(`"phase":"interrupted"`)) {
		t.Errorf("no interrupted import in the audit log: %s", aud)
	}
}

// TestImportPST imports PSTs of the corpus: mail is stored (rebuilt the
// same way each time, so a second run adds nothing), contacts and
// appointments are refused as not mail, the ANSI copy of the same message
// differs in bytes and is stored too.
func TestImportPST(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	corpus := filepath.Join("..", "..", "..", "shared", "corpus", "pst")
	s := runImportCLI(t, dir, "--pst", filepath.Join(corpus, "pstsdk-sample1-unicode.pst"), "--owner", "terrymah@example.com")
	if s.Stored != 1 || s.Refused != 0 {
		t.Fatalf("sample1: %+v", s)
	}
	s = runImportCLI(t, dir, "--pst", filepath.Join(corpus, "pstsdk-sample1-unicode.pst"), "--owner", "terrymah@example.com")
	if s.Stored != 0 || s.Skipped != 1 {
		t.Fatalf("sample1 again: %+v", s)
	}
	s = runImportCLI(t, dir, "--pst", filepath.Join(corpus, "java-libpst-dist-list-unicode.pst"))
	if s.Stored != 0 || s.Refused != 4 || s.Reasons["not mail"] != 4 {
		t.Fatalf("dist-list: %+v", s)
	}
	raw, _, code := cli(t, nil, "get", "1", "--data", dir, "--identity", identity)
	if code != 0 || !bytes.Contains(raw, []byte("Subject: Here is a sample message\r\n")) || !bytes.Contains(raw, []byte("filename=leah_thumper.jpg")) {
		t.Errorf("rebuilt PST message:\n%.600s", raw)
	}
	env, _, _ := cli(t, nil, "get", "1", "--envelope", "--data", dir, "--identity", identity)
	if !bytes.Contains(env, []byte(`"folder":"Sample1"`)) || !bytes.Contains(env, []byte(`"kind":"pst"`)) || !bytes.Contains(env, []byte(`"received_from":"source"`)) {
		t.Errorf("envelope %s", env)
	}
}

// TestImportRetention: with the archive opened directly, --config's
// retention rules apply, counted from the source's received time (the
// mbox From line), not from the import.
func TestImportRetention(t *testing.T) {
	t.Parallel()
	dir, _ := initArchive(t)
	cfg := writeConfig(t, `
[retention.default]
name = "letters"
keep = "6y"
from = "end-of-year"
[[retention.rules]]
name = "invoices"
headers = { Subject = "[invoice]" }
keep = "10y"
from = "end-of-year"
`)
	mbox := filepath.Join(t.TempDir(), "old.mbox")
	os.WriteFile(mbox, []byte("From a@example.com Mon Jan  2 15:04:05 2012\nSubject: [invoice] 17\n\nx\n\n"+
		"From a@example.com Mon Jan  2 15:04:05 2012\nSubject: hello\n\ny\n\n"), 0o600)
	if s := runImportCLI(t, dir, "--mbox", mbox, "--config", cfg); s.Stored != 2 {
		t.Fatalf("import: %+v", s)
	}
	out, _, _ := cli(t, nil, "list", "--json", "--data", dir)
	want := []string{"2023-01-01T00:00:00Z", "2019-01-01T00:00:00Z"} // 10 and 6 years from the end of 2012
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("list: %s", out)
	}
	var got []string
	for _, line := range lines {
		var r struct {
			RetainUntil string `json:"retain_until"`
		}
		json.Unmarshal([]byte(line), &r)
		got = append(got, r.RetainUntil)
	}
	// Workers store in parallel: the order of ids is not the mbox's.
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("retain_until %q, want %q", got, want)
	}
}
