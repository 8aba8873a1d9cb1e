// SPDX-License-Identifier: Apache-2.0

package main

import (
	"strings"
	"testing"
	"time"
)

// TestPurgeCommand runs purge through the daemon: a dry run as of a future
// date lists the unheld message whose retention will have ended; a real
// purge now deletes nothing still retained.
func TestPurgeCommand(t *testing.T) {
	t.Parallel()
	dir, _ := initArchive(t)
	d := startDaemon(t, dir, "--config", writeConfig(t, "[retention.default]\nname = \"short\"\nkeep = \"1d\"\n"))
	var last uint64
	for _, subj := range []string{"routine", "evidence"} {
		code, reply := sendOne(t, d.addr, []byte("Subject: "+subj+"\r\n\r\nx\r\n"))
		if code != 250 {
			t.Fatalf("send: %d %s", code, reply)
		}
		last, _ = queuedID(reply)
	}
	waitIndexed(t, dir, last)
	if _, errOut, code := cli(t, nil, "hold", "create", "keep-evidence", "--query", "subject:evidence", "--reason", "case 9", "--data", dir); code != 0 {
		t.Fatal(errOut)
	}
	future := time.Now().UTC().AddDate(0, 0, 3).Format(time.DateOnly)
	out, errOut, code := cli(t, nil, "purge", "--dry-run", "--as-of", future, "--data", dir)
	if code != 0 || !strings.Contains(string(out), "would delete 1 messages") || !strings.Contains(string(out), "ids: [1]") || !strings.Contains(string(out), "kept, held: 1") {
		t.Errorf("purge --dry-run --as-of %s: exit %d:\n%s%s", future, code, out, errOut)
	}
	out, errOut, code = cli(t, nil, "purge", "--data", dir)
	if code != 0 || !strings.Contains(string(out), "deleted 0 messages") || !strings.Contains(string(out), "kept, retained: 1") {
		t.Errorf("purge: exit %d:\n%s%s", code, out, errOut)
	}
	if _, errOut, code := cli(t, nil, "purge", "--as-of", future, "--data", dir); code != exitUsage {
		t.Errorf("purge --as-of without --dry-run: exit %d %s", code, errOut)
	}
	// Erasure: refused while retained; with the override the unheld one
	// goes, the held one stays.
	out, errOut, code = cli(t, nil, "erase", "--query", "*", "--reason", "Art. 17 #3", "--data", dir)
	if code != 0 || !strings.Contains(string(out), "erased 0 messages") || strings.Count(string(out), "refused ") != 2 {
		t.Errorf("erase: exit %d:\n%s%s", code, out, errOut)
	}
	out, errOut, code = cli(t, nil, "erase", "--query", "*", "--reason", "Art. 17 #3", "--override-retention", "--data", dir)
	if code != 0 || !strings.Contains(string(out), "erased 1 messages") || !strings.Contains(string(out), "keep-evidence") {
		t.Errorf("erase --override-retention: exit %d:\n%s%s", code, out, errOut)
	}
}
