// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGendocs writes the man pages and completions the Debian package
// ships: one page per command with its flags, completion scripts that know
// the commands, and gendocs itself in none of them.
func TestGendocs(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	cmd := exec.Command(sealmailBinary(t), "gendocs", "--out", out)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gendocs: %v: %s", err, msg)
	}
	read := func(rel string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(out, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for rel, wants := range map[string][]string{
		"man/sealmail.1":              {`.TH "SEALMAIL" "1" "Nov 2023" "sealmail `, "\\fBsealmail-serve(1)\\fP", "Exit codes"},
		"man/sealmail-serve.1":        {".SH NAME", "\\fB--smtp\\fP", "\\fB--config\\fP", "\\fBsealmail(1)\\fP"},
		"man/sealmail-audit-verify.1": {".SH NAME", "\\fB--checkpoint\\fP"},
		"completion/sealmail.bash":    {"complete -o default -F __start_sealmail sealmail"},
		"completion/_sealmail":        {"#compdef sealmail"},
		"completion/sealmail.fish":    {"complete -c sealmail"},
	} {
		got := read(rel)
		for _, w := range wants {
			if !strings.Contains(got, w) {
				t.Errorf("%s lacks %q", rel, w)
			}
		}
		if strings.Contains(got, "gendocs") || strings.Contains(got, "Auto generated") {
			t.Errorf("%s mentions gendocs or cobra's generator tag", rel)
		}
	}
	pages, _ := filepath.Glob(filepath.Join(out, "man", "*.1"))
	if len(pages) < 30 {
		t.Errorf("%d man pages, want one per command (30 or more)", len(pages))
	}
	if _, errOut, code := cli(t, nil, "gendocs"); code != exitUsage || !strings.Contains(errOut, "--out") {
		t.Errorf("gendocs without --out: exit %d %q, want %d naming --out", code, errOut, exitUsage)
	}
}
