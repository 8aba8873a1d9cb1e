// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestSwaks sends a message with swaks over STARTTLS to the real daemon and
// reads it back with `sealmail get`.
func TestSwaks(t *testing.T) {
	t.Parallel()
	swaks := needTool(t, "swaks", "swaks")
	dir, identity := initArchive(t)
	d := startDaemon(t, dir)
	out, err := exec.Command(swaks, "--server", d.addr, "-tls", "--from", "alice@example.com", "--to", "bob@example.org",
		"--header", "Subject: sent by swaks", "--body", "archived by sealmail").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "<~  250 2.0.0 Ok: queued as 1") {
		t.Fatalf("swaks transcript lacks the 250 with the id:\n%s", out)
	}
	got, errOut, code := cli(t, nil, "get", "1", "--data", dir, "--identity", identity)
	if code != 0 {
		t.Fatalf("get: %s", errOut)
	}
	// swaks printed what it sent, line by line, after " -> ".
	var sent bytes.Buffer
	inData := false
	for _, line := range strings.Split(strings.ReplaceAll(string(out), "\r", ""), "\n") {
		switch {
		case strings.HasPrefix(line, "<~  354"):
			inData = true
		case inData && strings.HasPrefix(line, " ~> ."):
			inData = false
		case inData && strings.HasPrefix(line, " ~> "):
			sent.WriteString(strings.TrimPrefix(line, " ~> ") + "\r\n")
		}
	}
	if sent.Len() == 0 || !bytes.Equal(got, sent.Bytes()) {
		t.Errorf("get returned %q, swaks sent %q", got, sent.Bytes())
	}
}
