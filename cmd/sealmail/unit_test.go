// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// maxUnitExposure is the highest `systemd-analyze security` score a unit
// in packaging/ may have (issue #12; 0 is best, 10 worst).
const maxUnitExposure = 2.0

var exposureLine = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestSystemdUnitExposure scores every unit in packaging/ offline.
func TestSystemdUnitExposure(t *testing.T) {
	t.Parallel()
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze missing (.ci/run installs systemd)")
		}
		t.Skip("systemd-analyze missing")
	}
	units, err := filepath.Glob("../../packaging/*.service")
	if err != nil || len(units) == 0 {
		t.Fatalf("no units in packaging/: %v", err)
	}
	for _, u := range units {
		out, err := exec.Command(tool, "security", "--offline=yes", "--no-pager", u).CombinedOutput()
		m := exposureLine.FindSubmatch(out)
		if m == nil {
			t.Errorf("systemd-analyze security %s: %v, no score in:\n%s", u, err, out)
			continue
		}
		score, _ := strconv.ParseFloat(string(m[1]), 64)
		if score > maxUnitExposure {
			t.Errorf("%s: exposure %.1f, want at most %.1f:\n%s", filepath.Base(u), score, maxUnitExposure, out)
		} else {
			t.Logf("%s: exposure %.1f", filepath.Base(u), score)
		}
	}
}

// sandboxSyscalls are the system calls the reader's attachment sandbox
// makes (extract/restrict.go, proc.go) that a unit's SystemCallFilter
// could deny: the restrictions applied to a child's thread, its limits,
// starting it (the sealmail binary, then pdftotext or catdoc), the memfd
// its tool reads, killing its process group and waiting for it.
var sandboxSyscalls = []string{"prctl", "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
	"prlimit64", "execve", "clone", "clone3", "memfd_create", "setpgid", "kill", "wait4", "pipe2"}

// TestReaderUnitAllowsSandbox resolves the reader unit's SystemCallFilter
// with systemd's own tables (`systemd-analyze syscall-filter`) and checks
// that every system call the attachment sandbox needs is allowed: a
// denied landlock_* or seccomp would not stop the reader, it would make
// the sandbox run its children unrestricted.
func TestReaderUnitAllowsSandbox(t *testing.T) {
	t.Parallel()
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze missing (.ci/run installs systemd)")
		}
		t.Skip("systemd-analyze missing")
	}
	unit, err := os.ReadFile("../../packaging/sealmail-access.service")
	if err != nil {
		t.Fatal(err)
	}
	var resolve func(name string, seen map[string]bool) []string
	resolve = func(name string, seen map[string]bool) []string {
		if !strings.HasPrefix(name, "@") {
			return []string{name}
		}
		if seen[name] {
			return nil
		}
		seen[name] = true
		out, err := exec.Command(tool, "syscall-filter", "--no-pager", name).Output()
		if err != nil {
			t.Fatalf("systemd-analyze syscall-filter %s: %v", name, err)
		}
		var calls []string
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.TrimSpace(line)
			if f == "" || f == name || strings.HasPrefix(f, "#") || !strings.HasPrefix(line, "    ") {
				continue
			}
			calls = append(calls, resolve(f, seen)...)
		}
		return calls
	}
	allowed := map[string]bool{}
	filters := 0
	for _, line := range strings.Split(string(unit), "\n") {
		v, ok := strings.CutPrefix(line, "SystemCallFilter=")
		if !ok {
			continue
		}
		filters++
		deny := strings.HasPrefix(v, "~")
		for _, name := range strings.Fields(strings.TrimPrefix(v, "~")) {
			for _, c := range resolve(name, map[string]bool{}) {
				allowed[c] = !deny
			}
		}
	}
	if filters == 0 || len(allowed) < 100 {
		t.Fatalf("the unit's SystemCallFilter resolved to %d calls from %d lines", len(allowed), filters)
	}
	for _, c := range sandboxSyscalls {
		if !allowed[c] {
			t.Errorf("sealmail-access.service denies %s, which the attachment sandbox needs", c)
		}
	}
}
