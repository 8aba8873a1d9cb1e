// SPDX-License-Identifier: Apache-2.0

package offsite

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sealmail/sealmail/vfs"
)

// The offsite state file (docs/format.md, "Offsite copy").
const (
	stateMagic   = "sealmail-offsite"
	stateVersion = 1
	// maxStateBytes bounds the state file read back.
	maxStateBytes = 256 << 20
)

// State is what a host knows of its offsite copy: every object version it
// uploaded or adopted, with the lock it set. It is a cache of the bucket:
// lost, it is rebuilt from the bucket by the next [Sync] (each object the
// archive wants is looked up and adopted when its SHA-256 matches).
type State struct {
	Magic   string `json:"magic"`
	Version int    `json:"version"`
	Archive string `json:"archive"`
	// Bucket is the bucket and prefix, as s3://BUCKET/PREFIX: a state of
	// another bucket is not this one's.
	Bucket  string   `json:"bucket"`
	Objects []Object `json:"objects"`
}

// Object is one version in the bucket that the state knows.
type Object struct {
	Key         string    `json:"key"` // relative to the prefix
	VersionID   string    `json:"version_id"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	RetainUntil time.Time `json:"retain_until"` // COMPLIANCE lock
	// IDs are, for a segment, the message ids its entries name (message,
	// envelope, tombstone), as inclusive ranges.
	IDs []IDRange `json:"ids,omitempty"`
}

// IDRange is an inclusive range of message ids.
type IDRange [2]uint64

// NewState returns an empty state for an archive's copy in a bucket.
func NewState(archive, bucket string) *State {
	return &State{Magic: stateMagic, Version: stateVersion, Archive: archive, Bucket: bucket, Objects: []Object{}}
}

// Object returns the object the state knows under key (the newest it
// holds), or false.
func (s *State) Object(key string) (Object, bool) {
	for i := len(s.Objects) - 1; i >= 0; i-- {
		if s.Objects[i].Key == key {
			return s.Objects[i], true
		}
	}
	return Object{}, false
}

func (s *State) index(key, version string) int {
	return slices.IndexFunc(s.Objects, func(o Object) bool { return o.Key == key && o.VersionID == version })
}

// put records o, replacing what the state had for the same version.
func (s *State) put(o Object) {
	if i := s.index(o.Key, o.VersionID); i >= 0 {
		s.Objects[i] = o
		return
	}
	s.Objects = append(s.Objects, o)
}

func (s *State) remove(key, version string) {
	if i := s.index(key, version); i >= 0 {
		s.Objects = slices.Delete(s.Objects, i, i+1)
	}
}

// encode returns the state's bytes: JSON, a newline, and "sha256 HEX" of
// everything before it.
func (s *State) encode() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b.Bytes())
	fmt.Fprintf(&b, "sha256 %s\n", hex.EncodeToString(sum[:]))
	return b.Bytes(), nil
}

// DecodeState parses and checks a state file's bytes: checksum, magic,
// version ([ErrUnsupportedVersion]) and fields.
func DecodeState(b []byte) (*State, error) {
	bad := func(format string, v ...any) error {
		return fmt.Errorf("offsite state: %s: %w", fmt.Sprintf(format, v...), ErrCorrupt)
	}
	body, trailer, ok := cutLastLine(b)
	if !ok {
		return nil, bad("no checksum line at the end")
	}
	sum := sha256.Sum256(body)
	if want, ok := strings.CutPrefix(trailer, "sha256 "); !ok || want != hex.EncodeToString(sum[:]) {
		return nil, bad("checksum line does not match")
	}
	var head struct {
		Magic   string `json:"magic"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return nil, bad("%v", err)
	}
	if head.Magic != stateMagic {
		return nil, bad("magic %q", head.Magic)
	}
	if head.Version != stateVersion {
		return nil, fmt.Errorf("offsite state: version %d: %w", head.Version, ErrUnsupportedVersion)
	}
	var s State
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, bad("%v", err)
	}
	for _, o := range s.Objects {
		if !ValidPath(o.Key) || o.VersionID == "" || o.Size < 0 || !isHex32(o.SHA256) {
			return nil, bad("object %q version %q", o.Key, o.VersionID)
		}
		for _, r := range o.IDs {
			if r[0] == 0 || r[0] > r[1] {
				return nil, bad("object %s: id range %v", o.Key, r)
			}
		}
	}
	if s.Objects == nil {
		s.Objects = []Object{}
	}
	return &s, nil
}

// LoadState reads the state file path. A missing file is an empty state;
// one of another archive or bucket is set aside (the bucket is the truth:
// the next sync rebuilds it) and an empty state returned.
func LoadState(fsys vfs.FS, path, archive, bucket string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return NewState(archive, bucket), nil
	}
	if err != nil {
		return nil, fmt.Errorf("offsite state: %w", err)
	}
	if len(b) > maxStateBytes {
		return nil, fmt.Errorf("offsite state %s: larger than %d bytes: %w", path, maxStateBytes, ErrCorrupt)
	}
	s, err := DecodeState(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (remove it: the next sync rebuilds it from the bucket)", path, err)
	}
	if s.Archive != archive || s.Bucket != bucket {
		return NewState(archive, bucket), nil
	}
	return s, nil
}

// save writes the state atomically (vfs.WriteFile: PATH.tmp, fsync,
// rename, directory fsync).
func (s *State) save(fsys vfs.FS, path string) error {
	slices.SortStableFunc(s.Objects, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	b, err := s.encode()
	if err != nil {
		return err
	}
	if err := vfs.WriteFile(vfs.Or(fsys), path, b, 0o600); err != nil {
		return fmt.Errorf("offsite state: %w", err)
	}
	return nil
}
