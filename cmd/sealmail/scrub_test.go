// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScrubInDaemon: a byte of a sealed segment goes bad while the daemon
// is stopped; the restarted daemon's scrubber finds it, and says so in its
// log, its metrics, `status` and the audit log.
func TestScrubInDaemon(t *testing.T) {
	t.Parallel()
	dir, _ := initArchive(t)
	d := startDaemon(t, dir, "--config", writeConfig(t, "[storage]\nseal_size = \"16KiB\"\n[scrub]\nrate = \"0\"\n"))
	for i := range 6 {
		body := make([]byte, 6000)
		rand.Read(body)
		if code, reply := sendOne(t, d.addr, fmt.Appendf(nil, "Subject: %d\r\n\r\n%s\r\n", i, hex.EncodeToString(body))); code != 250 {
			t.Fatalf("send: %d %s", code, reply)
		}
	}
	d.stop()
	seg := filepath.Join(dir, "segments", "00000001.seg")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-100] ^= 1
	os.Chmod(seg, 0o600)
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(seg, 0o444)

	cfg := writeConfig(t, "[scrub]\nrate = \"64MiB\"\nstart_after = \"1ms\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n")
	d = startDaemon(t, dir, "--config", cfg)
	addr := d.metricsAddr()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, ok := scrape(t, addr)["sealmail_scrub_last_pass_timestamp_seconds"]; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scrub pass ended within 30s: %s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fams := scrape(t, addr)
	if v := value(t, fams, "sealmail_scrub_findings_total"); v != 1 {
		t.Errorf("sealmail_scrub_findings_total = %v, want 1", v)
	}
	if v := value(t, fams, "sealmail_scrub_last_pass_problems"); v < 1 {
		t.Errorf("sealmail_scrub_last_pass_problems = %v", v)
	}
	if v := value(t, fams, "sealmail_scrub_segments_total"); v < 2 {
		t.Errorf("sealmail_scrub_segments_total = %v, want every sealed segment", v)
	}
	if !strings.Contains(d.stderr.String(), "scrub: a sealed segment is damaged") || !strings.Contains(d.stderr.String(), "segment=00000001") {
		t.Errorf("the log does not name the damaged segment:\n%s", d.stderr)
	}
	out, _, code := cli(t, nil, "status", "--data", dir)
	if code != 0 || !strings.Contains(string(out), "scrub:      last full pass") || !strings.Contains(string(out), "WARNING:    scrub found damage: segment 00000001") {
		t.Errorf("status:\n%s", out)
	}
	out, _, _ = cli(t, nil, "audit", "show", "--type", "scrub", "--data", dir)
	if !strings.Contains(string(out), `"phase":"finding"`) || !strings.Contains(string(out), `"segment":"00000001"`) {
		t.Errorf("audit show --type scrub:\n%s", out)
	}
	d.stop()
}
