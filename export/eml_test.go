// SPDX-License-Identifier: Apache-2.0

package export

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

var fixedNow = func() time.Time { return time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC) }

// emlItems is the EML test set: CRLF (crymap), bare LF, 8-bit and binary
// Content-Transfer-Encoding (mikel-mail), the torture test (flanker), and
// the crafted cases.
func emlItems(t *testing.T) []Item {
	items := corpusItems(t, 1, "crymap", "mikel-mail/mime_emails", "mikel-mail/error_emails", "flanker/torture.eml")
	return append(items, crafted(1000)...)
}

func addAll(t *testing.T, w Writer, items []Item) {
	t.Helper()
	for _, it := range items {
		if err := w.Add(context.Background(), it); err != nil {
			t.Fatalf("Add(%d): %v", it.ID, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestEMLDir(t *testing.T) {
	t.Parallel()
	items := emlItems(t)
	dir := filepath.Join(t.TempDir(), "out", "export")
	w, err := NewEMLDir(dir, Options{Tool: "sealmail test", Query: "from:alice", Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	addAll(t, w, items)
	m := w.Manifest()

	var want []string
	for i, it := range items {
		name := emlName(it)
		want = append(want, name)
		if m.Messages[i].File != name {
			t.Errorf("row %d file = %q, want %q", i, m.Messages[i].File, name)
		}
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, it.Raw) {
			t.Errorf("%s: %d bytes differ from the %d input bytes", name, len(got), len(it.Raw))
		}
	}
	want = append(want, ManifestCSV, ManifestJSON, ManifestSHA256)
	slices.Sort(want)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, want) {
		t.Errorf("directory holds %q, want %q", names, want)
	}
	if m.Tool != "sealmail test" || m.Query != "from:alice" || !m.Created.Equal(fixedNow()) || m.Format != "eml-dir" {
		t.Errorf("manifest head = %q %q %v %q", m.Tool, m.Query, m.Created, m.Format)
	}
	jsonData, _ := os.ReadFile(filepath.Join(dir, ManifestJSON))
	csvData, _ := os.ReadFile(filepath.Join(dir, ManifestCSV))
	checkManifest(t, m, jsonData, csvData, items)
	if len(m.Files) != len(items)+2 {
		t.Errorf("Manifest().Files has %d entries, want %d", len(m.Files), len(items)+2)
	}
	sha256sumCheck(t, dir, ManifestSHA256, len(items)+2)
	checkDigest(t, dir, m.SumFile)

	// Tampering is detected by the stock tool.
	if err := os.WriteFile(filepath.Join(dir, want[0]), []byte("changed"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sha256sum", "-c", "--quiet", ManifestSHA256)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), want[0]+": FAILED") {
		t.Errorf("sha256sum -c after tampering: err %v, output %s", err, out)
	}
}

func TestEMLZip(t *testing.T) {
	t.Parallel()
	items := emlItems(t)
	tmp := t.TempDir()
	path := filepath.Join(tmp, "export.zip")
	w, err := NewEMLZip(path, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	addAll(t, w, items)
	m := w.Manifest()
	checkDigest(t, tmp, m.Output)
	if m.Tool != "sealmail" {
		t.Errorf("default tool = %q, want sealmail", m.Tool)
	}

	// Go's reader: entries in order, messages stored, bytes exact.
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != len(items)+3 {
		t.Fatalf("zip has %d entries, want %d", len(zr.File), len(items)+3)
	}
	for i, it := range items {
		zf := zr.File[i]
		if zf.Name != emlName(it) || zf.Method != zip.Store {
			t.Errorf("entry %d = %q method %d, want %q method 0", i, zf.Name, zf.Method, emlName(it))
		}
		// The MS-DOS time field has a 2-second resolution and no zone.
		want := it.Received.UTC().Truncate(2 * time.Second)
		if got := zf.Modified; got.Year() != want.Year() || got.YearDay() != want.YearDay() ||
			got.Hour() != want.Hour() || got.Minute() != want.Minute() || got.Second() != want.Second() {
			t.Errorf("entry %s modified %v, want the received time %v", zf.Name, got, want)
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, it.Raw) {
			t.Errorf("entry %s: %d bytes (err %v), want the %d input bytes", zf.Name, len(got), err, len(it.Raw))
		}
	}

	// The stock tools: unzip -t, unzip, sha256sum -c.
	unzip := requireTool(t, "unzip")
	out, err := exec.Command(unzip, "-t", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors detected") {
		t.Fatalf("unzip -t: %v\n%s", err, out)
	}
	dir := filepath.Join(tmp, "x")
	if out, err := exec.Command(unzip, "-q", path, "-d", dir).CombinedOutput(); err != nil {
		t.Fatalf("unzip: %v\n%s", err, out)
	}
	for _, it := range items {
		got, err := os.ReadFile(filepath.Join(dir, emlName(it)))
		if err != nil || !bytes.Equal(got, it.Raw) {
			t.Errorf("unzipped %s: %d bytes (err %v), want the %d input bytes", emlName(it), len(got), err, len(it.Raw))
		}
	}
	jsonData, _ := os.ReadFile(filepath.Join(dir, ManifestJSON))
	csvData, _ := os.ReadFile(filepath.Join(dir, ManifestCSV))
	checkManifest(t, m, jsonData, csvData, items)
	sha256sumCheck(t, dir, ManifestSHA256, len(items)+2)
	checkDigest(t, dir, m.SumFile)
}

// checkDigest checks that d is the digest and size of the file d.Name in
// dir.
func checkDigest(t *testing.T, dir string, d FileDigest) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, d.Name))
	if err != nil {
		t.Fatalf("digest of %q: %v", d.Name, err)
	}
	if sha256hex(b) != d.SHA256 || int64(len(b)) != d.Size {
		t.Errorf("digest of %s = %s (%d bytes), file has %s (%d bytes)", d.Name, d.SHA256, d.Size, sha256hex(b), len(b))
	}
}

func TestEmptyExport(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "empty")
	w, err := NewEMLDir(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	addAll(t, w, nil)
	jsonData, _ := os.ReadFile(filepath.Join(dir, ManifestJSON))
	csvData, _ := os.ReadFile(filepath.Join(dir, ManifestCSV))
	checkManifest(t, w.Manifest(), jsonData, csvData, nil)
	if !bytes.Contains(jsonData, []byte(`"messages": []`)) {
		t.Errorf("empty manifest.json has no empty message list:\n%s", jsonData)
	}
	sha256sumCheck(t, dir, ManifestSHA256, 2)
}

func TestRefuseOverwrite(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	full := filepath.Join(tmp, "full")
	file := filepath.Join(tmp, "file")
	os.Mkdir(full, 0o700)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o600)
	os.WriteFile(file, nil, 0o600)
	os.WriteFile(filepath.Join(tmp, "m.mbox.manifest.json"), nil, 0o600)
	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o700)

	for _, tc := range []struct {
		name string
		open func() (Writer, error)
		path string
	}{
		{"EMLDir non-empty", func() (Writer, error) { return NewEMLDir(full, Options{}) }, full},
		{"EMLDir on a file", func() (Writer, error) { return NewEMLDir(file, Options{}) }, file},
		{"EMLZip existing", func() (Writer, error) { return NewEMLZip(file, Options{}) }, file},
		{"EMLZip no parent", func() (Writer, error) { return NewEMLZip(filepath.Join(tmp, "no", "z.zip"), Options{}) }, filepath.Join(tmp, "no", "z.zip")},
		{"Mbox existing", func() (Writer, error) { return NewMbox(file, Options{}) }, file},
		{"Mbox manifest exists", func() (Writer, error) { return NewMbox(filepath.Join(tmp, "m.mbox"), Options{}) }, filepath.Join(tmp, "m.mbox")},
	} {
		w, err := tc.open()
		if err == nil {
			t.Errorf("%s: opened %T, want an error", tc.name, w)
			continue
		}
		if !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: error %q does not name %s", tc.name, err, tc.path)
		}
	}
	if w, err := NewEMLDir(empty, Options{}); err != nil {
		t.Errorf("NewEMLDir(empty dir) = %v, want success", err)
	} else {
		w.Close()
	}
}

func TestAddErrors(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	it := crafted(5)[0]
	for _, tc := range []struct {
		name string
		open func() (Writer, error)
	}{
		{"eml-dir", func() (Writer, error) { return NewEMLDir(filepath.Join(tmp, "d"), Options{}) }},
		{"eml-zip", func() (Writer, error) { return NewEMLZip(filepath.Join(tmp, "z.zip"), Options{}) }},
		{"mbox", func() (Writer, error) { return NewMbox(filepath.Join(tmp, "m.mbox"), Options{}) }},
	} {
		w, err := tc.open()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := w.Add(ctx, it); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Add(cancelled ctx) = %v, want context.Canceled", tc.name, err)
		}
		if err := w.Add(context.Background(), it); err != nil {
			t.Fatalf("%s: Add: %v", tc.name, err)
		}
		if err := w.Add(context.Background(), it); !errors.Is(err, ErrDuplicate) {
			t.Errorf("%s: Add(same id) = %v, want ErrDuplicate", tc.name, err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("%s: Close: %v", tc.name, err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("%s: second Close = %v, want nil", tc.name, err)
		}
		it2 := it
		it2.ID++
		if err := w.Add(context.Background(), it2); !errors.Is(err, ErrClosed) {
			t.Errorf("%s: Add after Close = %v, want ErrClosed", tc.name, err)
		}
		if n := w.Manifest().Count; n != 1 {
			t.Errorf("%s: manifest count = %d, want 1", tc.name, n)
		}
	}
}

func TestEMLDirWriteErrorNamesPath(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "d")
	w, err := NewEMLDir(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	it := crafted(7)[0]
	// A directory squatting on the message's name makes the write fail.
	path := filepath.Join(dir, emlName(it))
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	err = w.Add(context.Background(), it)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Add onto a directory = %v, want an error naming %s", err, path)
	}
	// The writer stays usable.
	it.ID++
	if err := w.Add(context.Background(), it); err != nil {
		t.Errorf("Add after a failed Add = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := w.Manifest().Count; n != 1 {
		t.Errorf("manifest count = %d, want 1", n)
	}
}

func TestEMLName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		it   Item
		want string
	}{
		{Item{ID: 42, Received: time.Date(2024, 2, 29, 23, 59, 59, 999, time.UTC)}, "20240229-235959-42.eml"},
		{Item{ID: 7, Received: time.Date(2024, 3, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600))}, "20240301-000000-7.eml"},
		{Item{ID: 18446744073709551615}, "00010101-000000-18446744073709551615.eml"},
	} {
		if got := emlName(tc.it); got != tc.want {
			t.Errorf("emlName(%d, %v) = %q, want %q", tc.it.ID, tc.it.Received, got, tc.want)
		}
	}
}
