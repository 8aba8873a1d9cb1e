// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// journalLauncher connects stderr to journald's stream socket and sets
// JOURNAL_STREAM to it, as systemd does for a unit, then runs argv.
const journalLauncher = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("/run/systemd/journal/stdout")
s.sendall(b"sealmail-stream\n\n6\n0\n0\n0\n0\n")
st = os.fstat(s.fileno())
os.dup2(s.fileno(), 2)
os.environ["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
os.execv(sys.argv[1], sys.argv[1:])
`

// TestJournaldLogging runs the daemon as systemd would, with stderr on a
// journal stream, against a real systemd-journald (in a private mount
// namespace, so that the host's journal is untouched), delivers a message
// and checks that the daemon's records reached the journal natively with
// their attributes as fields.
func TestJournaldLogging(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root: a private mount namespace for journald")
	}
	needTool(t, "journalctl", "systemd")
	needTool(t, "python3", "python3")
	journald := "/lib/systemd/systemd-journald"
	if _, err := os.Stat(journald); err != nil {
		needTool(t, "systemd-journald", "systemd")
	}
	dir, _ := initArchive(t)
	work := t.TempDir()
	launcher := filepath.Join(work, "launch.py")
	os.WriteFile(launcher, []byte(journalLauncher), 0o600)
	stop, out := filepath.Join(work, "stop"), filepath.Join(work, "journal.json")
	script := fmt.Sprintf(`set -e
mount -t tmpfs tmpfs /run
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
mkdir -p /run/systemd/journal /run/log/journal
%s & J=$!
for i in $(seq 100); do [ -S /run/systemd/journal/stdout ] && break; sleep 0.05; done
python3 %s %s serve --data %s --smtp 127.0.0.1:0 & S=$!
for i in $(seq 600); do [ -e %s ] && break; sleep 0.1; done
kill -TERM $S; wait $S || true
journalctl -D /run/log/journal -o json --no-pager > %s
kill $J; wait $J || true
`, journald, launcher, sealmailBinary(t), dir, stop, out)
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "bash", "-c", script)
	stderr := &lockedWriter{w: new(bytes.Buffer)}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		os.WriteFile(stop, nil, 0o600)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	})
	// The daemon's control socket is in DIR, outside the namespace.
	var addr string
	for deadline := time.Now().Add(30 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, _, code := cli(t, nil, "status", "--json", "--data", dir)
		var st struct {
			Listeners []string `json:"listeners"`
		}
		if code == 0 && json.Unmarshal(b, &st) == nil {
			for _, l := range st.Listeners {
				if a, ok := strings.CutPrefix(l, "smtp "); ok {
					addr = a
				}
			}
		}
	}
	if addr == "" {
		t.Fatalf("the daemon did not come up under journald: %s", stderr.String())
	}
	code, reply := sendOne(t, addr, []byte("Subject: journald\r\n\r\nhello\r\n"))
	if code != 250 {
		t.Fatalf("send: %d %s", code, reply)
	}
	id, _ := queuedID(reply)
	os.WriteFile(stop, nil, 0o600)
	select {
	case <-done:
		if waitErr != nil {
			t.Fatalf("namespace script: %v: %s", waitErr, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the namespace script did not end")
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var serving, accepted, stream map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) != nil || e["SYSLOG_IDENTIFIER"] != "sealmail" && e["SYSLOG_IDENTIFIER"] != "sealmail-stream" {
			continue
		}
		switch {
		case e["SYSLOG_IDENTIFIER"] == "sealmail-stream":
			stream = e
		case e["MESSAGE"] == "sealmail serving":
			serving = e
		case e["MESSAGE"] == "smtp message accepted":
			accepted = e
		}
	}
	if serving == nil || accepted == nil {
		t.Fatalf("the journal lacks the daemon's records:\n%s", b)
	}
	if serving["_TRANSPORT"] != "journal" || serving["PRIORITY"] != "6" || serving["DATA"] != dir || !strings.Contains(fmt.Sprint(serving["LISTENERS"]), "smtp 127.0.0.1:") {
		t.Errorf("the start record is not native with its fields: %v", serving)
	}
	if accepted["ID"] != fmt.Sprint(id) || accepted["SIZE"] == nil || accepted["REMOTE"] == nil {
		t.Errorf("the delivery record lacks its fields (id %d): %v", id, accepted)
	}
	if stream != nil {
		t.Errorf("the daemon also wrote text to its stderr stream: %v", stream["MESSAGE"])
	}
}
