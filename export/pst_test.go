// SPDX-License-Identifier: Apache-2.0

package export

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPST exports corpus messages to a PST, reads it with pffexport and
// checks the manifest with sha256sum.
func TestPST(t *testing.T) {
	t.Parallel()
	pffexport := requireTool(t, "pffexport")
	items := corpusItems(t, 1, "crymap")
	if len(items) < 5 {
		t.Fatalf("%d corpus items", len(items))
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "export.pst")
	w, err := NewPST(path, Options{Query: "from:@example.com", Tool: "sealmail test"})
	if err != nil {
		t.Fatal(err)
	}
	addAll(t, w, items)
	m := w.Manifest()
	if m.Count != len(items) || m.Output.Name != "export.pst" || m.Output.SHA256 == "" {
		t.Errorf("manifest: count %d (want %d), output %+v", m.Count, len(items), m.Output)
	}
	sha256sumCheck(t, dir, "export.pst."+ManifestSHA256, 3)
	out := filepath.Join(dir, "x")
	cmd := exec.Command(pffexport, "-t", out, path)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pffexport: %v\n%s", err, b)
	}
	var n int
	filepath.WalkDir(out+".export", func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "Message") && filepath.Base(filepath.Dir(p)) != "Attachments" {
			n++
		}
		return nil
	})
	if n < len(items) {
		t.Errorf("pffexport found %d messages, want at least %d", n, len(items))
	}
	if _, err := NewPST(path, Options{}); err == nil {
		t.Error("NewPST overwrote an existing export")
	}
}
