// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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
