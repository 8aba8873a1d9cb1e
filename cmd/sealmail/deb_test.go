// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// debTestMarker exists while TestDebianPackage has its package installed:
// a run killed before its cleanup leaves it, and the next run purges the
// package it finds installed only then.
const debTestMarker = "/var/tmp/sealmail-deb-test.installed"

// debPackageFiles are paths the package must hold, with their mode.
var debPackageFiles = map[string]string{
	"./usr/bin/sealmail":                                  "-rwxr-xr-x",
	"./usr/lib/systemd/system/sealmail.service":           "-rw-r--r--",
	"./usr/lib/systemd/system/sealmail-access.service":    "-rw-r--r--",
	"./usr/lib/sysusers.d/sealmail.conf":                  "-rw-r--r--",
	"./usr/lib/tmpfiles.d/sealmail.conf":                  "-rw-r--r--",
	"./etc/sealmail/sealmail.toml":                        "-rw-r--r--",
	"./usr/share/man/man1/sealmail.1.gz":                  "-rw-r--r--",
	"./usr/share/man/man1/sealmail-serve.1.gz":            "-rw-r--r--",
	"./usr/share/man/man1/sealmail-audit-verify.1.gz":     "-rw-r--r--",
	"./usr/share/bash-completion/completions/sealmail":    "-rw-r--r--",
	"./usr/share/zsh/vendor-completions/_sealmail":        "-rw-r--r--",
	"./usr/share/fish/vendor_completions.d/sealmail.fish": "-rw-r--r--",
	"./usr/share/doc/sealmail/README.md":                  "-rw-r--r--",
	"./usr/share/doc/sealmail/README.Debian":              "-rw-r--r--",
	"./usr/share/doc/sealmail/copyright":                  "-rw-r--r--",
	"./usr/share/doc/sealmail/changelog.Debian.gz":        "-rw-r--r--",
	"./usr/share/doc/sealmail/docs/operations.md":         "-rw-r--r--",
	"./usr/share/doc/sealmail/docs/format.md":             "-rw-r--r--",
	"./usr/share/lintian/overrides/sealmail":              "-rw-r--r--",
}

// TestDebianPackage builds the package with `make deb`, checks it with
// dpkg-deb and lintian, installs it, runs the installed daemon as the
// sealmail user against a test archive, delivers a message with swaks,
// removes the package (the data stays) and purges it. It needs root and
// changes the machine (a package, two system users, /var/lib/sealmail); it
// undoes all of it, also on failure.
func TestDebianPackage(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("TestDebianPackage installs a package: CI runs the tests as root")
		}
		t.Skip("installing a package needs root")
	}
	tool := map[string]string{}
	for name, pkg := range map[string]string{
		"make": "make", "dpkg": "dpkg", "dpkg-deb": "dpkg", "dpkg-query": "dpkg", "lintian": "lintian",
		"swaks": "swaks", "setpriv": "util-linux", "runuser": "util-linux", "userdel": "passwd", "groupdel": "passwd",
	} {
		tool[name] = needTool(t, name, pkg)
	}
	// Everything below is bounded by this context.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	run := func(name string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.CommandContext(ctx, tool[name], args...)
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out), err
	}
	must := func(name string, args ...string) string {
		t.Helper()
		out, err := run(name, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	asSealmail := func(args ...string) (string, error) {
		return run("runuser", append([]string{"-u", "sealmail", "--", "/usr/bin/sealmail"}, args...)...)
	}

	lockDebTest(t, ctx)
	if st, _ := run("dpkg-query", "-W", "-f=${Status}", "sealmail"); strings.Contains(st, "installed") {
		// A run that was killed before its cleanup (its marker says so)
		// left its package behind: purge it. Any other package is not ours
		// to remove.
		if _, err := os.Stat(debTestMarker); err != nil {
			t.Fatalf("a sealmail package is installed here (%s) and no %s says an earlier run of this test installed it: this test would remove it", st, debTestMarker)
		}
		t.Logf("purging the package an interrupted run of this test left installed (%s)", st)
		must("dpkg", "--purge", "sealmail")
	}
	// The directories the package makes (tmpfiles.d), which the cleanup
	// removes if they were not there before (they are empty then).
	hadDir := map[string]bool{}
	for _, d := range []string{"/var/lib/sealmail", "/var/lib/sealmail-access", "/run/sealmail"} {
		_, err := os.Stat(d)
		hadDir[d] = err == nil
	}
	hadUser := map[string]bool{}
	for _, u := range []string{"sealmail", "sealmail-access"} {
		_, err := user.Lookup(u)
		hadUser[u] = err == nil
	}
	work, err := os.MkdirTemp("", "sealmail-deb-")
	if err != nil {
		t.Fatal(err)
	}
	// Cleanup: purge the package, then take away what the test created
	// (only what did not exist before it ran).
	t.Cleanup(func() {
		cleanCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		undo := func(name string, args ...string) {
			if out, err := exec.CommandContext(cleanCtx, tool[name], args...).CombinedOutput(); err != nil {
				t.Errorf("cleanup: %s %v: %v\n%s", name, args, err, out)
			}
		}
		if st, _ := exec.CommandContext(cleanCtx, tool["dpkg-query"], "-W", "-f=${Status}", "sealmail").Output(); len(st) > 0 && !strings.Contains(string(st), "not-installed") {
			undo("dpkg", "--purge", "sealmail")
		}
		if st, _ := exec.CommandContext(cleanCtx, tool["dpkg-query"], "-W", "-f=${Status}", "sealmail").Output(); len(st) == 0 || strings.Contains(string(st), "not-installed") {
			if err := os.Remove(debTestMarker); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cleanup: %v", err)
			}
		}
		if err := os.RemoveAll(work); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for dir, had := range hadDir {
			if had {
				continue
			}
			if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cleanup: %v", err)
			}
		}
		for _, u := range []string{"sealmail-access", "sealmail"} {
			if hadUser[u] {
				continue
			}
			if _, err := user.Lookup(u); err == nil {
				undo("userdel", u)
			}
			if _, err := user.LookupGroup(u); err == nil {
				undo("groupdel", u)
			}
		}
	})

	// Build.
	dist := filepath.Join(work, "dist")
	start := time.Now()
	out := must("make", "-C", "../..", "--no-print-directory", "deb", "DIST="+dist)
	debs, _ := filepath.Glob(filepath.Join(dist, "sealmail_*_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %v in %s:\n%s", debs, dist, out)
	}
	deb := debs[0]
	version := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(deb), "sealmail_"), "_amd64.deb")
	if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*-1$`).MatchString(version) {
		t.Errorf("package version %q is not <upstream>-1 in Debian's syntax", version)
	}
	fi, err := os.Stat(deb)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s (%d bytes) in %v", filepath.Base(deb), fi.Size(), time.Since(start).Round(time.Second))

	// What the package says and holds.
	info := must("dpkg-deb", "--info", deb)
	for _, want := range []string{"Package: sealmail\n", "Version: " + version + "\n", "Architecture: amd64\n", "Depends: adduser\n", "Section: mail\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
		}
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		if !regexp.MustCompile(`(?m)^\s+\d+ bytes,\s+\d+ lines\s+\*\s+` + script + `\s+#!/bin/sh$`).MatchString(info) {
			t.Errorf("dpkg-deb --info: no executable %s:\n%s", script, info)
		}
	}
	if conffiles := must("dpkg-deb", "--info", deb, "conffiles"); conffiles != "/etc/sealmail/sealmail.toml\n" {
		t.Errorf("conffiles are %q, want /etc/sealmail/sealmail.toml alone", conffiles)
	}
	contents := map[string]string{}
	for _, line := range strings.Split(must("dpkg-deb", "--contents", deb), "\n") {
		f := strings.Fields(line)
		if len(f) == 6 {
			if f[1] != "root/root" {
				t.Errorf("%s belongs to %s, want root/root", f[5], f[1])
			}
			contents[f[5]] = f[0]
		}
	}
	for path, mode := range debPackageFiles {
		if got, ok := contents[path]; !ok {
			t.Errorf("the package lacks %s", path)
		} else if got != mode {
			t.Errorf("%s: mode %s, want %s", path, got, mode)
		}
	}
	for path := range contents {
		if strings.HasPrefix(path, "./var/") || strings.HasPrefix(path, "./usr/local/") {
			t.Errorf("the package ships %s: /var/lib/sealmail is made by postinst, nothing goes to /usr/local", path)
		}
	}

	// lintian: no tag of any level that packaging/deb/lintian-overrides
	// does not justify.
	lint, err := run("lintian", "--display-info", "--pedantic", "--fail-on", "error,warning,info,pedantic", deb)
	if tags := regexp.MustCompile(`(?m)^[EWIPX]: .*$`).FindAllString(lint, -1); err != nil || len(tags) > 0 {
		t.Errorf("lintian: %v, tags:\n%s", err, strings.Join(tags, "\n"))
	}
	if t.Failed() {
		t.FailNow()
	}

	// Install: users, directory, nothing started or enabled. The marker
	// first, so that a run killed from here on is known by the next.
	if err := os.WriteFile(debTestMarker, []byte(version+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must("dpkg", "-i", deb)
	sm, err := user.Lookup("sealmail")
	if err != nil {
		t.Fatalf("after dpkg -i: %v", err)
	}
	if _, err := user.Lookup("sealmail-access"); err != nil {
		t.Errorf("after dpkg -i: %v", err)
	}
	uid, _ := strconv.Atoi(sm.Uid)
	gid, _ := strconv.Atoi(sm.Gid)
	checkVarLib := func(when string) {
		t.Helper()
		st, err := os.Stat("/var/lib/sealmail")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if !st.IsDir() || st.Mode().Perm() != 0o700 || int(sys.Uid) != uid || int(sys.Gid) != gid {
			t.Errorf("%s: /var/lib/sealmail is %v owned by %d:%d, want a directory 0700 owned by sealmail (%d:%d)", when, st.Mode(), sys.Uid, sys.Gid, uid, gid)
		}
	}
	checkVarLib("after dpkg -i")
	if _, err := os.Lstat("/etc/systemd/system/multi-user.target.wants/sealmail.service"); err == nil {
		t.Errorf("dpkg -i enabled sealmail.service: it must start nothing until configured")
	}
	if v := must("runuser", "-u", "sealmail", "--", "/usr/bin/sealmail", "--version"); !strings.Contains(v, version[:len(version)-2]) {
		t.Errorf("sealmail --version says %q, want the package version %s", v, version)
	}
	unit, err := os.ReadFile("/usr/lib/systemd/system/sealmail.service")
	if err != nil || !bytes.Contains(unit, []byte("\nExecStart=/usr/bin/sealmail serve --config /etc/sealmail/sealmail.toml\n")) {
		t.Errorf("installed unit does not run /usr/bin/sealmail (%v):\n%s", err, unit)
	}
	copyright, err := os.ReadFile("/usr/share/doc/sealmail/copyright")
	for _, want := range []string{"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n", "\nLicense: Apache-2.0\n", "\nFiles: third_party/go-smtp/*\n", "\nLicense: Expat\n Permission is hereby granted"} {
		if err != nil || !bytes.Contains(copyright, []byte(want)) {
			t.Errorf("copyright lacks %q (%v)", want, err)
		}
	}

	// A test archive owned by sealmail, served by the installed daemon
	// running as sealmail, with the installed configuration.
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(work, "archive")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, uid, gid); err != nil {
		t.Fatal(err)
	}
	if out, err := asSealmail("init", "--data", data); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(out, filepath.Join(data, "identity.txt")) {
		t.Errorf("init did not say where the identity is:\n%s", out)
	}
	var logb lockedWriter
	logb.w = new(bytes.Buffer)
	daemon := exec.CommandContext(ctx, tool["setpriv"], "--reuid", "sealmail", "--regid", "sealmail", "--init-groups",
		"/usr/bin/sealmail", "serve", "--config", "/etc/sealmail/sealmail.toml", "--data", data, "--smtp", "127.0.0.1:0")
	daemon.Stdout, daemon.Stderr = &logb, &logb
	daemon.WaitDelay = 5 * time.Second
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { daemon.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			daemon.Process.Kill()
			<-exited
		}
	})
	addr := ""
	for deadline := time.Now().Add(30 * time.Second); addr == "" && time.Now().Before(deadline); {
		select {
		case <-exited:
			t.Fatalf("the installed daemon exited at start: %s", logb.String())
		default:
		}
		if out, err := asSealmail("status", "--json", "--data", data); err == nil {
			var st struct {
				Daemon    bool     `json:"daemon"`
				Listeners []string `json:"listeners"`
			}
			if json.Unmarshal([]byte(out), &st) == nil && st.Daemon {
				for _, l := range st.Listeners {
					if a, ok := strings.CutPrefix(l, "smtp "); ok {
						addr = a
					}
				}
			}
		}
		if addr == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if addr == "" {
		t.Fatalf("the installed daemon did not come up: %s", logb.String())
	}
	if owner := procUID(t, daemon.Process.Pid); owner != uid {
		t.Errorf("the daemon runs as uid %d, want sealmail (%d)", owner, uid)
	}
	out = must("swaks", "--server", addr, "-tls", "--from", "alice@example.com", "--to", "bob@example.org",
		"--header", "Subject: through the Debian package", "--body", "archived by the packaged sealmail")
	if !strings.Contains(out, "<~  250 2.0.0 Ok: queued as 1") {
		t.Fatalf("swaks transcript lacks the 250 with the id:\n%s", out)
	}
	if out, err := asSealmail("list", "--json", "--data", data); err != nil {
		t.Error(err)
	} else {
		var m struct {
			ID uint64 `json:"id"`
		}
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &m) != nil || m.ID != 1 {
			t.Errorf("list --json: want message 1 alone, got:\n%s", out)
		}
	}
	if out, err := asSealmail("get", "1", "--data", data, "--identity", filepath.Join(data, "identity.txt")); err != nil || !strings.Contains(out, "Subject: through the Debian package\r\n") {
		t.Errorf("get 1: %v\n%s", err, out)
	}
	daemon.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-ctx.Done():
		t.Fatalf("the daemon did not stop after SIGTERM: %s", logb.String())
	}
	if code := daemon.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("daemon exit code %d after SIGTERM: %s", code, logb.String())
	}

	// dpkg -r keeps the data and the configuration.
	must("dpkg", "-r", "sealmail")
	if _, err := os.Stat("/usr/bin/sealmail"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after dpkg -r, /usr/bin/sealmail: %v, want it gone", err)
	}
	checkVarLib("after dpkg -r")
	for _, f := range []string{filepath.Join(data, "archive.json"), filepath.Join(data, "identity.txt"), "/etc/sealmail/sealmail.toml"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("after dpkg -r: %v", err)
		}
	}
	if st := must("dpkg-query", "-W", "-f=${Status}", "sealmail"); st != "deinstall ok config-files" {
		t.Errorf("after dpkg -r the package is %q, want its conffiles kept", st)
	}

	// Purge removes the configuration, still not the archive directory.
	must("dpkg", "--purge", "sealmail")
	if _, err := os.Stat("/etc/sealmail"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after purge, /etc/sealmail: %v, want it gone", err)
	}
	checkVarLib("after dpkg --purge")
	if _, err := user.Lookup("sealmail"); err != nil {
		t.Errorf("after purge: %v (the users that own archives stay)", err)
	}
	t.Logf("build, checks, install, serve, remove, purge: %v", time.Since(start).Round(time.Second))
}

// lockDebTest keeps two runs of TestDebianPackage (go test -count=2, two
// checkouts) from installing the package at the same time.
func lockDebTest(t *testing.T, ctx context.Context) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "sealmail-deb-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			t.Fatalf("lock %s: %v", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("another TestDebianPackage holds %s", f.Name())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// procUID returns the real uid of a process.
func procUID(t *testing.T, pid int) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindSubmatch(status)
	if m == nil {
		t.Fatalf("no Uid in /proc/%d/status", pid)
	}
	uid, _ := strconv.Atoi(string(m[1]))
	return uid
}
