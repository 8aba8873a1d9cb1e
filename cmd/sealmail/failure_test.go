// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/smtpd"
	"github.com/sealmail/sealmail/store"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sealmail.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sendOne(t *testing.T, addr string, msg []byte) (int, string) {
	t.Helper()
	c, err := dialSMTP(addr, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	code, reply, err := c.send("a@example.com", []string{"b@example.org"}, msg, false)
	if err != nil && code == 0 {
		t.Fatalf("send: %v", err)
	}
	return code, reply
}

func TestSizeLimit(t *testing.T) {
	t.Parallel()
	dir, _ := initArchive(t)
	d := startDaemon(t, dir, "--config", writeConfig(t, "[smtp]\nmax_message_size = \"64K\"\n"))
	code, reply := sendOne(t, d.addr, append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte("0123456789abcde\r\n"), 8<<10)...))
	if code != 552 || !strings.HasPrefix(reply, "5.3.4") {
		t.Errorf("oversized message: %d %s, want 552 5.3.4", code, reply)
	}
	if code, reply := sendOne(t, d.addr, []byte("Subject: small\r\n\r\nok\r\n")); code != 250 {
		t.Errorf("small message after the refusal: %d %s", code, reply)
	}
}

func TestFreeSpaceFloor(t *testing.T) {
	t.Parallel()
	dir, _ := initArchive(t)
	d := startDaemon(t, dir, "--config", writeConfig(t, "[storage]\nmin_free = \"1000000T\"\n"))
	c, err := dialSMTP(d.addr, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	code, reply, _ := c.cmd("MAIL FROM:<a@example.com>")
	if code != 452 || !strings.HasPrefix(reply, "4.3.1") {
		t.Errorf("MAIL with free space below the floor: %d %s, want 452 4.3.1", code, reply)
	}
}

// TestDiskFull runs the daemon on a small tmpfs with the free-space floor
// off, so that writes really fail with ENOSPC. Senders must get 4xx, never
// 5xx and never a 250 for a message that is not stored; every acknowledged
// message must survive a restart.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	t.Parallel()
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount tmpfs (CI runs as root): %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here (needs root): %v", err)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	dir := filepath.Join(mnt, "archive")
	x, _ := age.GenerateX25519Identity()
	if _, errOut, code := cli(t, nil, "init", "--data", dir, "--recipient", x.Recipient().String()); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	d := startDaemon(t, dir, "--config", writeConfig(t, "[storage]\nmin_free = \"0\"\n"))
	var acked []uint64
	full := false
	rng := rand.NewChaCha8([32]byte{1})
	for i := 0; i < 400 && !full; i++ {
		// Incompressible, so the store really fills.
		body := make([]byte, 100<<10)
		rng.Read(body)
		msg := append([]byte(fmt.Sprintf("Subject: fill %d\r\n\r\n", i)), []byte(fmt.Sprintf("%x\r\n", body))...)
		code, reply := sendOne(t, d.addr, msg)
		switch {
		case code == 250:
			id, _ := queuedID(reply)
			acked = append(acked, id)
		case code == 452 || code == 451:
			full = true
		default:
			t.Fatalf("message %d on a full disk: %d %s, want 250 or 4xx", i, code, reply)
		}
	}
	if !full {
		t.Fatal("the 6 MiB tmpfs never filled")
	}
	// A restart on the full disk: the daemon starts (it audits its start
	// once it can), and status says what is wrong.
	d.stop()
	d = startDaemon(t, dir, "--config", writeConfig(t, "[storage]\nmin_free = \"0\"\n"))
	// (Some bytes may be left after the failed write was cut back: then
	// the start was audited and there is nothing to warn about.)
	if out, _, _ := cli(t, nil, "status", "--data", dir); strings.Contains(d.stderr.String(), "start is audited once space is free") &&
		!bytes.Contains(out, []byte("storage full")) {
		t.Errorf("status on the full disk does not say so:\n%s", out)
	}
	// Free space (README: "free space; nothing else to do"): the running
	// daemon takes mail again without a restart.
	if out, err := exec.Command("mount", "-o", "remount,size=16m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v %s", err, out)
	}
	code, reply := sendOne(t, d.addr, []byte("Subject: space again\r\n\r\nx\r\n"))
	if code != 250 {
		t.Fatalf("after space was freed: %d %s, want 250 without a restart", code, reply)
	}
	id, _ := queuedID(reply)
	acked = append(acked, id)
	d.stop()
	d = startDaemon(t, dir, "--config", writeConfig(t, "[storage]\nmin_free = \"0\"\n"))
	out, errOut, _ := cli(t, nil, "list", "--json", "--data", dir)
	if n := bytes.Count(out, []byte("\n")); n != len(acked) {
		t.Errorf("after restart %d messages listed, %d were acknowledged (%s)", n, len(acked), errOut)
	}
	c, _ := dialSMTP(d.addr, true)
	c.close()
	t.Logf("%d messages acknowledged before the disk was full", len(acked))
}

// failingFile fails writes on demand.
type failingFile struct {
	store.File
	fail *atomic.Bool
}

func (f failingFile) Write(b []byte) (int, error) {
	if f.fail.Load() {
		return 0, syscall.EIO
	}
	return f.File.Write(b)
}

// TestInjectedWriteFailure runs the real SMTP receiver on a real archive
// whose segment writes fail with EIO: the sender gets 451 4.3.0, and no
// catalog entry is made.
func TestInjectedWriteFailure(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	x, _ := age.GenerateX25519Identity()
	a, err := archive.Create(t.TempDir(), []string{x.Recipient().String()}, archive.Options{
		MinFreeBytes: -1,
		Store: store.Options{OpenFile: func(name string, flag int, perm os.FileMode) (store.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			if err != nil {
				return nil, err
			}
			return failingFile{File: f, fail: &fail}, nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cert, err := smtpd.LoadOrCreateCertificate(filepath.Join(t.TempDir(), "c.pem"), filepath.Join(t.TempDir(), "k.pem"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtpd.New(a, smtpd.Options{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()

	if code, reply := sendOne(t, l.Addr().String(), []byte("Subject: ok\r\n\r\nfirst\r\n")); code != 250 {
		t.Fatalf("first message: %d %s", code, reply)
	}
	fail.Store(true)
	if code, reply := sendOne(t, l.Addr().String(), []byte("Subject: fails\r\n\r\nsecond\r\n")); code != 451 || !strings.HasPrefix(reply, "4.3.0") {
		t.Errorf("message during write failure: %d %s, want 451 4.3.0", code, reply)
	}
	rows, err := a.List(context.Background(), archive.ListOptions{})
	if err != nil || len(rows) != 1 {
		t.Errorf("catalog after failure: %d rows, %v; want only the first message", len(rows), err)
	}
	fail.Store(false)
	if code, reply := sendOne(t, l.Addr().String(), []byte("Subject: ok again\r\n\r\nthird\r\n")); code != 250 {
		t.Errorf("message after the failure cleared: %d %s", code, reply)
	}
	if _, err := a.Get(context.Background(), 2); err != nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(2) after recovery: %v", err)
	}
}
