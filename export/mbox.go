// SPDX-License-Identifier: Apache-2.0

package export

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sealmail/sealmail"
)

// Mbox exports messages into one mboxrd file (qmail mbox(5); Library of
// Congress fdd000385). Each message is
//
//	From <envelope sender> <asctime of the received time, UTC>\n
//	<message, CRLF converted to LF, ">*From " lines quoted with one more '>'>\n
//	\n
//
// The envelope sender is the first envelope's Sender (else its MAIL FROM),
// or MAILER-DAEMON when there is none or it is empty or unprintable. A
// message that does not end with a line break gets one. mbox is an LF
// format, so the mbox does not hold the byte-exact originals (EML exports
// do); the manifest's SHA-256 and size are those of the original bytes. A
// message with LF line ends is recovered exactly by undoing the quoting;
// one with CRLF line ends is checked against its digest in an EML export.
//
// Messages are written through a buffer as they come; Close flushes and
// fsyncs the file, writes PATH.manifest.csv, PATH.manifest.json and
// PATH.manifest.sha256 (covering the mbox file and both manifests) and
// fsyncs the directory.
type Mbox struct {
	path string
	f    *os.File
	sum  *countHash // hashes the mbox file as written
	bw   *bufio.Writer
	st   state
}

// NewMbox creates the mbox file at path. Neither it nor its manifest files
// (PATH.manifest.csv, .json, .sha256) may exist.
func NewMbox(path string, opts Options) (*Mbox, error) {
	if err := checkBeside(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("export: create %s: %w", path, err)
	}
	sum := &countHash{w: f, h: sha256.New()}
	w := &Mbox{path: path, f: f, sum: sum, bw: bufio.NewWriterSize(sum, 64<<10), st: newState(opts, "mbox", digestOriginal)}
	w.st.opts.Logger.Debug("export started", "format", "mbox", "path", path)
	return w, nil
}

// Add appends one message. An I/O error damages the mbox: later Adds and
// Close return it.
func (w *Mbox) Add(ctx context.Context, it Item) error {
	return w.st.add(ctx, it, "", w.path, true, func() error { return writeMboxMessage(w.bw, it) })
}

// Close flushes and fsyncs the mbox, writes its manifest files and fsyncs
// the directory.
func (w *Mbox) Close() error { return w.st.finish(w.close) }

func (w *Mbox) close() error {
	if w.st.err != nil {
		w.f.Close()
		return w.st.err
	}
	err := w.bw.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export: finish %s: %w", w.path, err)
	}
	mboxFile := FileDigest{Name: filepath.Base(w.path), Size: w.sum.n, SHA256: hex.EncodeToString(w.sum.h.Sum(nil))}
	if err := manifestBeside(&w.st, w.path, mboxFile); err != nil {
		return err
	}
	w.st.opts.Logger.Info("export finished", "format", "mbox", "path", w.path, "count", w.st.man.Count)
	return nil
}

// Manifest returns a copy of the manifest so far.
// manifestBeside writes the manifest files next to a single-file export at
// path (PATH.manifest.csv, .json, .sha256) and records out as its output.
func manifestBeside(st *state, path string, out FileDigest) error {
	dir, base := filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	create := func(name string) (io.Writer, func() error, error) {
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("export: create %s: %w", path, err)
		}
		bw := bufio.NewWriter(f)
		return bw, func() error {
			err := bw.Flush()
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("export: sync %s: %w", path, err)
			}
			return nil
		}, nil
	}
	if err := emitManifest(&st.man, st.opts.Now(), base+".", []FileDigest{out}, create); err != nil {
		return err
	}
	st.man.Output = out
	return syncDir(dir)
}

// checkBeside refuses an export whose manifest files already exist.
func checkBeside(path string) error {
	for _, n := range []string{ManifestCSV, ManifestJSON, ManifestSHA256} {
		p := path + "." + n
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("export: create %s: %s exists", path, p)
		}
	}
	return nil
}

func (w *Mbox) Manifest() Manifest { return w.st.manifest() }

// writeMboxMessage writes the "From " line, the quoted body and the empty
// line that ends a message.
func writeMboxMessage(w *bufio.Writer, it Item) error {
	w.WriteString("From ")
	w.WriteString(mboxSender(it.Envelopes))
	w.WriteByte(' ')
	// mbox(5): the date is in asctime format, "Thu Nov 24 18:22:48 1986".
	w.WriteString(it.Received.UTC().Format(time.ANSIC))
	w.WriteByte('\n')
	quoteMboxrd(w, it.Raw)
	_, err := w.Write([]byte{'\n'})
	return err
}

// quoteMboxrd writes msg as an mboxrd message body: every CRLF becomes LF,
// a line matching ^>*From  gets one more '>' in front (the mboxrd rule,
// which a reader undoes by removing one '>' from every ^>+From  line),
// and a missing final line break is added. A lone CR is kept.
func quoteMboxrd(w *bufio.Writer, msg []byte) {
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
			line = bytes.TrimSuffix(line, []byte{'\r'})
		} else {
			msg = nil
		}
		if isFromLine(line) {
			w.WriteByte('>')
		}
		w.Write(line)
		w.WriteByte('\n')
	}
}

// isFromLine reports whether line matches ^>*From  (mboxrd).
func isFromLine(line []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From "))
}

// mboxSender returns the address for the "From " line: the first
// envelope's Sender, else its MAIL FROM, else MAILER-DAEMON. An address
// with white space, control or non-ASCII characters (which would break the
// line's syntax) is replaced by MAILER-DAEMON.
func mboxSender(envs []sealmail.Envelope) string {
	if len(envs) == 0 {
		return "MAILER-DAEMON"
	}
	// Sender is the true envelope sender (for a journal report, the
	// original's, not the journaling agent's MAIL FROM).
	s := strings.TrimSpace(envs[0].Sender)
	if s == "" {
		s = strings.TrimSpace(envs[0].MailFrom)
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	if s == "" {
		return "MAILER-DAEMON"
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return "MAILER-DAEMON"
		}
	}
	return s
}
