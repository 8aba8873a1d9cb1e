// SPDX-License-Identifier: Apache-2.0

package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/vfs"
)

// Item is one message to export.
type Item struct {
	ID       sealmail.MessageID
	Received time.Time
	// Raw is the original message, byte-exact. Writers neither keep nor
	// modify it after Add returns.
	Raw []byte
	// Envelopes may be empty. The mbox writer takes the "From " line's
	// sender from the first one.
	Envelopes []sealmail.Envelope
}

// Options configures a writer. The zero value is usable.
type Options struct {
	// Logger receives diagnostics (ids, counts, paths; never content).
	// Nil discards them.
	Logger *slog.Logger
	// Tool names the program in the manifest, e.g. "sealmail 0.1".
	// Empty means "sealmail".
	Tool string
	// Query is the search that selected the messages, recorded verbatim in
	// the manifest.
	Query string
	// Now returns the current time for the manifest's timestamps. Nil means
	// time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Tool == "" {
		o.Tool = "sealmail"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Writer is what every export format implements. The CLI decrypts messages
// and hands them to Add one at a time; Close finishes the export and writes
// its manifest.
type Writer interface {
	// Add writes one message. Add after Close returns ErrClosed.
	Add(ctx context.Context, it Item) error
	// Close flushes everything, writes the manifest files and makes the
	// export durable (files and directory fsync'd). It is idempotent.
	Close() error
	// Manifest returns a copy of the manifest so far; after Close it is
	// complete, with Created and the manifest files' digests set.
	Manifest() Manifest
}

var (
	_ Writer = (*EMLDir)(nil)
	_ Writer = (*EMLZip)(nil)
	_ Writer = (*Mbox)(nil)
)

// emlName returns the file name of a message in an EML export:
// YYYYMMDD-HHMMSS-<id>.eml with the received time in UTC.
func emlName(it Item) string {
	return it.Received.UTC().Format("20060102-150405") + "-" + it.ID.String() + ".eml"
}

// state is what every writer shares: options, manifest rows, the ids seen
// and the closed flag. Its methods are called with mu held.
type state struct {
	mu       sync.Mutex
	opts     Options
	man      Manifest
	seen     map[sealmail.MessageID]bool
	closed   bool
	closeErr error
	err      error // sticky: the output is damaged, further Adds fail
}

// finish runs close once, with mu held, and returns its result on every
// call: a writer's Close.
func (s *state) finish(close func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.closeErr = close()
	}
	return s.closeErr
}

func newState(opts Options, format, digest string) state {
	opts = opts.withDefaults()
	return state{
		opts: opts,
		seen: make(map[sealmail.MessageID]bool),
		man: Manifest{
			Format:  format,
			Tool:    opts.Tool,
			Query:   opts.Query,
			Started: opts.Now().UTC(),
			Digest:  digest,
		},
	}
}

// check returns the error that forbids adding it, if any.
func (s *state) check(ctx context.Context, it Item) error {
	if s.closed {
		return ErrClosed
	}
	if s.err != nil {
		return s.err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("export: add message %s: %w", it.ID, err)
	}
	if s.seen[it.ID] {
		return fmt.Errorf("export: add message %s: %w", it.ID, ErrDuplicate)
	}
	return nil
}

// record appends the manifest row for it.
// add is every writer's Add: under the lock it checks it, runs write, and
// records it in the manifest (as file, "" for single-file exports). A write
// error into a shared output (zip, mbox, pst) damages it: it is kept and
// returned by every later call. A failed EML file does not.
func (s *state) add(ctx context.Context, it Item, file, target string, sticky bool, write func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, it); err != nil {
		return err
	}
	if err := write(); err != nil {
		err = fmt.Errorf("export: write message %s to %s: %w", it.ID, target, err)
		if sticky {
			s.err = err
		}
		return err
	}
	s.record(it, file)
	s.opts.Logger.Debug("exported message", "id", it.ID, "file", file)
	return nil
}

func (s *state) record(it Item, file string) {
	s.seen[it.ID] = true
	sum := sha256.Sum256(it.Raw)
	r := newRow(it)
	r.Seq = len(s.man.Messages) + 1
	r.File = file
	r.SHA256 = hex.EncodeToString(sum[:])
	s.man.Messages = append(s.man.Messages, r)
	s.man.Count = len(s.man.Messages)
}

// manifest returns a copy of the manifest so far: a writer's Manifest.
func (s *state) manifest() Manifest {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.man
	m.Messages = slices.Clone(s.man.Messages)
	if m.Messages == nil {
		m.Messages = []Row{}
	}
	m.Files = slices.Clone(s.man.Files)
	return m
}

// writeFileSync creates path (which must not exist) with data and fsyncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// syncDir fsyncs a directory so that the entries created in it are durable.
func syncDir(dir string) error {
	if err := vfs.SyncDir(nil, dir); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// parentDir returns the directory holding path, for syncing its entry.
func parentDir(path string) string { return filepath.Dir(filepath.Clean(path)) }
