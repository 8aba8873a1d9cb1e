// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreDrill is the restore drill of docs/operations.md, run against
// a real daemon with real SMTP deliveries: back up while it runs, deliver
// more, purge an expired message through the reader, back up again (incrementally), check the
// backup without the archive, destroy the archive, restore it, verify it
// against a checkpoint kept off the host, and read every message back
// byte-exact through `get --identity`, the purged one deleted.
func TestRestoreDrill(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	// The identity and the checkpoints live off the host.
	offHost := t.TempDir()
	keep := filepath.Join(offHost, "identity.txt")
	if b, err := os.ReadFile(identity); err != nil || os.WriteFile(keep, b, 0o600) != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "nas")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "[storage]\nseal_size = \"16KiB\"\n[retention.default]\nname = \"short\"\nkeep = \"1d\"\n")
	d := startDaemon(t, dir, "--config", cfg)
	sent := map[uint64][]byte{}
	send := func(n int) uint64 {
		t.Helper()
		var last uint64
		for i := range n {
			// Incompressible, so that segments fill and seal.
			body := make([]byte, 3000)
			rand.Read(body)
			msg := []byte(fmt.Sprintf("Subject: drill %d\r\nX-Seq: %d\r\n\r\n%s\r\n", len(sent), i, hex.EncodeToString(body)))
			code, reply := sendOne(t, d.addr, msg)
			if code != 250 {
				t.Fatalf("send: %d %s", code, reply)
			}
			id, err := queuedID(reply)
			if err != nil {
				t.Fatal(err)
			}
			sent[id], last = msg, id
		}
		return last
	}
	send(8)
	// An old message imported from an mbox: its retention (1 day from its
	// delivery in 2001) is over, so the purge below deletes it.
	mbox := filepath.Join(t.TempDir(), "old.mbox")
	os.WriteFile(mbox, []byte("From old@example.com Mon Jan  1 10:00:00 2001\nSubject: expired\n\nlong gone\n"), 0o600)
	if s := runImportCLI(t, dir, "--mbox", mbox, "--owner", "old@example.com"); s.Stored != 1 {
		t.Fatalf("import: %+v", s)
	}
	expired := lastID(t, dir)
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, nil, args...)
		if code != 0 {
			t.Fatalf("sealmail %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return string(out)
	}
	cp := filepath.Join(offHost, "checkpoints.txt")
	if err := os.WriteFile(cp, []byte(run("audit", "checkpoint", "--data", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	first := backupJSON(t, run("backup", "--json", "--to", target, "--data", dir))
	if first.Backup != 1 || first.Copied == 0 {
		t.Fatalf("first backup: %+v", first)
	}

	send(6)
	// The reader decides the purge: every message indexed, holds checked.
	r := startReader(t, dir, "", "--identity", identity)
	r.caughtUp()
	if out, errOut, code := r.cli("purge"); code != 0 || !strings.Contains(string(out), "deleted 1 messages") {
		t.Fatalf("purge: exit %d: %s%s", code, out, errOut)
	}
	r.stop()
	send(2)
	second := backupJSON(t, run("backup", "--json", "--to", target, "--data", dir))
	if second.Backup != 2 || second.Reused == 0 || second.Copied >= first.Copied+second.Reused {
		t.Errorf("second backup not incremental: %+v (first copied %d)", second, first.Copied)
	}
	if out := run("verify", "--backup", target, "--checkpoint", cp, "--identity", keep); !strings.Contains(out, "OK") ||
		!strings.Contains(out, "extends 1 of 1 external checkpoints") {
		t.Errorf("verify --backup:\n%s", out)
	}
	// Both backups are in the audit log.
	if n := strings.Count(run("audit", "show", "--type", "backup", "--data", dir), "\n"); n != 2 {
		t.Errorf("audit show --type backup: %d entries, want 2", n)
	}
	d.stop()

	// The host is lost.
	if err := os.RemoveAll(filepath.Dir(dir)); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	out := run("restore", "--from", target, "--data", restored, "--identity", keep)
	if !strings.Contains(out, "restored backup 2") {
		t.Errorf("restore: %s", out)
	}
	if _, err := os.Stat(filepath.Join(restored, "identity.txt")); !os.IsNotExist(err) {
		t.Errorf("the identity came back from the backup: %v", err)
	}
	if out := run("verify", "--data", restored, "--checkpoint", cp); !strings.Contains(out, "OK") ||
		!strings.Contains(out, "extends 1 of 1 external checkpoints") {
		t.Errorf("verify of the restored archive:\n%s", out)
	}

	d = startDaemon(t, restored, "--config", cfg)
	for id, want := range sent {
		got, errOut, code := cli(t, nil, "get", fmt.Sprint(id), "--data", restored, "--identity", keep)
		if code != 0 || !bytes.Equal(got, want) {
			t.Errorf("get %d after the restore: exit %d, %d bytes (want %d byte-exact): %s", id, code, len(got), len(want), errOut)
		}
	}
	if _, errOut, code := cli(t, nil, "get", fmt.Sprint(expired), "--data", restored, "--identity", keep); code != exitNotFound || !strings.Contains(errOut, "deleted") {
		t.Errorf("get of the purged message %d after the restore: exit %d %s, want %d (deleted)", expired, code, errOut, exitNotFound)
	}
	if next := send(1); next <= expired || sent[next] == nil {
		t.Errorf("a message after the restore got id %d", next)
	}
	d.stop()
}

type backupReportJSON struct {
	Backup uint64 `json:"backup"`
	Copied int64  `json:"copied_bytes"`
	Reused int64  `json:"reused_bytes"`
}

func backupJSON(t *testing.T, out string) backupReportJSON {
	t.Helper()
	var r backupReportJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("backup --json: %v: %s", err, out)
	}
	return r
}

func lastID(t *testing.T, dir string) uint64 {
	t.Helper()
	out, errOut, code := cli(t, nil, "status", "--json", "--data", dir)
	var st struct {
		LastID uint64 `json:"last_id"`
	}
	if code != 0 || json.Unmarshal(out, &st) != nil {
		t.Fatalf("status: %s", errOut)
	}
	return st.LastID
}
