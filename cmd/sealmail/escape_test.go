// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
)

// formatDoc is the recipe docs/format.md gives for recovering a message
// without sealmail. The test runs that very text.
func formatDocRecipe(t *testing.T) (lister, extract string) {
	t.Helper()
	doc, err := os.ReadFile("../../docs/format.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh\n(# list entries.*?\nPY\n)(# extract.*?)\n```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/format.md: recovery recipe not found")
	}
	return string(m[1]), string(m[2])
}

// TestEscapeHatch recovers messages with stock tools only, following
// docs/format.md: python3 to list records, tail/head to cut one out, `age -d`
// and `zstd -d`. It does so for an X25519 archive with Debian's age and for
// the default post-quantum archive with age ≥ 1.3 built from its module.
func TestEscapeHatch(t *testing.T) {
	t.Parallel()
	needTool(t, "zstd", "zstd")
	needTool(t, "python3", "python3")
	debianAge := needTool(t, "age", "age")

	x, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		ageBin  func(t *testing.T) string
		initArg []string
		ident   func(dir string) string
	}{
		{"x25519 with Debian age", func(*testing.T) string { return debianAge }, []string{"--recipient", x.Recipient().String()},
			func(dir string) string {
				p := filepath.Join(dir, "..", "x25519.txt")
				os.WriteFile(p, []byte(x.String()+"\n"), 0o600)
				return p
			}},
		{"post-quantum with age 1.3", buildAge, nil, func(dir string) string { return filepath.Join(dir, "identity.txt") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ageBin := tc.ageBin(t)
			dir, _ := initArchive(t, tc.initArg...)
			ident := tc.ident(dir)
			d := startDaemon(t, dir)
			msgs := [][]byte{
				[]byte("Subject: one\r\n\r\nfirst message\r\n"),
				[]byte("Subject: two\r\n\r\nsecond\nwith bare LF and \x00\xff bytes\r\n"),
			}
			for i := range 6 {
				msgs = append(msgs, []byte(fmt.Sprintf("Subject: concurrent %d\r\n\r\n%s\r\n", i, strings.Repeat("z", 100*i))))
			}
			// Sent concurrently, so that a record usually holds several entries.
			byID := map[int][]byte{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, m := range msgs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := dialSMTP(d.addr, true)
					if err != nil {
						t.Error(err)
						return
					}
					defer c.close()
					code, reply, err := c.send("a@example.com", []string{"b@example.org"}, m, false)
					if code != 250 {
						t.Errorf("send: %d %s %v", code, reply, err)
						return
					}
					id, _ := queuedID(reply)
					mu.Lock()
					byID[int(id)] = m
					mu.Unlock()
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			d.stop()

			seg := filepath.Join(dir, "segments", "00000001.seg")
			lister, extract := formatDocRecipe(t)
			out, err := exec.Command("bash", "-c", strings.ReplaceAll(lister, "DIR/segments/00000001.seg", seg)).CombinedOutput()
			if err != nil {
				t.Fatalf("listing recipe: %v\n%s", err, out)
			}
			rows := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(rows) != len(msgs) {
				t.Fatalf("listing found %d entries, want %d:\n%s", len(rows), len(msgs), out)
			}
			type row struct{ off, plen, kind, id, poff, flen int }
			var parsed []row
			perRecord := map[int]int{}
			for _, line := range rows {
				var r row
				if _, err := fmt.Sscan(line, &r.off, &r.plen, &r.kind, &r.id, &r.poff, &r.flen); err != nil {
					t.Fatalf("listing row %q: %v", line, err)
				}
				parsed = append(parsed, r)
				perRecord[r.off]++
			}
			t.Logf("%d entries in %d records", len(parsed), len(perRecord))
			for _, r := range parsed {
				id := r.id
				if r.kind != 1 || byID[id] == nil {
					t.Fatalf("listing row %+v: want a message entry of a sent message", r)
				}
				work := t.TempDir()
				script := strings.NewReplacer(
					"DIR/segments/00000001.seg", seg,
					"$((OFFSET + 20 + 64 * N + 1))", fmt.Sprint(r.off+20+64*perRecord[r.off]+1),
					"head -c P", fmt.Sprintf("head -c %d", r.plen),
					"$((POFF + 1))", fmt.Sprint(r.poff+1),
					"head -c L", fmt.Sprintf("head -c %d", r.flen),
					"age -d", ageBin+" -d",
					"identity.txt", ident,
				).Replace(extract)
				cmd := exec.Command("bash", "-o", "pipefail", "-c", script)
				cmd.Dir = work
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("extract recipe for message %d: %v\n%s\n%s", id, err, script, out)
				}
				got, _ := os.ReadFile(filepath.Join(work, "message.eml"))
				if !bytes.Equal(got, byID[id]) {
					t.Errorf("message %d recovered with stock tools = %q, want %q", id, got, byID[id])
				}
			}
		})
	}
}

// buildAge builds the age command of the filippo.io/age module this project
// depends on (≥ 1.3, with post-quantum support).
func buildAge(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "age")
	if out, err := exec.Command("go", "build", "-o", bin, "filippo.io/age/cmd/age").CombinedOutput(); err != nil {
		t.Fatalf("build age: %v\n%s", err, out)
	}
	return bin
}
