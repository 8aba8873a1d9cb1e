// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/index"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
	"github.com/sealmail/sealmail/vfs"
)

// MaxMessageBytes is the most bytes of original plus journal report that
// one message may take in the store; a larger message is refused before
// `250`.
const MaxMessageBytes = store.MaxMessageBytes

// Options configures an Archive. The zero value is safe.
type Options struct {
	Logger *slog.Logger
	// SealSize is the size at which a segment is sealed; 0 means
	// store's default (1 GiB). It overrides Store.SealSize when set.
	SealSize int64
	// Store configures the segment store (tests inject faults with its
	// OpenFile).
	Store store.Options
	// JournalSources are the client networks whose journal reports are
	// trusted. Nil means loopback only.
	JournalSources []netip.Prefix
	// JournalUsers are AUTH users whose journal reports are trusted.
	JournalUsers []string
	// EncodedRecipientDomains are archive domains whose RCPT TO addresses
	// carry the original recipient in Postfix's recipient_bcc_maps
	// encoding (docs/journaling.md).
	EncodedRecipientDomains []string
	// MinFreeBytes is the free disk space below which ingest answers
	// "storage full" (SMTP 452) instead of risking a half-written message.
	// Default 1 GiB; negative disables the check.
	MinFreeBytes int64
	// CheckpointEvery and CheckpointInterval say how often the audit log
	// writes a signed checkpoint (defaults: 1000 entries, 5 minutes).
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Retention, if set, gives every ingested message its retention rule
	// and retain-until; without it no message is ever eligible for
	// deletion. Open compiles it and fails on an invalid rule.
	Retention *RetentionPolicy
	// LockTimeout is how long Open waits for another process that holds
	// the archive (default 10 s).
	LockTimeout time.Duration
	// ReadOnly opens the store without changing it (no repair, no ingest),
	// for the CLI when no daemon runs. The audit log still records reads.
	ReadOnly bool
	// IndexQueueBytes bounds the raw message bytes held for the indexer
	// after ingest (beyond it a message is left for reindex); 0 means
	// 256 MiB. The daemon counts it in its memory budget.
	IndexQueueBytes int64
	// JournalExpect lists how often journaling sources are expected to
	// send; silence beyond it is a journal gap ([Archive.CheckJournalGaps]).
	JournalExpect []JournalExpectation
	// FS is the file system the store (unless Store.FS is set) and the
	// audit log write through; nil means the real one. The index and the
	// catalog do their own I/O.
	FS vfs.FS
	// NoIndexer does not index received messages in this process: they
	// wait for `sealmail reindex` (the index watermark stays where it is),
	// as in a receiver whose reader service indexes. The ingest benchmark
	// uses it to measure ingest alone.
	NoIndexer bool
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Store.Logger == nil {
		o.Store.Logger = o.Logger
	}
	if o.Store.FS == nil {
		o.Store.FS = o.FS
	}
	if o.JournalSources == nil {
		o.JournalSources = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 1 << 30
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// RetentionPolicy is the retention rules of a configuration's [retention]
// section (docs/retention.md).
type RetentionPolicy = policy.Policy

// Archive is an open archive.
type Archive struct {
	dir     string
	opts    Options
	log     *slog.Logger
	store   *store.Store
	audit   *audit.Log
	indexMu sync.Mutex
	index   *index.Index // opened by idx; nil until then, or when it could not be opened
	indexer *indexer     // nil when read-only

	holdMu    sync.Mutex // serialises changes to the holds
	closeOnce sync.Once
	closeErr  error

	mu        sync.Mutex
	started   time.Time
	listeners []string
	freeAt    time.Time // when free space was last measured
	free      int64

	retention *policy.Compiled // from opts.Retention; nil without rules

	gaps gapWatch
}

// Create makes a new archive in dir that encrypts for the given age
// recipients, with its audit log and signing key, and opens it.
func Create(dir string, recipients []string, opts Options) (*Archive, error) {
	opts.setDefaults()
	s, err := store.Create(dir, recipients, store.Options{Logger: opts.Logger, FS: opts.Store.FS})
	if err != nil {
		return nil, err
	}
	id := s.Info().ID
	if err := s.Close(); err != nil {
		return nil, err
	}
	log, err := audit.Create(auditDir(dir), audit.Options{ArchiveID: id, Logger: opts.Logger, FS: opts.FS})
	if err != nil {
		return nil, fmt.Errorf("create audit log: %w", err)
	}
	if _, err := log.Append(context.Background(), audit.Event{Type: audit.TypeConfig, Actor: "init",
		Fields: createFields{Op: "create", Archive: id, Recipients: recipients}}); err != nil {
		_ = log.Close() // the append's error is the one to report
		return nil, err
	}
	if err := log.Close(); err != nil {
		return nil, err
	}
	return Open(dir, opts)
}

// Exists reports whether dir holds an archive.
func Exists(dir string) bool { return store.Exists(dir) }

// Open opens the archive in dir. Without an archive there it returns an
// error that tells how to make one.
func Open(dir string, opts Options) (*Archive, error) {
	opts.setDefaults()
	var retention *policy.Compiled
	if opts.Retention != nil {
		var err error
		if retention, err = opts.Retention.Compile(); err != nil {
			return nil, invalid("retention: %v", err)
		}
	}
	info, err := store.ReadArchiveInfo(dir)
	if errors.Is(err, store.ErrNoArchive) {
		return nil, fmt.Errorf("no archive at %s: run `sealmail init --data %s`: %w", dir, dir, ErrNoArchive)
	}
	if err != nil {
		return nil, fmt.Errorf("open archive %s: %w", dir, err)
	}
	log, err := openAudit(dir, info.ID, opts)
	if err != nil {
		return nil, err
	}
	if n := log.TornBytes(); n > 0 {
		if _, err := log.Append(context.Background(), audit.Event{Type: audit.TypeRecover, Actor: "sealmail",
			Fields: recoverFields{AuditTornBytes: n}}); err != nil {
			_ = log.Close()
			return nil, fmt.Errorf("audit the torn line cut from the audit log: %w", err)
		}
	}
	so := opts.Store
	so.ReadOnly = opts.ReadOnly
	if opts.SealSize > 0 {
		so.SealSize = opts.SealSize
	}
	if so.CatalogTimeout == 0 {
		so.CatalogTimeout = opts.LockTimeout
	}
	// The hooks run in the store's writer, which takes appends only after
	// Open has returned: a is set by then.
	var a *Archive
	storeHooks(&so, log, opts.Logger, dir, func(cs []store.Committed, add bool) {
		if a != nil {
			a.markReceipts(cs, add)
		}
	})
	s, err := store.Open(dir, so)
	if err != nil {
		_ = log.Close() // the store's error is the one to report
		return nil, fmt.Errorf("open archive %s: %w", dir, err)
	}
	a = &Archive{dir: dir, opts: opts, retention: retention, log: opts.Logger, store: s, audit: log, started: opts.Now()}
	// Silence is counted from the start: the daemon knows no earlier
	// message time per client.
	a.gaps.last = make([]time.Time, len(opts.JournalExpect))
	a.gaps.open = make([]JournalGap, len(opts.JournalExpect))
	for i := range a.gaps.last {
		a.gaps.last[i] = a.started
	}
	// The index is derived data: if it cannot be opened the archive still
	// ingests, and search says how to rebuild it. A read-only archive (the
	// CLI without a daemon) opens it only when a command needs it, so that
	// a status call never holds it while the daemon starts.
	if !opts.ReadOnly && !opts.NoIndexer {
		x, err := a.idx()
		if err != nil {
			a.log.Error("index unavailable: search is off until it is rebuilt (delete DIR/index, run `sealmail reindex --all`)", "err", err)
		} else if err := a.startIndexer(x); err != nil {
			_ = a.Close()
			return nil, err
		}
	}
	return a, nil
}

// Close closes the archive after pending ingests have finished, and the
// audit log after a final checkpoint. It is idempotent.
func (a *Archive) Close() error {
	a.closeOnce.Do(func() {
		// The indexer first: its last commit raises the watermark in the
		// store. Ingest has stopped (the SMTP server shuts down first); a
		// late message is not offered and stays for reindex.
		if a.indexer != nil {
			a.indexer.stop()
		}
		err := a.store.Close()
		a.indexMu.Lock()
		if a.index != nil {
			if ierr := a.index.Close(); err == nil {
				err = ierr
			}
		}
		a.indexMu.Unlock()
		if aerr := a.audit.Close(); err == nil {
			err = aerr
		}
		a.closeErr = err
	})
	return a.closeErr
}

// SetListeners records the addresses the daemon serves on, for Status.
func (a *Archive) SetListeners(addrs []string) {
	a.mu.Lock()
	a.listeners = slices.Clone(addrs)
	a.mu.Unlock()
}

// Admit tells whether the archive can take a message of about size bytes
// now. It answers an error wrapping [sealmail.ErrStorageFull] when free disk
// space would fall below the configured floor.
func (a *Archive) Admit(ctx context.Context, size int64) error {
	if a.opts.MinFreeBytes < 0 {
		return nil
	}
	free, err := a.freeBytes()
	if err != nil {
		return fmt.Errorf("check free space: %w", err)
	}
	// A stored message takes at most about its size (compression only
	// shrinks it); keep a margin for the catalog.
	if free-2*size < a.opts.MinFreeBytes {
		return fmt.Errorf("%w: %d bytes free on %s, floor %d", sealmail.ErrStorageFull, free, a.dir, a.opts.MinFreeBytes)
	}
	return nil
}

// freeBytes measures free space at most once a second.
func (a *Archive) freeBytes() (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.opts.Now()
	if now.Sub(a.freeAt) < time.Second && !a.freeAt.IsZero() {
		return a.free, nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(a.dir, &st); err != nil {
		return 0, err
	}
	a.free = int64(st.Bavail) * int64(st.Bsize)
	a.freeAt = now
	return a.free, nil
}

// trusted reports whether a client may vouch for a journal report's
// envelope.
func (a *Archive) trusted(env *sealmail.Envelope) bool {
	if env.AuthUser != "" && slices.Contains(a.opts.JournalUsers, env.AuthUser) {
		return true
	}
	ip, err := netip.ParseAddr(env.ClientIP)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range a.opts.JournalSources {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// idx returns the open index, opening it on first use. A daemon that finds
// it locked (a CLI command holding it a moment) waits up to 10 s.
func (a *Archive) idx() (*index.Index, error) {
	a.indexMu.Lock()
	defer a.indexMu.Unlock()
	if a.index != nil {
		return a.index, nil
	}
	// A new index (deleted, never built) holds nothing whatever the
	// watermark says: reset it, or purge would take every message for
	// indexed and no hold would match.
	_, statErr := os.Stat(indexDir(a.dir))
	fresh := errors.Is(statErr, os.ErrNotExist)
	var wait time.Duration
	if !a.opts.ReadOnly {
		wait = 10 * time.Second
	}
	x, err := index.Open(indexDir(a.dir), index.Options{Logger: a.log, LockTimeout: wait})
	if err != nil {
		return nil, fmt.Errorf("search index: %w (if it is damaged: delete DIR/index and run `sealmail reindex --all`)", err)
	}
	if fresh && !a.opts.ReadOnly {
		if err := a.store.SetIndexWatermark(0); err != nil {
			_ = x.Close() // the watermark's error is the one to report
			return nil, err
		}
	}
	a.index = x
	return x, nil
}
