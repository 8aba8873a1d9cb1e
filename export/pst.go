// SPDX-License-Identifier: Apache-2.0

package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/export/pst"
)

// PST writes an Outlook .pst file (see export/pst) with every message in one
// folder, and its manifest next to it (PATH.manifest.csv, .json, .sha256).
// The manifest's sha256 and size are those of the original messages; the
// PST holds them converted to MAPI properties, with their transport headers.
type PST struct {
	path   string
	w      *pst.Writer
	folder pst.FolderID
	st     state
}

var _ Writer = (*PST)(nil)

// NewPST creates the PST file at path, which must not exist.
func NewPST(path string, opts Options) (*PST, error) {
	if err := checkBeside(path); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("export: create %s: file exists", path)
	}
	p := &PST{path: path, st: newState(opts, "pst", digestOriginal)}
	w, err := pst.CreateFile(path, pst.Options{DisplayName: "sealmail export", Logger: p.st.opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("export: create %s: %w", path, err)
	}
	name := "sealmail export"
	if opts.Query != "" {
		name = "sealmail export: " + opts.Query
	}
	folder, err := w.Folder(pst.RootFolder, name)
	if err != nil {
		_ = w.Close() // the folder's error is the one to report
		return nil, fmt.Errorf("export: create %s: %w", path, err)
	}
	p.w, p.folder = w, folder
	return p, nil
}

// Add appends one message, with its first envelope's recipients (Bcc
// included).
func (w *PST) Add(ctx context.Context, it Item) error {
	return w.st.add(ctx, it, "", w.path, true, func() error { return w.w.AddMessage(w.folder, it.Raw, firstEnvelope(it)) })
}

// Close finishes the PST and writes the manifest.
func (w *PST) Close() error { return w.st.finish(w.close) }

func (w *PST) close() error {
	err := w.w.Close()
	if w.st.err != nil {
		return w.st.err
	}
	if err != nil {
		return fmt.Errorf("export: finish %s: %w", w.path, err)
	}
	f, err := os.Open(w.path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("export: hash %s: %w", w.path, err)
	}
	return manifestBeside(&w.st, w.path, FileDigest{Name: filepath.Base(w.path), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
}

// Manifest returns the manifest; complete after Close.
func (w *PST) Manifest() Manifest { return w.st.manifest() }

func firstEnvelope(it Item) *sealmail.Envelope {
	if len(it.Envelopes) == 0 {
		return nil
	}
	return &it.Envelopes[0]
}
