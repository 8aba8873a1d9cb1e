// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/index"
)

// TestOldIndexFormatRebuilt: a reader that finds an index of an older
// format records the rebuild in the audit log before the index is
// removed, then indexes every message again.
func TestOldIndexFormatRebuilt(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{}, false)
	g.run()
	a := g.ingest("Subject: one\r\n\r\nfirst\r\n", "ann@example.com")
	b := g.ingest("Subject: two\r\n\r\nsecond\r\n", "bob@example.com")
	g.caughtUp()
	want := fmt.Sprint([]uint64{uint64(a), uint64(b)})
	if got := g.ids(officer, "*"); got != want {
		t.Fatalf("before: %s, want %s", got, want)
	}
	g.stop()
	dir := g.r.indexDir()
	if err := g.r.Close(); err != nil {
		t.Fatal(err)
	}
	// The index as an older sealmail left it.
	if err := os.WriteFile(filepath.Join(dir, "FORMAT"), []byte("sealmail-index 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := index.DirVersion(dir); err != nil || v != 1 {
		t.Fatalf("DirVersion = %d, %v, want 1", v, err)
	}
	g.open(false)
	g.run()
	g.caughtUp()
	if got := g.ids(officer, "*"); got != want {
		t.Errorf("after the rebuild: %s, want %s", got, want)
	}
	if v, err := index.DirVersion(dir); err != nil || v != index.FormatVersion {
		t.Errorf("DirVersion after = %d, %v, want %d", v, err, index.FormatVersion)
	}
	var rebuilds []string
	if err := audit.Read(context.Background(), filepath.Join(g.dir, "audit"), audit.Filter{Types: []string{audit.TypeReaderReindex}}, func(e audit.Entry) error {
		rebuilds = append(rebuilds, fmt.Sprint(e.Fields["from_format"], " ", e.Fields["to_format"]))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if w := fmt.Sprint(1, " ", index.FormatVersion); len(rebuilds) != 1 || rebuilds[0] != w {
		t.Errorf("reader.reindex entries %q, want one %q", rebuilds, w)
	}
}
