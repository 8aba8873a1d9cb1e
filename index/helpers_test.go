// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/sealmail/sealmail"
)

// corpusDir is the shared read-only MIME corpus.
const corpusDir = "../../shared/corpus/mime"

// corpusFile is one message file of the corpus.
type corpusFile struct {
	rel string // path relative to corpusDir
	raw []byte
}

// notMail lists corpus files that are not messages (licences, notes).
func notMail(name string) bool {
	switch filepath.Base(name) {
	case "LICENSE.upstream", "MANIFEST.md", "README", "README.md", "ARTISTIC-LICENSE.txt", "COPYING", ".gitattributes":
		return true
	}
	return false
}

// readCorpus returns every file under corpusDir/sub (sorted), skipping
// licence files.
func readCorpus(t testing.TB, subs ...string) []corpusFile {
	t.Helper()
	var out []corpusFile
	for _, sub := range subs {
		root := filepath.Join(corpusDir, sub)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || notMail(p) {
				return nil
			}
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(corpusDir, p)
			out = append(out, corpusFile{rel: rel, raw: raw})
			return nil
		})
		if err != nil {
			t.Fatalf("read corpus %s: %v", sub, err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out
}

// openTemp opens an index in a temporary directory, closed at cleanup.
func openTemp(t testing.TB) *Index {
	t.Helper()
	x, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := x.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return x
}

// addFiles indexes files with ids 1..n in batches.
func addFiles(t testing.TB, x *Index, files []corpusFile) {
	t.Helper()
	const batch = 200
	for i := 0; i < len(files); i += batch {
		var docs []Doc
		for j := i; j < len(files) && j < i+batch; j++ {
			docs = append(docs, Doc{ID: sealmail.MessageID(j + 1), Raw: files[j].raw})
		}
		if err := x.Add(context.Background(), docs); err != nil {
			t.Fatalf("Add: %v", err)
		}
	}
}

// needTool skips the test when a Debian tool is missing, or fails it when
// CI is set (the CI job installs every tool).
func needTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (apt-get install %s); required when CI is set", name, pkg)
		}
		t.Skipf("%s not found: apt-get install %s", name, pkg)
	}
	return p
}
