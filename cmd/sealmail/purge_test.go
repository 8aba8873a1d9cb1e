// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestPurgeCommand runs purge through the reader: a dry run as of a
// future date lists the unheld message whose retention will have ended; a
// real purge now deletes nothing still retained; erasure (with four eyes
// off: root erases at once) refuses held and retained mail.
func TestPurgeCommand(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	d := startDaemon(t, dir, "--config", writeConfig(t, "[retention.default]\nname = \"short\"\nkeep = \"1d\"\n"))
	r := startReader(t, dir, "", "--identity", identity, "--config", writeConfig(t, "[access.four_eyes]\nerase = false\n"))
	for _, subj := range []string{"routine", "evidence"} {
		code, reply := sendOne(t, d.addr, []byte("Subject: "+subj+"\r\n\r\nx\r\n"))
		if code != 250 {
			t.Fatalf("send: %d %s", code, reply)
		}
	}
	r.caughtUp()
	if _, errOut, code := r.cli("hold", "create", "keep-evidence", "--query", "subject:evidence", "--reason", "case 9"); code != 0 {
		t.Fatal(errOut)
	}
	future := time.Now().UTC().AddDate(0, 0, 3).Format(time.DateOnly)
	out, errOut, code := r.cli("purge", "--dry-run", "--as-of", future)
	if code != 0 || !strings.Contains(string(out), "would delete 1 messages") || !strings.Contains(string(out), "ids: 1\n") || !strings.Contains(string(out), "kept, held: 1") {
		t.Errorf("purge --dry-run --as-of %s: exit %d:\n%s%s", future, code, out, errOut)
	}
	// Now both are retained ("held" counts what a hold keeps of what is
	// due).
	out, errOut, code = r.cli("purge")
	if code != 0 || !strings.Contains(string(out), "deleted 0 messages") || !strings.Contains(string(out), "kept, retained: 2") {
		t.Errorf("purge: exit %d:\n%s%s", code, out, errOut)
	}
	if _, errOut, code := r.cli("purge", "--as-of", future); code != exitUsage {
		t.Errorf("purge --as-of without --dry-run: exit %d %s", code, errOut)
	}
	// Erasure: refused while retained, which exits 3; a dry run changes
	// nothing; with the override the unheld one goes, the held one stays.
	out, errOut, code = r.cli("erase", "--query", "*", "--reason", "Art. 17 #3")
	if code != exitProblems || !strings.Contains(string(out), "erased 0 messages") || strings.Count(string(out), "refused ") != 2 ||
		!strings.Contains(errOut, "erase refused 2 of 2 messages") {
		t.Errorf("erase: exit %d, want %d:\n%s%s", code, exitProblems, out, errOut)
	}
	out, errOut, code = r.cli("erase", "--query", "*", "--reason", "Art. 17 #3", "--override-retention", "--dry-run", "--json")
	var rep struct {
		DryRun  bool     `json:"dry_run"`
		Erased  []uint64 `json:"erased"`
		Refused []struct {
			ID  uint64 `json:"id"`
			Why string `json:"why"`
		} `json:"refused"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || code != exitProblems || !rep.DryRun || len(rep.Erased) != 1 || rep.Erased[0] != 1 ||
		len(rep.Refused) != 1 || rep.Refused[0].ID != 2 {
		t.Errorf("erase --dry-run --json: exit %d, %v:\n%s%s", code, err, out, errOut)
	}
	if out, _, _ := cli(t, nil, "list", "--data", dir); strings.Count(string(out), " live ") != 2 {
		t.Errorf("erase --dry-run deleted messages:\n%s", out)
	}
	out, errOut, code = r.cli("erase", "--query", "*", "--reason", "Art. 17 #3", "--override-retention")
	if code != exitProblems || !strings.Contains(string(out), "erased 1 messages (audit entry") || !strings.Contains(string(out), ": 1\n") ||
		!strings.Contains(string(out), "keep-evidence") {
		t.Errorf("erase --override-retention: exit %d:\n%s%s", code, out, errOut)
	}
	out, errOut, code = r.cli("erase", "--query", "subject:routine", "--reason", "Art. 17 #3")
	if code != 0 || !strings.Contains(string(out), "erased 0 messages") {
		t.Errorf("erase of nothing left: exit %d, want 0:\n%s%s", code, out, errOut)
	}
}

// TestHoldOnLaterReceipt: the same message journaled twice, the second
// time for carol: a hold on carol (who is in no header and only in the
// second receipt's envelope) covers it, so a purge keeps it, through real
// receiver and reader processes.
func TestHoldOnLaterReceipt(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	d := startDaemon(t, dir, "--config", writeConfig(t, "[retention.default]\nname = \"short\"\nkeep = \"1d\"\n"))
	r := startReader(t, dir, "", "--identity", identity)
	minutes := []byte("From: ceo@example.com\r\nTo: board@example.com\r\nSubject: board minutes\r\n\r\nconfidential\r\n")
	a := sendMany(t, d.addr, "ceo@example.com", []string{"alice@example.org"}, [][]byte{minutes})[0]
	b := sendMany(t, d.addr, "ceo@example.com", []string{"bob@example.org"}, [][]byte{[]byte("Subject: lunch\r\n\r\npizza\r\n")})[0]
	if again := sendMany(t, d.addr, "ceo@example.com", []string{"carol@example.org"}, [][]byte{minutes})[0]; again != a {
		t.Fatalf("the second copy got id %d, want a receipt of %d", again, a)
	}
	r.caughtUp()
	if out, errOut, code := r.cli("hold", "create", "carol", "--query", "to:carol@example.org", "--reason", "case 12"); code != 0 || !strings.Contains(string(out), "1 messages match") {
		t.Fatalf("hold create: exit %d: %s%s", code, out, errOut)
	}
	future := time.Now().UTC().AddDate(0, 0, 3).Format(time.DateOnly)
	out, errOut, code := r.cli("purge", "--dry-run", "--as-of", future, "--json")
	var rep struct {
		Deleted []uint64       `json:"deleted"`
		Kept    map[string]int `json:"kept"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || code != 0 || len(rep.Deleted) != 1 || rep.Deleted[0] != b || rep.Kept["held"] != 1 {
		t.Fatalf("purge --dry-run --as-of %s: exit %d, %v: %s%s; want only %d, the held one kept", future, code, err, out, errOut, b)
	}
	r.stop()
	d.stop()
}
