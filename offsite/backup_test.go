// SPDX-License-Identifier: Apache-2.0

package offsite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"filippo.io/age"

	"github.com/sealmail/sealmail/vfs"
	"github.com/sealmail/sealmail/vfs/vfstest"
)

// archiveState is a fake archive's files at one moment: what a backup
// takes and a restore must give back.
type archiveState struct {
	catalog, sealed, active, audit1, audit2 []byte
	secret                                  []byte
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// states returns two states of one archive: the second has a new
// catalog, the active segment and the last audit file grown, and a second
// audit file.
func states() (archiveState, archiveState) {
	s1 := archiveState{
		catalog: randBytes(1, 5000), sealed: randBytes(2, 30000), active: randBytes(3, 7000),
		audit1: []byte("{\"magic\":\"x\"}\n{\"seq\":1}\n"), secret: []byte("0123456789abcdef\n"),
	}
	s2 := s1
	s2.catalog = randBytes(4, 6000)
	s2.active = append(append([]byte(nil), s1.active...), randBytes(5, 9000)...)
	s2.audit1 = append(append([]byte(nil), s1.audit1...), "{\"seq\":2}\n"...)
	s2.audit2 = []byte("{\"magic\":\"y\"}\n{\"seq\":3}\n")
	return s1, s2
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func bytesSource(path string, b []byte) Source {
	return Source{Path: path, Mode: 0o600, Size: int64(len(b)), Open: func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b[off : off+n])), nil
	}}
}

// sources describes st as the archive does, with the secret sealed to r.
func (st archiveState) sources(t *testing.T, r age.Recipient) []Source {
	t.Helper()
	cat := bytesSource("catalog.db", st.catalog)
	sealed := bytesSource("segments/00000001.seg", st.sealed)
	sealed.Final, sealed.Grows, sealed.SHA256, sealed.Mode = true, true, hexSum(st.sealed), 0o444
	active := bytesSource("segments/00000002.seg", st.active)
	active.Grows = true
	a1 := bytesSource("audit/audit-000001.jsonl", st.audit1)
	a1.Grows, a1.Final = true, st.audit2 != nil
	out := []Source{cat, sealed, active, a1}
	if st.audit2 != nil {
		a2 := bytesSource("audit/audit-000002.jsonl", st.audit2)
		a2.Grows = true
		out = append(out, a2)
	}
	ct, plain, err := SealSecret([]age.Recipient{r}, st.secret)
	if err != nil {
		t.Fatal(err)
	}
	sec := bytesSource("digest.key", ct)
	sec.Encrypted = plain
	return append(out, sec)
}

func (st archiveState) files() map[string][]byte {
	m := map[string][]byte{"catalog.db": st.catalog, "segments/00000001.seg": st.sealed, "segments/00000002.seg": st.active,
		"audit/audit-000001.jsonl": st.audit1, "digest.key": st.secret}
	if st.audit2 != nil {
		m["audit/audit-000002.jsonl"] = st.audit2
	}
	return m
}

func newIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func openTarget(t *testing.T, dir string, fsys vfs.FS) *Dir {
	t.Helper()
	d, err := OpenDir(dir, fsys)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkRestores restores every file of the newest backup in dir and
// compares it with want.
func checkRestores(t *testing.T, dir string, id age.Identity, want archiveState) *Manifest {
	t.Helper()
	ctx := context.Background()
	tg := openTarget(t, dir, nil)
	m, err := Latest(ctx, tg)
	if err != nil {
		t.Fatalf("Latest: %v", err)
	}
	probs, err := Verify(ctx, tg, m, nil)
	if err != nil || len(probs) > 0 {
		t.Fatalf("Verify backup %d: %v %v", m.Seq, err, probs)
	}
	out := t.TempDir()
	outFS := noSync(t, out)
	files := want.files()
	if len(m.Files) != len(files) {
		t.Errorf("backup %d has %d files, want %d", m.Seq, len(m.Files), len(files))
	}
	for _, f := range m.Files {
		if err := RestoreFile(ctx, tg, f, out, outFS, []age.Identity{id}); err != nil {
			t.Fatalf("RestoreFile: %v", err)
		}
		got, err := os.ReadFile(filepath.Join(out, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, files[f.Path]) {
			t.Errorf("backup %d: %s restored as %d bytes, want %d", m.Seq, f.Path, len(got), len(files[f.Path]))
		}
		if fi, _ := os.Stat(filepath.Join(out, f.Path)); fi.Mode().Perm() != fs.FileMode(f.Mode) {
			t.Errorf("%s: mode %v, want %v", f.Path, fi.Mode().Perm(), fs.FileMode(f.Mode))
		}
	}
	return m
}

// noSync returns a file system over dir that never crashes and never
// fsyncs (vfstest models durability instead): fast tests.
func noSync(t *testing.T, dir string) vfs.FS {
	t.Helper()
	c, err := vfstest.New(dir, vfstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBackupIncremental(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	id := newIdentity(t)
	s1, s2 := states()
	dir := t.TempDir()
	o := Options{Archive: "a1", Checkpoint: "cp", Program: "test"}
	r1, err := Backup(ctx, openTarget(t, dir, nil), o, s1.sources(t, id.Recipient()))
	if err != nil {
		t.Fatal(err)
	}
	if r1.Manifest.Seq != 1 || r1.Reused != 0 || r1.Copied == 0 {
		t.Errorf("first backup: seq %d, reused %d, copied %d", r1.Manifest.Seq, r1.Reused, r1.Copied)
	}
	checkRestores(t, dir, id, s1)
	r2, err := Backup(ctx, openTarget(t, dir, nil), o, s2.sources(t, id.Recipient()))
	if err != nil {
		t.Fatal(err)
	}
	// The sealed segment and the prefixes of the active segment and the
	// first audit file are reused; the catalog, the rest and the sealed
	// secret are new.
	wantReused := int64(len(s1.sealed) + len(s1.active) + len(s1.audit1))
	if r2.Reused != wantReused {
		t.Errorf("second backup reused %d bytes, want %d", r2.Reused, wantReused)
	}
	if r2.Checked != int64(len(s1.active)+len(s1.audit1)) {
		t.Errorf("second backup checked %d bytes of prefixes, want %d", r2.Checked, len(s1.active)+len(s1.audit1))
	}
	m := checkRestores(t, dir, id, s2)
	if f, _ := m.File("segments/00000002.seg"); len(f.Parts) != 2 {
		t.Errorf("grown active segment has %d parts, want 2", len(f.Parts))
	}
	// Only backup 2 remains, and nothing it does not name.
	tg := openTarget(t, dir, nil)
	if seqs, _ := manifests(ctx, tg); len(seqs) != 1 || seqs[0] != 2 {
		t.Errorf("manifests after the second backup: %v", seqs)
	}
	names, _ := tg.List(ctx, "data/")
	named := 0
	for _, f := range m.Files {
		named += len(f.Parts)
	}
	if len(names) != named {
		t.Errorf("target holds %d objects, the manifest names %d: %v", len(names), named, names)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "00000001", "catalog.db.0")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("backup 1's catalog is still there: %v", err)
	}

	// A prefix that changed (another history) is copied whole, with a
	// warning.
	s3 := s2
	s3.active = append([]byte{s2.active[0] ^ 1}, s2.active[1:]...)
	r3, err := Backup(ctx, openTarget(t, dir, nil), o, s3.sources(t, id.Recipient()))
	if err != nil {
		t.Fatal(err)
	}
	if len(r3.Warnings) != 1 || !strings.Contains(r3.Warnings[0], "segments/00000002.seg") {
		t.Errorf("warnings %q, want one about the active segment", r3.Warnings)
	}
	checkRestores(t, dir, id, s3)

	// A damaged sealed segment (its hash is not the catalog's) stops the
	// backup and keeps the previous one.
	s4 := s3
	s4.sealed = append([]byte(nil), s3.sealed...)
	s4.sealed[100] ^= 1
	src := s4.sources(t, id.Recipient())
	src[1].SHA256 = hexSum(s3.sealed)
	src[1].Final = false // as if it were new to this target
	if _, err := Backup(ctx, openTarget(t, dir, nil), o, src); !errors.Is(err, ErrMismatch) {
		t.Errorf("backup of a damaged sealed segment: %v, want ErrMismatch", err)
	}
	checkRestores(t, dir, id, s3)

	// Another archive's backups are refused.
	if _, err := Backup(ctx, openTarget(t, dir, nil), Options{Archive: "other"}, s1.sources(t, id.Recipient())); !errors.Is(err, ErrOtherArchive) {
		t.Errorf("backup of another archive: %v, want ErrOtherArchive", err)
	}
}

func TestOpenDirRefuses(t *testing.T) {
	t.Parallel()
	if _, err := OpenDir(filepath.Join(t.TempDir(), "missing"), nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("OpenDir of a missing directory: %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "photo.jpg"), []byte("x"), 0o600)
	if _, err := OpenDir(dir, nil); err == nil || !strings.Contains(err.Error(), "photo.jpg") {
		t.Errorf("OpenDir of a directory with other files: %v", err)
	}
}

func TestLockedTarget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tg := openTarget(t, t.TempDir(), nil)
	unlock, err := tg.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	id := newIdentity(t)
	s1, _ := states()
	if _, err := Backup(ctx, tg, Options{Archive: "a"}, s1.sources(t, id.Recipient())); !errors.Is(err, ErrLocked) {
		t.Errorf("Backup to a locked target: %v, want ErrLocked", err)
	}
}

// TestVerifyFindsDamage damages a backup in each way a disk or a person
// can and checks that Verify names the file, and that a restore refuses to
// write damaged bytes.
func TestVerifyFindsDamage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	id := newIdentity(t)
	s1, _ := states()
	for _, tc := range []struct {
		name   string
		damage func(dir string, m *Manifest)
		want   string // in the problem
	}{
		{"flipped byte", func(dir string, m *Manifest) {
			p := filepath.Join(dir, filepath.FromSlash(m.Files[1].Parts[0].Object))
			b, _ := os.ReadFile(p)
			b[10] ^= 0x40
			os.Chmod(p, 0o600)
			os.WriteFile(p, b, 0o600)
		}, "segments/00000001.seg: part"},
		{"missing object", func(dir string, m *Manifest) {
			os.Remove(filepath.Join(dir, filepath.FromSlash(m.Files[0].Parts[0].Object)))
		}, "catalog.db: part"},
		{"truncated object", func(dir string, m *Manifest) {
			os.Truncate(filepath.Join(dir, filepath.FromSlash(m.Files[2].Parts[0].Object)), 100)
		}, "short"},
		{"longer object", func(dir string, m *Manifest) {
			f, _ := os.OpenFile(filepath.Join(dir, filepath.FromSlash(m.Files[2].Parts[0].Object)), os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("more"))
			f.Close()
		}, "longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			r, err := Backup(ctx, openTarget(t, dir, nil), Options{Archive: "a"}, s1.sources(t, id.Recipient()))
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(dir, r.Manifest)
			tg := openTarget(t, dir, nil)
			probs, err := Verify(ctx, tg, r.Manifest, nil)
			if err != nil || len(probs) != 1 || !strings.Contains(probs[0].String(), tc.want) {
				t.Fatalf("Verify: %v %q, want one problem with %q", err, probs, tc.want)
			}
			out := t.TempDir()
			for _, f := range r.Manifest.Files {
				if f.Path != probs[0].Path {
					continue
				}
				if err := RestoreFile(ctx, tg, f, out, nil, []age.Identity{id}); !errors.Is(err, ErrMismatch) && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("RestoreFile of the damaged file: %v", err)
				}
				if _, err := os.Stat(filepath.Join(out, f.Path)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a damaged file was restored: %v", err)
				}
			}
		})
	}
}

func TestManifestTamperAndVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	id := newIdentity(t)
	s1, _ := states()
	if _, err := Backup(ctx, openTarget(t, dir, nil), Options{Archive: "a"}, s1.sources(t, id.Recipient())); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "manifests", "00000001.json")
	orig, _ := os.ReadFile(p)
	edit := func(from, to string) {
		t.Helper()
		os.WriteFile(p, bytes.Replace(orig, []byte(from), []byte(to), 1), 0o600)
	}
	edit(`"size": 5000`, `"size": 5001`)
	if _, err := Latest(ctx, openTarget(t, dir, nil)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("manifest with a changed byte: %v, want ErrCorrupt", err)
	}
	// A version this program does not know, with a valid checksum.
	body, _, _ := cutLastLine(bytes.Replace(orig, []byte(`"version": 1`), []byte(`"version": 2`), 1))
	sum := sha256.Sum256(body)
	os.WriteFile(p, fmt.Appendf(body, "sha256 %x\n", sum), 0o600)
	if _, err := Latest(ctx, openTarget(t, dir, nil)); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("manifest version 2: %v, want ErrUnsupportedVersion", err)
	}
}

func TestManifestRejectsEscapingPaths(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"../etc/passwd", "/etc/passwd", "a/../../b", "a//b", "./a", "", "."} {
		if ValidPath(p) {
			t.Errorf("ValidPath(%q) = true", p)
		}
	}
	m := &Manifest{Magic: manifestMagic, Version: manifestVersion, Archive: "a", Seq: 1,
		Files: []File{{Path: "../x", SHA256: hexSum(nil)}}}
	b, _ := m.encode()
	if _, err := decodeManifest("m", b); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "../x") {
		t.Errorf("decode of a manifest with ../x: %v", err)
	}
}

func TestFS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	id := newIdentity(t)
	_, s2 := states()
	r, err := Backup(ctx, openTarget(t, dir, nil), Options{Archive: "a"}, s2.sources(t, id.Recipient()))
	if err != nil {
		t.Fatal(err)
	}
	fsys := FS(ctx, openTarget(t, dir, nil), r.Manifest, "audit")
	if err := fstest.TestFS(fsys, "audit-000001.jsonl", "audit-000002.jsonl"); err != nil {
		t.Fatal(err)
	}
	b, err := fs.ReadFile(fsys, "audit-000001.jsonl")
	if err != nil || !bytes.Equal(b, s2.audit1) {
		t.Errorf("ReadFile through FS: %q %v", b, err)
	}
}

func TestSecretNeedsIdentity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	id := newIdentity(t)
	s1, _ := states()
	r, err := Backup(ctx, openTarget(t, dir, nil), Options{Archive: "a"}, s1.sources(t, id.Recipient()))
	if err != nil {
		t.Fatal(err)
	}
	f, _ := r.Manifest.File("digest.key")
	tg := openTarget(t, dir, nil)
	open := func(ids ...age.Identity) error {
		r := OpenFile(ctx, tg, f)
		defer r.Close()
		_, err := OpenSecret(r, f, ids)
		return err
	}
	if err := open(newIdentity(t)); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("OpenSecret with another identity: %v, want ErrNoIdentity", err)
	}
	if err := open(); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("OpenSecret without an identity: %v, want ErrNoIdentity", err)
	}
	if err := open(id); err != nil {
		t.Errorf("OpenSecret: %v", err)
	}
	// The stored bytes are not the secret.
	raw, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Parts[0].Object)))
	if bytes.Contains(raw, s1.secret) || !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n")) {
		t.Errorf("the secret is not stored as an age file")
	}
}

func FuzzDecodeManifest(f *testing.F) {
	m := &Manifest{Magic: manifestMagic, Version: manifestVersion, Archive: "a", Seq: 3, Checkpoint: "cp",
		Files: []File{{Path: "segments/00000001.seg", Mode: 0o444, Size: 5, SHA256: hexSum([]byte("hello")),
			Parts: []Part{{Object: "data/00000003/segments/00000001.seg.0", Size: 5, SHA256: hexSum([]byte("hello"))}}}}}
	b, _ := m.encode()
	f.Add(b)
	f.Add([]byte("{}\nsha256 00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeManifest("fuzz", b)
		if err != nil {
			return
		}
		// What decodes must check out and encode back to what decodes the same.
		if err := m.check(); err != nil {
			t.Fatalf("decoded manifest fails check: %v", err)
		}
		b2, err := m.encode()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := decodeManifest("again", b2)
		if err != nil || m2.Seq != m.Seq || len(m2.Files) != len(m.Files) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
