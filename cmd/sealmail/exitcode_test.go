// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// exitCase is one command line and the exit code it must give.
type exitCase struct {
	name   string
	args   []string
	code   int
	stderr string // a substring of stderr
}

func runExitCases(t *testing.T, dir string, cases []exitCase) {
	t.Helper()
	for _, tc := range cases {
		out, errOut, code := cli(t, nil, append(tc.args, "--data", dir)...)
		if code != tc.code || !strings.Contains(errOut, tc.stderr) {
			t.Errorf("%s: sealmail %s: exit %d, want %d (stderr containing %q):\n%s%s",
				tc.name, strings.Join(tc.args, " "), code, tc.code, tc.stderr, out, errOut)
		}
	}
}

// The documented exit codes, through the daemon's control socket and the
// reader's: typed errors cross them, so a bad query exits 2 and a missing
// message 4, as on an archive opened directly (TestExitCodesWithoutDaemon).
func TestExitCodesThroughDaemon(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	d := startDaemon(t, dir)
	r := startReader(t, dir, "", "--identity", identity)
	code, reply := sendOne(t, d.addr, []byte("Subject: hello\r\n\r\nx\r\n"))
	if code != 250 {
		t.Fatalf("send: %d %s", code, reply)
	}
	r.caughtUp()
	cases := append(exitCases(identity),
		exitCase{"no such hold", []string{"hold", "show", "nope", "--reader", r.sock}, exitNotFound, `no hold named "nope"`},
		exitCase{"no reader", []string{"hold", "list", "--reader", filepath.Join(t.TempDir(), "reader.sock")}, exitNoReader, "sealmail access"},
	)
	runExitCases(t, dir, cases)

	// What the daemon answered were typed errors, not text.
	_, errOut, _ := cli(t, nil, "get", "99", "--identity", identity, "--data", dir)
	if strings.Contains(errOut, "daemon:") {
		t.Errorf("get 99 through the daemon: stderr %q, want the error as such", errOut)
	}
	// verify --json: a report whose problems are an empty list, not null.
	out, errOut, code := cli(t, nil, "verify", "--json", "--identity", identity, "--data", dir)
	var rep struct {
		Problems  []string `json:"problems"`
		Decrypted *int     `json:"decrypted"`
	}
	if code != 0 || json.Unmarshal(out, &rep) != nil || rep.Problems == nil || !strings.Contains(string(out), `"problems":[]`) ||
		rep.Decrypted == nil || *rep.Decrypted != 1 {
		t.Errorf("verify --json: exit %d:\n%s%s", code, out, errOut)
	}
	out, errOut, code = cli(t, nil, "audit", "verify", "--json", "--data", dir)
	if code != 0 || !strings.Contains(string(out), `"problems":[]`) {
		t.Errorf("audit verify --json: exit %d:\n%s%s", code, out, errOut)
	}
	// Lists in --json reports are [] when empty, never null.
	out, errOut, code = r.cli("purge", "--dry-run", "--json")
	if code != 0 || !strings.Contains(string(out), `"deleted":[]`) {
		t.Errorf("purge --dry-run --json: exit %d:\n%s%s", code, out, errOut)
	}
	out, errOut, code = r.cli("erase", "--query", "subject:absent", "--reason", "r", "--json")
	if code != 0 || !strings.Contains(string(out), `"erased":[],"refused":[]`) {
		t.Errorf("erase --json of nothing: exit %d:\n%s%s", code, out, errOut)
	}
	// A locked reader: ingest goes on, content waits (exit 5).
	if _, errOut, code := r.cli("access", "lock"); code != 0 {
		t.Fatalf("access lock: %s", errOut)
	}
	if _, errOut, code := r.cli("search", "hello"); code != exitNoReader || !strings.Contains(errOut, "locked") {
		t.Errorf("search while locked: exit %d, %s; want %d", code, errOut, exitNoReader)
	}
	if code, reply := sendOne(t, d.addr, []byte("Subject: while locked\r\n\r\nx\r\n")); code != 250 {
		t.Errorf("send while the reader is locked: %d %s", code, reply)
	}
	if _, errOut, code := r.cli("access", "unlock", "--identity", identity); code != 0 {
		t.Fatalf("access unlock: %s", errOut)
	}
	r.caughtUp()
	if n := searchCount(t, r, "locked"); n != 1 {
		t.Errorf("after unlock: %d matches for the message sent while locked, want 1", n)
	}
	r.stop()
	d.stop()
	runExitCases(t, dir, []exitCase{{"bad query, no daemon", []string{"search", "from:("}, exitUsage, "query: at 5"}})
}

// exitCases are the cases both with and without a daemon; message 1
// exists.
func exitCases(identity string) []exitCase {
	return []exitCase{
		{"found", []string{"get", "1", "--identity", identity}, exitOK, ""},
		{"bad query", []string{"search", "from:("}, exitUsage, "query: at 5"},
		{"bad query, count", []string{"search", "--count", "subject:(a OR"}, exitUsage, "query:"},
		{"bad export query", []string{"export", "--query", "to:(", "--out", filepath.Join(filepath.Dir(identity), "x.zip")}, exitUsage, "query:"},
		{"no such message", []string{"get", "99", "--identity", identity}, exitNotFound, "message 99 is not in the archive"},
		{"bad flag", []string{"list", "--limit", "x"}, exitUsage, "invalid argument"},
		{"bad log level", []string{"status", "--log-level", "loud"}, exitUsage, "--log-level"},
	}
}

func TestExitCodesWithoutDaemon(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	cases := exitCases(identity)[1:] // the archive holds no message 1
	cases = append(cases,
		exitCase{"nothing to verify", []string{"verify", "--json"}, exitOK, ""},
		exitCase{"config value", []string{"serve", "--config", writeConfig(t, "[smtp]\nmax_message_size = \"9000000T\"\n")}, exitUsage, ":2:20: smtp.max_message_size: size"},
		exitCase{"config problems", []string{"serve", "--config", writeConfig(t, "[log]\nlevel = \"loud\"\n")}, exitUsage, `log.level = "loud"`},
		exitCase{"no reader", []string{"purge", "--reader", filepath.Join(t.TempDir(), "reader.sock")}, exitNoReader, "no reader service"},
	)
	runExitCases(t, dir, cases)
	out, _, _ := cli(t, nil, "verify", "--json", "--data", dir)
	if !strings.Contains(string(out), `"problems":[]`) {
		t.Errorf("verify --json without a daemon printed %s, want \"problems\":[]", out)
	}
}

// Every command documents its exit codes in --help, and every command whose
// output is data takes --json; flag help shows value names, not text pflag
// took from backquotes.
func TestHelpDocumentsExitCodesAndJSON(t *testing.T) {
	t.Parallel()
	noJSON := map[string]string{
		"sealmail serve":         "runs the daemon",
		"sealmail access":        "runs the reader service",
		"sealmail access unlock": "says only that it worked",
		"sealmail access lock":   "says only that it worked",
		"sealmail get":           "prints the message itself (--envelope prints JSON)",
	}
	var leaves []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden { // gendocs: a build step of `make deb`, not for users
			return
		}
		if c.Runnable() {
			leaves = append(leaves, c)
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRootCommand())
	if len(leaves) != 37 {
		t.Errorf("found %d commands, want 37 (update this test with the command list)", len(leaves))
	}
	for _, c := range leaves {
		path := c.CommandPath()
		if !strings.Contains(c.Long, "\nExit codes:\n  0    success\n  1    error\n  2    bad usage") || !strings.HasSuffix(c.Long, "130  interrupted") {
			t.Errorf("%s --help does not document its exit codes:\n%s", path, c.Long)
		}
		if _, ok := noJSON[path]; !ok && c.Flags().Lookup("json") == nil {
			t.Errorf("%s has no --json", path)
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			name, _ := pflag.UnquoteUsage(f)
			if strings.Contains(name, " ") {
				t.Errorf("%s --%s: help shows the value name %q (backquotes in the usage text)", path, f.Name, name)
			}
		})
	}
}
