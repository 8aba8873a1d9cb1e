// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestAttachmentText: a word that is only inside a PDF attachment of a
// message sent over SMTP is found through the real reader process, which
// extracts it in its sandbox (this binary as the child, pdftotext in it);
// the reader's status says what the sandbox enforces.
func TestAttachmentText(t *testing.T) {
	t.Parallel()
	needTool(t, "pdftotext", "poppler-utils")
	pdf, err := os.ReadFile("../../extract/testdata/corpus/sample.pdf")
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(pdf)
	var body strings.Builder
	for len(b64) > 76 {
		body.WriteString(b64[:76] + "\r\n")
		b64 = b64[76:]
	}
	body.WriteString(b64 + "\r\n")
	msg := "From: a@example.com\r\nTo: b@example.org\r\nSubject: the contract\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"contract.pdf\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + body.String() + "--b1--\r\n"
	dir, identity := initArchive(t)
	d := startDaemon(t, dir)
	if code, reply := sendOne(t, d.addr, []byte(msg)); code != 250 {
		t.Fatalf("send: %d %s", code, reply)
	}
	r := startReader(t, dir, "", "--identity", identity)
	r.caughtUp()
	if n := searchCount(t, r, "sealpdf"); n != 1 {
		t.Errorf("a word only in the PDF attachment is found %d times, want 1", n)
	}
	if n := searchCount(t, r, "attachment:sealpdf"); n != 1 {
		t.Errorf("attachment:sealpdf is found %d times, want 1", n)
	}
	if !strings.Contains(r.stderr.String(), `msg="attachment sandbox" landlock=`) {
		t.Errorf("the reader did not log its sandbox:\n%s", r.stderr)
	}
	out, errOut, code := r.cli("access", "status", "--json")
	var st struct {
		Extraction struct {
			Sandbox     string `json:"sandbox"`
			Attachments int64  `json:"attachments"`
		} `json:"extraction"`
	}
	if code != 0 || json.Unmarshal(out, &st) != nil || !strings.Contains(st.Extraction.Sandbox, "seccomp") || st.Extraction.Attachments != 1 {
		t.Errorf("access status: exit %d: %s%s", code, out, errOut)
	}
	r.stop()
	d.stop()
}
