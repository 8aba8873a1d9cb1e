// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealmail/sealmail/smtpd"
)

// TestEveryOperationIsAudited drives each operation that exists (daemon
// start and stop with its configuration, ingest, segment seal, control
// socket calls, authentication, verify, checkpoints) and reads them back
// from the audit log, which must hold no message content and no secret.
func TestEveryOperationIsAudited(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	hash, err := smtpd.HashPassword("s3cret-pass")
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf("[smtp]\n[smtp.users]\nexchange = %q\n[journal]\nusers = [\"exchange\"]\n[storage]\nseal_size = \"2K\"\n[audit]\ncheckpoint_every = 5\n", hash))
	d := startDaemon(t, dir, "--config", cfg)

	c, err := dialSMTP(d.addr, true)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := c.cmd("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00exchange\x00wrong"))); code != 535 {
		t.Errorf("AUTH with a wrong password: %d, want 535", code)
	}
	if code, msg, _ := c.cmd("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00exchange\x00s3cret-pass"))); code != 235 {
		t.Fatalf("AUTH: %d %s", code, msg)
	}
	for i := range 4 {
		msg := fmt.Sprintf("Subject: confidential-subject-%d\r\n\r\nconfidential-body-word %s\r\n", i, strings.Repeat("z", 1500))
		if code, reply, err := c.send("a@example.com", []string{"secret-rcpt@example.org"}, []byte(msg), false); code != 250 {
			t.Fatalf("send: %d %s %v", code, reply, err)
		}
	}
	c.close()
	for _, args := range [][]string{
		{"status"}, {"list"}, {"get", "1", "--identity", identity}, {"audit", "checkpoint"}, {"verify"}, {"audit", "verify"},
	} {
		if _, errOut, code := cli(t, nil, append(args, "--data", dir)...); code != 0 {
			t.Fatalf("sealmail %v: exit %d: %s", args, code, errOut)
		}
	}
	d.stop()

	out, errOut, code := cli(t, nil, "audit", "show", "--json", "--data", dir)
	if code != 0 {
		t.Fatalf("audit show: %s", errOut)
	}
	types := map[string]int{}
	ops := map[string]bool{}
	run, maxRun := 0, 0 // entries between checkpoints
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var e struct {
			Type   string         `json:"type"`
			Actor  string         `json:"actor"`
			Fields map[string]any `json:"fields"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("audit show line %q: %v", line, err)
		}
		types[e.Type]++
		if e.Type == "checkpoint" {
			run = 0
		} else if run++; run > maxRun {
			maxRun = run
		}
		if op, ok := e.Fields["op"].(string); ok && e.Type == "api.call" {
			ops[op] = true
			// Through the daemon the socket's peer; without it (status polled
			// while the daemon starts) the CLI's user.
			uid := fmt.Sprintf("(uid %d", os.Getuid())
			if !(strings.HasPrefix(e.Actor, "socket:") || strings.HasPrefix(e.Actor, "cli:")) || !strings.Contains(e.Actor, uid) {
				t.Errorf("api.call %s by %q, want the socket peer or the CLI user", op, e.Actor)
			}
		}
		if e.Type == "ingest" && (e.Fields["client_ip"] != "127.0.0.1" || e.Fields["tls"] == nil || e.Fields["auth_user"] != "exchange" || e.Fields["record"] == nil) {
			t.Errorf("ingest entry lacks transport facts: %s", line)
		}
	}
	for typ, min := range map[string]int{"config": 2, "daemon.start": 1, "daemon.stop": 1, "ingest": 4, "segment.seal": 1,
		"api.call": 4, "auth.ok": 1, "auth.fail": 1, "verify": 2,
		"checkpoint": 5} { // checkpoint_every = 5
		if types[typ] < min {
			t.Errorf("audit log has %d %s entries, want at least %d (all: %v)", types[typ], typ, min, types)
		}
	}
	if maxRun > 6 {
		t.Errorf("%d entries in a row without a checkpoint, with checkpoint_every = 5", maxRun)
	}
	for _, op := range []string{"status", "list", "get", "checkpoint"} {
		if !ops[op] {
			t.Errorf("no api.call entry for %s", op)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "audit", "*.jsonl"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, secret := range []string{"confidential-subject", "confidential-body-word", "secret-rcpt", "s3cret-pass", string(hash)} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s contains %q: the audit log must hold no content and no secrets", f, secret)
			}
		}
	}
}
