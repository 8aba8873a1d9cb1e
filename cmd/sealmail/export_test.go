// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExport exports a query's matches as EML (folder and zip), mbox and
// PST through the reader's export jobs; the EML files are the originals
// byte for byte, the manifests verify with sha256sum, readers open the
// rest, and the audit log records each export with its query, count and
// manifest hash.
func TestExport(t *testing.T) {
	t.Parallel()
	sha := needTool(t, "sha256sum", "coreutils")
	needTool(t, "unzip", "unzip")
	dir, identity := initArchive(t)
	d := startDaemon(t, dir)
	r := startReader(t, dir, "", "--identity", identity)
	var sent [][]byte
	for i := range 6 {
		to := "bob@example.org"
		if i%2 == 1 {
			to = "eve@example.net"
		}
		msg := []byte(fmt.Sprintf("From: a@example.com\r\nTo: %s\r\nSubject: export %d\r\n\r\nbody %d\nbare LF\r\nFrom the desk of A\r\n", to, i, i))
		code, reply := sendOne(t, d.addr, msg)
		if code != 250 {
			t.Fatalf("send: %d %s", code, reply)
		}
		if i%2 == 0 {
			sent = append(sent, msg)
		}
	}
	work := t.TempDir() // the export waits for the index
	for _, tc := range []struct{ format, out string }{
		{"eml", "eml-dir"}, {"eml", "export.zip"}, {"mbox", "export.mbox"}, {"pst", "export.pst"},
	} {
		out := filepath.Join(work, tc.out)
		so, errOut, code := r.cli("export", "--query", "to:bob@example.org", "--format", tc.format, "--out", out)
		if code != 0 || !strings.Contains(string(so), "exported 3 messages") {
			t.Fatalf("export %s: exit %d: %s%s", tc.format, code, so, errOut)
		}
		sumDir, sumFile := out, "manifest.sha256"
		if tc.format != "eml" || strings.HasSuffix(tc.out, ".zip") {
			sumDir, sumFile = work, tc.out+".manifest.sha256"
			if strings.HasSuffix(tc.out, ".zip") {
				sumDir = t.TempDir()
				if b, err := exec.Command("unzip", "-q", out, "-d", sumDir).CombinedOutput(); err != nil {
					t.Fatalf("unzip: %v %s", err, b)
				}
				sumFile = "manifest.sha256"
			}
		}
		cmd := exec.Command(sha, "-c", "--strict", sumFile)
		cmd.Dir = sumDir
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: sha256sum -c: %v\n%s", tc.format, err, b)
		}
		if tc.format == "mbox" {
			checkMboxWithNotmuch(t, out)
		}
		if tc.format == "eml" {
			files, _ := filepath.Glob(filepath.Join(sumDir, "*.eml"))
			if len(files) != 3 {
				t.Fatalf("%s: %d .eml files, want 3", tc.out, len(files))
			}
			for i, f := range files {
				if b, _ := os.ReadFile(f); !bytes.Equal(b, sent[i]) {
					t.Errorf("%s: %s = %q, want the original %q", tc.out, f, b, sent[i])
				}
			}
		}
	}
	r.stop()
	d.stop()
	out, _, _ := cli(t, nil, "audit", "show", "--type", "export", "--data", dir)
	if n := strings.Count(string(out), "manifest_sha256"); n != 4 || !strings.Contains(string(out), `"query":"to:bob@example.org"`) {
		t.Errorf("audit log has %d export entries, want 4 with the query:\n%s", n, out)
	}
}

// checkMboxWithNotmuch reads an exported mbox with real readers: Debian's
// mb2md splits it into a Maildir (undoing the "From " quoting) and notmuch
// indexes that.
func checkMboxWithNotmuch(t *testing.T, mbox string) {
	t.Helper()
	mb2md := needTool(t, "mb2md", "mb2md")
	notmuch := needTool(t, "notmuch", "notmuch")
	dir := t.TempDir()
	maildir := filepath.Join(dir, "mail")
	if b, err := exec.Command(mb2md, "-s", mbox, "-d", maildir).CombinedOutput(); err != nil {
		t.Fatalf("mb2md: %v\n%s", err, b)
	}
	cfg := filepath.Join(dir, "notmuch-config")
	os.WriteFile(cfg, []byte("[database]\npath="+maildir+"\n[new]\ntags=inbox\n"), 0o600)
	run := func(args ...string) string {
		cmd := exec.Command(notmuch, args...)
		cmd.Env = append(os.Environ(), "NOTMUCH_CONFIG="+cfg)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("notmuch %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	run("new", "--quiet")
	if n := strings.TrimSpace(run("count", "*")); n != "3" {
		t.Errorf("notmuch counts %s messages in the mbox, want 3", n)
	}
	subjects := run("search", "--output=summary", "*")
	for _, s := range []string{"export 0", "export 2", "export 4"} {
		if !strings.Contains(subjects, s) {
			t.Errorf("notmuch does not list %q:\n%s", s, subjects)
		}
	}
	if n := strings.TrimSpace(run("count", "body:desk")); n != "3" {
		t.Errorf("the quoted \"From the desk\" lines: notmuch finds %s, want 3", n)
	}
	files, _ := filepath.Glob(filepath.Join(maildir, "cur", "*"))
	for _, f := range files {
		if b, _ := os.ReadFile(f); !bytes.Contains(b, []byte("\nFrom the desk of A\n")) {
			t.Errorf("%s: the body's From line was not restored:\n%s", f, b)
		}
	}
}
