// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/vfs"
)

// Defaults for the zero values of [Options].
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 5 * time.Minute
	DefaultMaxFileBytes       = 64 << 20
)

// maxBatch bounds how many queued appends one group commit takes.
const maxBatch = 4096

// checkpointActor is the actor of checkpoint entries.
const checkpointActor = "audit"

// Options configure [Create] and [Open]. The zero value is valid.
type Options struct {
	// ArchiveID names the archive the log belongs to. Create records it in
	// every file header (empty: a random id); Open, if it is set, refuses a
	// log with another id ([ErrArchiveMismatch]). 1–128 printable ASCII
	// characters without spaces.
	ArchiveID string
	// CheckpointEvery writes a checkpoint after this many entries since the
	// last one. 0 means [DefaultCheckpointEvery]; negative disables.
	CheckpointEvery int
	// CheckpointInterval writes a checkpoint this often if entries were
	// appended since the last one. 0 means [DefaultCheckpointInterval];
	// negative disables.
	CheckpointInterval time.Duration
	// MaxFileBytes starts a new file when the current one would grow beyond
	// it. 0 means [DefaultMaxFileBytes]. A file always takes at least one
	// entry, whatever its size.
	MaxFileBytes int64
	// Now returns the current time; nil means time.Now. Tests inject clocks.
	Now func() time.Time
	// Logger receives diagnostics (never entry fields); nil discards them.
	Logger *slog.Logger
	// LockTimeout is how long Create and Open wait for another process
	// that holds the log (a CLI command while the daemon starts). Default
	// 10 s.
	LockTimeout time.Duration
	// FS is the file system the log is written through; nil means the real
	// one ([vfs.OS]).
	FS vfs.FS
}

func (o Options) withDefaults() Options {
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 10 * time.Second
	}
	o.FS = vfs.Or(o.FS)
	return o
}

// lockDir takes the exclusive lock on dir/lock that makes a Log the only
// writer of dir.
func lockDir(o Options, dir string) (io.Closer, error) {
	l, err := vfs.Lock(o.FS, filepath.Join(dir, lockFile), o.LockTimeout)
	if errors.Is(err, vfs.ErrLocked) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
	}
	return l, err
}

// Log is an open audit log, the only writer of its directory. All methods
// are safe for concurrent use.
type Log struct {
	dir     string
	opts    Options
	priv    ed25519.PrivateKey
	archive string
	lock    io.Closer
	torn    int64

	mu     sync.RWMutex // senders hold R while queueing; Close takes W to shut the queue
	closed bool

	reqs     chan *request
	quit     chan struct{}
	done     chan struct{} // closed when the writer goroutine has exited
	closeErr error         // set by the writer before done is closed

	// Owned by the writer goroutine (and by Open before it starts).
	f           vfs.File
	fileNum     int
	fileSize    int64
	fileEntries int
	seq         uint64
	head        Hash
	sinceCP     int
	failed      error
	buf         []byte
	syncs       int // fsyncs of log files; read by benchmarks after Close

	// durSeq, durHead and durSinceCP are seq, head and sinceCP as of the
	// last line that was fsync'd: what a failed write returns to.
	durSeq     uint64
	durHead    Hash
	durSinceCP int

	stateMu   sync.Mutex // guards the copies below, read by any goroutine
	pubSeq    uint64
	pubHead   Hash
	latest    Checkpoint
	hasLatest bool
}

type request struct {
	ev         preparedEvent
	fields     map[string]any
	checkpoint bool
	done       chan result // buffered: the writer never blocks on it
}

type result struct {
	entry Entry
	cp    Checkpoint
	err   error
}

// Create makes a new audit log in dir (created if missing): a fresh Ed25519
// signing key in dir/signing.key (mode 0600, PKCS #8 PEM), its public key in
// dir/signing.pub (hex), and the first file with its header. It fails with
// [ErrExist] if dir already holds a log or a key.
func Create(dir string, opts Options) (*Log, error) {
	opts = opts.withDefaults()
	if opts.ArchiveID == "" {
		var b [16]byte
		rand.Read(b[:])
		opts.ArchiveID = hex.EncodeToString(b[:])
	}
	if err := checkArchiveID(opts.ArchiveID); err != nil {
		return nil, fmt.Errorf("audit: create %s: %w", dir, err)
	}
	if err := opts.FS.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("audit: create %s: %w", dir, err)
	}
	lock, err := lockDir(opts, dir)
	if err != nil {
		return nil, fmt.Errorf("audit: create %s: %w", dir, err)
	}
	l, err := create(dir, opts, lock)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("audit: create %s: %w", dir, err)
	}
	return l, nil
}

func create(dir string, opts Options, lock io.Closer) (*Log, error) {
	if _, err := listFiles(dir); err == nil {
		return nil, ErrExist
	}
	for _, name := range []string{keyFile, pubFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return nil, fmt.Errorf("%w: %s present", ErrExist, name)
		}
	}
	if err := removeTemps(opts.FS, dir); err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(opts.FS, dir, keyFile, marshalKey(priv), 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(opts.FS, dir, pubFile, marshalPub(pub), 0o644); err != nil {
		return nil, err
	}
	hdr := header{Magic: Magic, Version: Version, Archive: opts.ArchiveID, File: 1,
		Created: opts.Now().UTC().Format(time.RFC3339Nano)}
	if err := writeFileAtomic(opts.FS, dir, fileName(1), append(hdr.marshal(), '\n'), 0o640); err != nil {
		return nil, err
	}
	return open(dir, opts, lock)
}

// Open attaches to the audit log in dir and starts its writer.
//
// A torn final line — bytes after the last newline of the last file, left
// by a crash in the middle of a write — is cut off (the file is truncated to
// its last newline and fsync'd) and logged at Warn. Such bytes were never
// acknowledged: Append returns only after the whole line and its newline
// are fsync'd. [Log.TornBytes] tells how many bytes were removed, so the
// caller can record the repair in the log itself. Any other damage (a last
// line that does not parse, a bad header) fails with [ErrCorrupt] or
// [ErrUnsupportedVersion]; run [Verify].
func Open(dir string, opts Options) (*Log, error) {
	opts = opts.withDefaults()
	if opts.ArchiveID != "" {
		if err := checkArchiveID(opts.ArchiveID); err != nil {
			return nil, fmt.Errorf("audit: open %s: %w", dir, err)
		}
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", dir, ErrNotExist)
	}
	lock, err := lockDir(opts, dir)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", dir, err)
	}
	if err := removeTemps(opts.FS, dir); err != nil {
		lock.Close()
		return nil, fmt.Errorf("audit: open %s: %w", dir, err)
	}
	l, err := open(dir, opts, lock)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("audit: open %s: %w", dir, err)
	}
	return l, nil
}

func open(dir string, opts Options, lock io.Closer) (*Log, error) {
	priv, mode, err := loadKey(dir)
	if err != nil {
		return nil, err
	}
	if mode&0o077 != 0 {
		opts.Logger.Warn("audit signing key is readable by others", "path", filepath.Join(dir, keyFile), "mode", mode.String())
	}
	pub, err := ReadPublicKey(dir)
	if err != nil {
		return nil, err
	}
	if !pub.Equal(priv.Public()) {
		return nil, fmt.Errorf("%s does not match %s", pubFile, keyFile)
	}
	ns, err := listFiles(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{
		dir:     dir,
		opts:    opts,
		priv:    priv,
		lock:    lock,
		reqs:    make(chan *request, maxBatch),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		buf:     make([]byte, 0, 64<<10),
		fileNum: ns[len(ns)-1],
	}
	if err := l.recoverTail(ns); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, fileName(l.fileNum))
	f, err := opts.FS.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	l.f, l.fileSize = f, fi.Size()
	l.publish()
	go l.run()
	return l, nil
}

// recoverTail reads the last file: checks its header, cuts a torn tail, and
// finds the last entry and the last checkpoint (looking into the previous
// file if needed).
func (l *Log) recoverTail(ns []int) error {
	name := fileName(l.fileNum)
	path := filepath.Join(l.dir, name)
	f, err := l.opts.FS.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return fmt.Errorf("%s: incomplete header: %w", name, ErrCorrupt)
	}
	hdrLine := b[:nl]
	hdr, err := parseHeader(hdrLine)
	if err != nil {
		if errors.Is(err, ErrUnsupportedVersion) {
			return fmt.Errorf("%s: %w", name, err)
		}
		return fmt.Errorf("%s: %w: %w", name, ErrCorrupt, err)
	}
	if hdr.File != l.fileNum {
		return fmt.Errorf("%s: header says file %d: %w", name, hdr.File, ErrCorrupt)
	}
	if l.opts.ArchiveID != "" && hdr.Archive != l.opts.ArchiveID {
		return fmt.Errorf("%w: log has %q, want %q", ErrArchiveMismatch, hdr.Archive, l.opts.ArchiveID)
	}
	l.archive = hdr.Archive

	if end := bytes.LastIndexByte(b, '\n') + 1; end < len(b) {
		l.torn = int64(len(b) - end)
		if err := f.Truncate(int64(end)); err != nil {
			return fmt.Errorf("truncate torn tail of %s: %w", name, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", name, err)
		}
		l.opts.Logger.Warn("audit log: removed torn final line left by a crash", "file", name, "offset", end, "bytes", l.torn)
		b = b[:end]
	}

	l.fileEntries = bytes.Count(b, []byte("\n")) - 1
	if l.fileEntries == 0 && l.fileNum == 1 {
		l.seq, l.head = 0, hashLine(hdrLine)
		return nil
	}
	found := false
	err = scanBack(l.dir, ns, 2, func(e Entry) bool {
		if !found {
			found = true
			l.seq, l.head = e.Seq, e.Hash
		}
		if e.Type == TypeCheckpoint {
			if cp, err := checkpointFromEntry(e); err == nil {
				l.latest, l.hasLatest = cp, true
				l.sinceCP = int(l.seq - e.Seq)
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s: no entry in the last two files: %w", name, ErrCorrupt)
	}
	if !l.hasLatest {
		l.sinceCP = int(min(l.seq, 1<<30))
	}
	return nil
}

// TornBytes returns how many bytes of a torn final line Open removed (0 if
// the log was closed cleanly).
func (l *Log) TornBytes() int64 { return l.torn }

// ArchiveID returns the archive id recorded in the log.
func (l *Log) ArchiveID() string { return l.archive }

// PublicKey returns the checkpoint signing key's public half.
func (l *Log) PublicKey() ed25519.PublicKey { return l.priv.Public().(ed25519.PublicKey) }

// Head returns the sequence number and hash of the last durable entry.
func (l *Log) Head() (uint64, Hash) {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	return l.pubSeq, l.pubHead
}

// LatestCheckpoint returns the newest checkpoint written (or found at Open);
// false if there is none yet.
func (l *Log) LatestCheckpoint() (Checkpoint, bool) {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	return l.latest, l.hasLatest
}

func (l *Log) publish() {
	l.stateMu.Lock()
	l.pubSeq, l.pubHead = l.seq, l.head
	l.stateMu.Unlock()
}

// Append writes e as the next entry and returns it once it is durable: the
// line is written and the file fsync'd (and, after a rotation, the new file
// and the directory). Concurrent calls share one write and one fsync (group
// commit), so latency is about one fsync however many goroutines append.
//
// If ctx ends first, Append returns ctx's error; the entry may or may not be
// in the log then. Errors wrap [ErrInvalidEvent], [ErrClosed], [ErrFailed]
// or, when the disk is full, also [sealmail.ErrStorageFull].
func (l *Log) Append(ctx context.Context, e Event) (Entry, error) {
	if e.Type == TypeCheckpoint {
		return Entry{}, fmt.Errorf("audit: append: %w: type %q is reserved", ErrInvalidEvent, e.Type)
	}
	p, err := prepareEvent(e)
	if err != nil {
		return Entry{}, fmt.Errorf("audit: append %s: %w", e.Type, err)
	}
	res, err := l.do(ctx, &request{ev: p, fields: fieldsMap(e.Fields), done: make(chan result, 1)})
	if err != nil {
		return Entry{}, fmt.Errorf("audit: append %s: %w", e.Type, err)
	}
	return res.entry, nil
}

// Checkpoint writes a checkpoint now, covering every entry durable so far,
// and returns it once it is durable itself. On an empty log it covers seq 0
// (the genesis hash).
func (l *Log) Checkpoint(ctx context.Context) (Checkpoint, error) {
	res, err := l.do(ctx, &request{checkpoint: true, done: make(chan result, 1)})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	return res.cp, nil
}

// AppendAll writes events as consecutive entries, in order, and returns
// them once all are durable. The entries share fsyncs with each other and
// with concurrent appends, so a batch costs about one fsync.
func (l *Log) AppendAll(ctx context.Context, es []Event) ([]Entry, error) {
	reqs := make([]*request, len(es))
	for i, e := range es {
		if e.Type == TypeCheckpoint {
			return nil, fmt.Errorf("audit: append: %w: type %q is reserved", ErrInvalidEvent, e.Type)
		}
		p, err := prepareEvent(e)
		if err != nil {
			return nil, fmt.Errorf("audit: append %s: %w", e.Type, err)
		}
		reqs[i] = &request{ev: p, fields: fieldsMap(e.Fields), done: make(chan result, 1)}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, r := range reqs {
		if err := l.send(ctx, r); err != nil {
			return nil, fmt.Errorf("audit: append: %w", err)
		}
	}
	out := make([]Entry, len(reqs))
	var firstErr error
	for i, r := range reqs {
		// Every sent request is answered; wait for all of them so that none
		// is still being written when this returns.
		res := <-r.done
		if res.err != nil && firstErr == nil {
			firstErr = fmt.Errorf("audit: append %s: %w", es[i].Type, res.err)
		}
		out[i] = res.entry
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

func (l *Log) do(ctx context.Context, r *request) (result, error) {
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	if err := l.send(ctx, r); err != nil {
		return result{}, err
	}
	select {
	case res := <-r.done:
		return res, res.err
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}

func (l *Log) send(ctx context.Context, r *request) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	select {
	case l.reqs <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close drains queued appends, writes a final checkpoint if entries were
// appended since the last one, closes the file and releases the directory
// lock. Appends that race with Close fail with [ErrClosed]. Close is
// idempotent and returns the same error each time.
func (l *Log) Close() error {
	l.mu.Lock()
	first := !l.closed
	l.closed = true
	l.mu.Unlock()
	if first {
		close(l.quit)
	}
	<-l.done
	return l.closeErr
}

// run is the writer goroutine: the only code that touches the file after
// Open. It exits after Close, having answered every queued request.
func (l *Log) run() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.opts.CheckpointInterval > 0 {
		t := time.NewTicker(l.opts.CheckpointInterval)
		defer t.Stop()
		tick = t.C
	}
	batch := make([]*request, 0, 64)
	for {
		select {
		case r := <-l.reqs:
			batch = l.drain(append(batch[:0], r))
			l.commit(batch, false)
		case <-tick:
			if l.sinceCP > 0 && l.failed == nil {
				l.commit(nil, true)
			}
		case <-l.quit:
			for {
				batch = l.drain(batch[:0])
				if len(batch) == 0 {
					break
				}
				l.commit(batch, false)
			}
			if l.sinceCP > 0 && l.failed == nil {
				l.commit(nil, true)
			}
			if err := l.f.Close(); err != nil && l.failed == nil {
				l.failed = fmt.Errorf("close %s: %w", fileName(l.fileNum), err)
			}
			l.closeErr = l.failed
			if l.closeErr != nil {
				l.closeErr = fmt.Errorf("audit: close: %w", l.closeErr)
			}
			l.lock.Close()
			return
		}
	}
}

// drain adds whatever requests are queued, without waiting.
func (l *Log) drain(batch []*request) []*request {
	for len(batch) < maxBatch {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit writes one group: every request's line (plus automatic checkpoints
// and, if forceCP, one checkpoint at the end), then one fsync, then answers
// every request.
func (l *Log) commit(batch []*request, forceCP bool) {
	results := make([]result, len(batch))
	err := l.failed
	if err == nil {
		err = l.writeBatch(batch, results, forceCP)
		if err != nil {
			// A failed write (a full disk) is undone and the log goes on:
			// freeing space is all it takes. Only a failed fsync, or a
			// write that cannot be undone, leaves the file in a state the
			// log cannot know, and stops it until it is reopened.
			var sf *stickyError
			sticky := errors.As(err, &sf)
			if !sticky {
				if uerr := l.undo(); uerr != nil {
					err = fmt.Errorf("%w; undo: %w", err, uerr)
					sticky = true
				}
			}
			if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
				err = fmt.Errorf("%w: %w: %w", ErrFailed, sealmail.ErrStorageFull, err)
			} else {
				err = fmt.Errorf("%w: %w", ErrFailed, err)
			}
			if sticky {
				l.failed = err
			}
			if len(batch) == 0 {
				// A timed or final checkpoint: no caller to return the error to.
				l.opts.Logger.Error("audit log checkpoint failed", "file", fileName(l.fileNum), "sticky", sticky, "err", err)
			}
		}
	}
	for i, r := range batch {
		if err != nil {
			results[i] = result{err: err}
		}
		r.done <- results[i]
	}
}

// stickyError is a failure after which the log's file is in a state the
// log cannot know (a failed fsync, a half-done rotation): appends are
// refused until the log is reopened.
type stickyError struct{ err error }

func (e *stickyError) Error() string { return e.err.Error() }
func (e *stickyError) Unwrap() error { return e.err }

// undo returns the log to what is durable after a failed write: the file
// is cut back to the last fsync'd line, and sequence number and chain head
// to the last entry in it.
func (l *Log) undo() error {
	if err := l.f.Truncate(l.fileSize); err != nil {
		return fmt.Errorf("truncate %s to %d: %w", fileName(l.fileNum), l.fileSize, err)
	}
	l.seq, l.head, l.sinceCP = l.durSeq, l.durHead, l.durSinceCP
	l.buf = l.buf[:0]
	return nil
}

func (l *Log) writeBatch(batch []*request, results []result, forceCP bool) error {
	l.durSeq, l.durHead, l.durSinceCP = l.seq, l.head, l.sinceCP
	now := l.opts.Now().UTC()
	l.buf = l.buf[:0]
	bufEntries := 0
	var newest *Checkpoint

	emit := func(p preparedEvent) (Entry, error) {
		l.seq++
		start := len(l.buf)
		l.buf = p.appendLine(l.buf, l.seq, now, l.head)
		line := l.buf[start:]
		if int64(l.fileEntries+bufEntries) > 0 && l.fileSize+int64(len(l.buf))+1 > l.opts.MaxFileBytes {
			// Rotate before this line: flush what precedes it.
			saved := append([]byte(nil), line...)
			l.buf = l.buf[:start]
			if err := l.flush(&bufEntries); err != nil {
				return Entry{}, err
			}
			l.durSeq, l.durHead, l.durSinceCP = l.seq-1, l.head, l.sinceCP
			if err := l.rotate(now); err != nil {
				return Entry{}, err
			}
			l.buf = append(l.buf[:0], saved...)
			line = l.buf
		}
		e := Entry{Seq: l.seq, Time: now, Type: p.typ, Actor: p.actor, Prev: l.head, Hash: hashLine(line)}
		l.buf = append(l.buf, '\n')
		bufEntries++
		l.head = e.Hash
		return e, nil
	}
	checkpoint := func() (Checkpoint, error) {
		cp := Checkpoint{Archive: l.archive, Seq: l.seq, Head: l.head, Time: now}
		cp.sign(l.priv)
		if _, err := emit(prepareRaw(TypeCheckpoint, checkpointActor, cp.fieldsJSON())); err != nil {
			return Checkpoint{}, err
		}
		l.sinceCP = 0
		newest = &cp
		return cp, nil
	}

	for i, r := range batch {
		if r.checkpoint {
			cp, err := checkpoint()
			if err != nil {
				return err
			}
			results[i].cp = cp
			continue
		}
		e, err := emit(r.ev)
		if err != nil {
			return err
		}
		e.Fields = r.fields
		results[i].entry = e
		l.sinceCP++
		if l.opts.CheckpointEvery > 0 && l.sinceCP >= l.opts.CheckpointEvery {
			if _, err := checkpoint(); err != nil {
				return err
			}
		}
	}
	if forceCP {
		if _, err := checkpoint(); err != nil {
			return err
		}
	}
	if err := l.flush(&bufEntries); err != nil {
		return err
	}
	l.durSeq, l.durHead, l.durSinceCP = l.seq, l.head, l.sinceCP
	l.stateMu.Lock()
	l.pubSeq, l.pubHead = l.seq, l.head
	if newest != nil {
		l.latest, l.hasLatest = *newest, true
	}
	l.stateMu.Unlock()
	return nil
}

// flush writes the buffer to the current file and fsyncs it.
func (l *Log) flush(bufEntries *int) error {
	if len(l.buf) == 0 {
		return nil
	}
	name := fileName(l.fileNum)
	if _, err := l.f.Write(l.buf); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := l.f.Sync(); err != nil {
		return &stickyError{fmt.Errorf("sync %s: %w", name, err)}
	}
	l.syncs++
	l.fileSize += int64(len(l.buf))
	l.fileEntries += *bufEntries
	*bufEntries = 0
	l.buf = l.buf[:0]
	return nil
}

// rotate starts the next file. The current file is already fsync'd. The new
// file appears complete with its header (written through a temporary file
// and a rename, then the directory is fsync'd); the old file is made
// read-only.
func (l *Log) rotate(now time.Time) error {
	n := l.fileNum + 1
	hdr := header{Magic: Magic, Version: Version, Archive: l.archive, File: n,
		Created: now.Format(time.RFC3339Nano)}
	line := append(hdr.marshal(), '\n')
	if err := writeFileAtomic(l.opts.FS, l.dir, fileName(n), line, 0o640); err != nil {
		err = fmt.Errorf("rotate to %s: %w", fileName(n), err)
		if _, serr := l.opts.FS.Stat(filepath.Join(l.dir, fileName(n))); serr == nil {
			return &stickyError{err} // the new file is there, perhaps not durably
		}
		return err // nothing changed: try again with the next batch
	}
	f, err := l.opts.FS.OpenFile(filepath.Join(l.dir, fileName(n)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return &stickyError{fmt.Errorf("rotate to %s: %w", fileName(n), err)}
	}
	old := l.f
	oldName := fileName(l.fileNum)
	l.f, l.fileNum, l.fileSize, l.fileEntries = f, n, int64(len(line)), 0
	if err := old.Close(); err != nil {
		return &stickyError{fmt.Errorf("close %s: %w", oldName, err)}
	}
	if err := l.opts.FS.Chmod(filepath.Join(l.dir, oldName), 0o440); err != nil {
		l.opts.Logger.Warn("audit log: cannot make rotated file read-only", "file", oldName, "err", err)
	}
	l.opts.Logger.Info("audit log rotated", "file", fileName(n), "seq", l.seq)
	return nil
}

// prepareRaw builds a prepared event from already-encoded fields.
func prepareRaw(typ, actor string, fields []byte) preparedEvent {
	var tail []byte
	tail = append(tail, `,"type":"`+typ+`","actor":"`+actor+`","fields":`...)
	tail = append(tail, fields...)
	tail = append(tail, `,"prev":"`...)
	return preparedEvent{typ: typ, actor: actor, tail: tail, fields: fields}
}
