// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sealmail/sealmail/offsite/offsitetest"
)

// TestOffsiteCLI drives the offsite copy through the real binary and a
// real S3 server (versitygw): the daemon syncs through its control
// socket; with the daemon stopped, `offsite sync` is killed with SIGKILL in
// the middle of its (rate-limited) uploads and run again, after which every
// object is in the bucket exactly once; `verify --offsite` is clean; the
// host is lost, and `restore --from s3` rebuilds the archive from the
// bucket alone: `verify` passes and every message of a sealed segment
// reads back byte-exact through `get --identity`.
func TestOffsiteCLI(t *testing.T) {
	t.Parallel()
	srv := offsitetest.Start(t)
	srv.Bucket(t, "worm", true, "")
	dir, identity := initArchive(t)
	offHost := t.TempDir()
	keep := filepath.Join(offHost, "identity.txt")
	if b, err := os.ReadFile(identity); err != nil || os.WriteFile(keep, b, 0o600) != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(offHost, "s3.toml")
	if err := os.WriteFile(creds, fmt.Appendf(nil, "access_key_id = %q\nsecret_access_key = %q\n", srv.AccessKey, srv.Secret), 0o600); err != nil {
		t.Fatal(err)
	}
	section := fmt.Sprintf("[offsite]\nendpoint = %q\nbucket = \"worm\"\nprefix = \"site-a/\"\ncredentials_file = %q\ninsecure_http = true\nmin_lock = \"2h\"\n", srv.Endpoint, creds)
	cfg := writeConfig(t, "[storage]\nseal_size = \"16KiB\"\n"+section)
	d := startDaemon(t, dir, "--config", cfg)
	sent := map[uint64][]byte{}
	for i := range 12 {
		body := make([]byte, 3000)
		rand.Read(body)
		msg := fmt.Appendf(nil, "Subject: offsite %d\r\n\r\n%s\r\n", i, hex.EncodeToString(body))
		code, reply := sendOne(t, d.addr, msg)
		if code != 250 {
			t.Fatalf("send: %d %s", code, reply)
		}
		id, err := queuedID(reply)
		if err != nil {
			t.Fatal(err)
		}
		sent[id] = msg
	}
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, nil, args...)
		if code != 0 {
			t.Fatalf("sealmail %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return string(out)
	}
	var rep struct {
		Objects  int `json:"objects"`
		Uploaded int `json:"uploaded"`
	}
	if err := json.Unmarshal([]byte(run("offsite", "sync", "--json", "--data", dir)), &rep); err != nil || rep.Objects == 0 {
		t.Fatalf("offsite sync through the daemon: %v %+v", err, rep)
	}
	// More mail, then the daemon stops before it syncs it.
	for i := range 12 {
		msg := fmt.Appendf(nil, "Subject: later %d\r\n\r\n%s\r\n", i, strings.Repeat(fmt.Sprintf("%08d", i), 400))
		code, reply := sendOne(t, d.addr, msg)
		if code != 250 {
			t.Fatalf("send: %d %s", code, reply)
		}
		id, _ := queuedID(reply)
		sent[id] = msg
	}
	d.stop()

	// kill -9 in the middle of a slow sync; then a full one.
	slow := writeConfig(t, "[storage]\nseal_size = \"16KiB\"\n"+section+"rate = \"8KiB\"\n")
	cmd := exec.Command(sealmailBinary(t), "offsite", "sync", "--data", dir, "--config", slow)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || cmd.ProcessState.ExitCode() != -1 {
		t.Fatalf("the slow sync ended before the kill (%v): the test did not cut it short", err)
	}
	run("offsite", "sync", "--data", dir, "--config", cfg)
	out, err := srv.Client().ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: aws.String("worm")})
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, v := range out.Versions {
		per[aws.ToString(v.Key)]++
	}
	for k, n := range per {
		if n != 1 {
			t.Errorf("%s: %d versions after the killed sync and the next, want 1", k, n)
		}
	}
	if out := run("verify", "--offsite", "--data", dir, "--config", cfg); !strings.Contains(out, "OK") {
		t.Errorf("verify --offsite:\n%s", out)
	}
	if out := run("audit", "show", "--type", "offsite", "--data", dir); strings.Count(out, "\n") < 3 || strings.Contains(out, srv.Secret) {
		t.Errorf("audit show --type offsite: want the syncs and the verification, no secret:\n%s", out)
	}

	// The host is lost.
	if err := os.RemoveAll(filepath.Dir(dir)); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	var rr struct {
		NotInBackup []uint64 `json:"not_in_backup"`
	}
	if err := json.Unmarshal([]byte(run("restore", "--from", "s3", "--config", cfg, "--data", restored, "--identity", keep, "--json")), &rr); err != nil {
		t.Fatal(err)
	}
	if out := run("verify", "--data", restored); !strings.Contains(out, "OK") {
		t.Errorf("verify of the restored archive:\n%s", out)
	}
	lost := map[uint64]bool{}
	for _, id := range rr.NotInBackup {
		lost[id] = true
	}
	restoredN := 0
	for id, want := range sent {
		if lost[id] {
			continue
		}
		got, errOut, code := cli(t, nil, "get", fmt.Sprint(id), "--data", restored, "--identity", keep)
		if code != 0 || !bytes.Equal(got, want) {
			t.Errorf("get %d after the restore from s3: exit %d, %d bytes (want %d byte-exact): %s", id, code, len(got), len(want), errOut)
		}
		restoredN++
	}
	if restoredN < len(sent)/2 {
		t.Errorf("%d of %d messages restored (the rest were in the active segment): want most", restoredN, len(sent))
	}
}
