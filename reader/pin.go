// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/vfs"
)

// PinFile is the reader state file that pins the receiver: the archive id
// and the audit log's signing key seen at the first attach
// (docs/format.md, "Reader state").
const PinFile = "reader.json"

const pinVersion = 1

type pin struct {
	Version  int       `json:"version"`
	Archive  string    `json:"archive"`
	AuditKey string    `json:"audit_key"` // Ed25519 public key, hex
	Pinned   time.Time `json:"pinned"`
}

// checkPin compares what the receiver presents with the pinned archive and
// key, and pins them if nothing is pinned yet (written whole: a temporary
// file, fsync, rename, directory fsync). It refuses another archive or key.
func checkPin(fsys vfs.FS, dir string, k archive.AuditKey, now time.Time) error {
	path := filepath.Join(dir, PinFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		j, err := json.MarshalIndent(pin{Version: pinVersion, Archive: k.Archive, AuditKey: k.Key, Pinned: now.UTC()}, "", "  ")
		if err != nil {
			return err
		}
		if err := vfs.WriteFile(fsys, path, append(j, '\n'), 0o600); err != nil {
			return fmt.Errorf("pin the receiver: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var p pin
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if p.Version != pinVersion {
		return fmt.Errorf("%s: version %d, this sealmail reads %d", path, p.Version, pinVersion)
	}
	if p.Archive != k.Archive || p.AuditKey != k.Key {
		return fmt.Errorf("the receiver presents archive %s with audit key %s, but this reader is pinned to archive %s with key %s (since %s): "+
			"refusing it; if the archive was really replaced, start the reader with a new state directory",
			k.Archive, k.Key, p.Archive, p.AuditKey, p.Pinned.Format(time.DateOnly))
	}
	return nil
}
