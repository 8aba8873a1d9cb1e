// SPDX-License-Identifier: Apache-2.0

package offsite

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

// Manifest format (docs/format.md, "Backup target").
const (
	manifestMagic   = "sealmail-backup"
	manifestVersion = 1
	// maxManifestBytes bounds a manifest read from a target.
	maxManifestBytes = 256 << 20
	// maxParts bounds the parts of one file.
	maxParts = 1 << 20
)

// Manifest describes one backup: every file of the archive it holds, each
// as the target's objects (parts) whose concatenation is the file.
type Manifest struct {
	Magic   string    `json:"magic"`
	Version int       `json:"version"`
	Archive string    `json:"archive"` // the archive id
	Seq     uint64    `json:"seq"`     // 1, 2, …: one more than the backup before
	Created time.Time `json:"created"`
	Program string    `json:"program"` // what wrote it, e.g. "sealmail 1.2.0"
	// Checkpoint is the signed audit checkpoint the backup's audit log ends
	// with, in its text form (docs/format.md, "Signature rule").
	Checkpoint string `json:"checkpoint"`
	// AuditSeq is the audit log's last entry when the catalog was read:
	// entries after it, up to the checkpoint, may have no effect in the
	// catalog's copy (restore reconciles them).
	AuditSeq uint64 `json:"audit_seq"`
	// Recipients are the age recipients the encrypted files are sealed to.
	Recipients []string `json:"recipients"`
	Files      []File   `json:"files"`
}

// File is one file of a backup.
type File struct {
	// Path is where the file goes in the archive directory:
	// slash-separated, relative, without "." or ".." elements.
	Path string `json:"path"`
	// Mode is the file's permission bits, in octal ("0444").
	Mode   Mode   `json:"mode"`
	Size   int64  `json:"size"`   // of the stored bytes
	SHA256 string `json:"sha256"` // of the stored bytes, hex
	// Encrypted, when set, says that the stored bytes are an age file whose
	// plaintext is the file ([SealSecret]); it gives the plaintext's size
	// and SHA-256.
	Encrypted *Plain `json:"encrypted,omitempty"`
	Parts     []Part `json:"parts"`
}

// Plain is the size and SHA-256 of an encrypted file's plaintext.
type Plain struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Part is one object of a file: bytes [Offset, Offset+Size) of it.
type Part struct {
	Object string `json:"object"` // the object's name in the target
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Mode is a file mode's permission bits, written as an octal string.
type Mode fs.FileMode

// MarshalText writes the mode as four octal digits.
func (m Mode) MarshalText() ([]byte, error) { return fmt.Appendf(nil, "%04o", uint32(m)), nil }

// UnmarshalText reads an octal mode of at most 0777.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 8, 32)
	if err != nil || v > 0o777 {
		return fmt.Errorf("mode %q: want octal permission bits such as 0640", b)
	}
	*m = Mode(v)
	return nil
}

// file returns the manifest's file with path p, nil if none.
func (m *Manifest) file(p string) *File {
	if m == nil {
		return nil
	}
	for i := range m.Files {
		if m.Files[i].Path == p {
			return &m.Files[i]
		}
	}
	return nil
}

// File returns the manifest's file with path p, or false.
func (m *Manifest) File(p string) (File, bool) {
	if f := m.file(p); f != nil {
		return *f, true
	}
	return File{}, false
}

// manifestName is the name of backup seq's manifest in the target.
func manifestName(seq uint64) string { return fmt.Sprintf("manifests/%08d.json", seq) }

// parseManifestName returns the seq of a manifest object name.
func parseManifestName(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, "manifests/")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, ".json")
	if !ok || len(s) != 8 {
		return 0, false
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 || manifestName(seq) != name {
		return 0, false
	}
	return seq, true
}

// objectName is the name of the part of file p that starts at off, written
// by backup seq.
func objectName(seq uint64, p string, off int64) string {
	return fmt.Sprintf("data/%08d/%s.%d", seq, p, off)
}

// encode returns the manifest's bytes: the JSON object, a newline, and a
// last line "sha256 HEX" with the SHA-256 of everything before it.
func (m *Manifest) encode() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b.Bytes())
	fmt.Fprintf(&b, "sha256 %s\n", hex.EncodeToString(sum[:]))
	return b.Bytes(), nil
}

// decodeManifest parses and checks a manifest's bytes: checksum, magic,
// version (an unknown one is [ErrUnsupportedVersion]), and every field a
// reader relies on. name says in errors which manifest it is.
func decodeManifest(name string, b []byte) (*Manifest, error) {
	bad := func(format string, v ...any) error {
		return fmt.Errorf("%s: %s: %w", name, fmt.Sprintf(format, v...), ErrCorrupt)
	}
	body, trailer, ok := cutLastLine(b)
	if !ok {
		return nil, bad("no checksum line at the end")
	}
	want, ok := strings.CutPrefix(trailer, "sha256 ")
	sum := sha256.Sum256(body)
	if !ok || want != hex.EncodeToString(sum[:]) {
		return nil, bad("checksum line %q does not match the SHA-256 %x of the rest", trailer, sum)
	}
	var head struct {
		Magic   string `json:"magic"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return nil, bad("%v", err)
	}
	if head.Magic != manifestMagic {
		return nil, bad("magic %q, want %q", head.Magic, manifestMagic)
	}
	if head.Version != manifestVersion {
		return nil, fmt.Errorf("%s: version %d: %w", name, head.Version, ErrUnsupportedVersion)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, bad("%v", err)
	}
	if err := m.check(); err != nil {
		return nil, bad("%v", err)
	}
	return &m, nil
}

// cutLastLine splits b, which must end in a newline, before its last line;
// it returns that line without its newline.
func cutLastLine(b []byte) (body []byte, last string, ok bool) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, "", false
	}
	i := bytes.LastIndexByte(b[:len(b)-1], '\n')
	if i < 0 {
		return nil, "", false
	}
	return b[:i+1], string(b[i+1 : len(b)-1]), true
}

// check validates what readers rely on: paths that stay inside the archive
// directory, object names inside data/, sizes that add up, hashes in hex.
func (m *Manifest) check() error {
	if m.Seq == 0 {
		return fmt.Errorf("seq 0")
	}
	if m.Archive == "" {
		return fmt.Errorf("no archive id")
	}
	seen := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		if !ValidPath(f.Path) {
			return fmt.Errorf("file path %q: not a relative path inside the archive", f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("file %s listed twice", f.Path)
		}
		seen[f.Path] = true
		if !isHex32(f.SHA256) {
			return fmt.Errorf("file %s: sha256 %q", f.Path, f.SHA256)
		}
		if f.Encrypted != nil && (!isHex32(f.Encrypted.SHA256) || f.Encrypted.Size < 0) {
			return fmt.Errorf("file %s: encrypted plaintext size or sha256", f.Path)
		}
		if len(f.Parts) > maxParts {
			return fmt.Errorf("file %s: %d parts", f.Path, len(f.Parts))
		}
		var off int64
		for _, p := range f.Parts {
			switch {
			case !strings.HasPrefix(p.Object, "data/") || !ValidPath(p.Object):
				return fmt.Errorf("file %s: object name %q", f.Path, p.Object)
			case p.Offset != off || p.Size <= 0 || p.Size > f.Size-off:
				return fmt.Errorf("file %s: part %s at %d of %d bytes does not follow at %d", f.Path, p.Object, p.Offset, p.Size, off)
			case !isHex32(p.SHA256):
				return fmt.Errorf("file %s: part %s: sha256 %q", f.Path, p.Object, p.SHA256)
			}
			off += p.Size
		}
		if off != f.Size {
			return fmt.Errorf("file %s: parts hold %d bytes, size is %d", f.Path, off, f.Size)
		}
	}
	return nil
}

// ValidPath reports whether p is a slash-separated relative path without
// empty, "." or ".." elements: one that stays inside the directory it is
// joined to.
func ValidPath(p string) bool {
	return fs.ValidPath(p) && p != "." && !strings.Contains(p, "\\") && path.Clean(p) == p
}

func isHex32(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && strings.ToLower(s) == s
}
