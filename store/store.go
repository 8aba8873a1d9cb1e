// SPDX-License-Identifier: Apache-2.0

package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/vfs"
)

// File is the part of *os.File that segments are written through. Tests
// substitute it to fail or stop at any write, sync or truncate.
type File interface {
	io.Writer
	io.ReaderAt
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Close() error
}

// Options configures a Store. The zero value is safe.
type Options struct {
	// SealSize is the size at which the active segment is sealed and a new
	// one started. Default 1 GiB.
	SealSize int64
	// MaxBatchBytes bounds the payload bytes of one group commit. Default 64 MiB.
	MaxBatchBytes int64
	// CommitDelay is how long the writer may wait before a group commit
	// for more appends to join it, when appends arrive fast enough that at
	// least one more is due in that time (see batchGatherer). Default
	// 500 µs; negative: never wait.
	CommitDelay time.Duration
	// FlushInterval bounds how long the catalog trails the segments: the
	// changes of acknowledged commits are written to catalog.db at the
	// latest this long after they came (and after 4096 entries). A crash
	// loses no more than that of the catalog, which Open replays from
	// the segment. Default 1 s.
	FlushInterval time.Duration
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// FS is the file system every file but the catalog is written
	// through; nil means the real one ([vfs.OS]). bbolt writes catalog.db
	// itself.
	FS vfs.FS
	// OpenFile opens segment files for writing; nil means FS.OpenFile.
	// Tests use it to fail a segment's writes.
	OpenFile func(name string, flag int, perm os.FileMode) (File, error)
	// OnSeal is called by the writer goroutine before a sealed segment's
	// catalog entry commits, so that the caller can make an audit entry for
	// its SHA-256 durable first; it returns that entry as an [Intent], whose
	// outcome OnIntent reports. An error stops the seal. It must not call
	// back into the Store.
	OnSeal func(SegmentInfo) (Intent, error)
	// OnIntent reports whether the change an [Intent] announced committed.
	// For a committed change it is called until it succeeds: after the
	// commit, and at every Open until then (a crash came in between).
	// It must not call back into the Store.
	OnIntent func(i Intent, committed bool) error
	// OnOpen is called at Open (not read-only), after the tail repair and
	// before the writer starts, with the catalog's segments and next id. It
	// returns the lowest id the store may give next: the caller's records
	// (the audit log) may name ids whose records a crash lost, and ids are
	// never given twice.
	OnOpen func(segs []SegmentInfo, next sealmail.MessageID) (sealmail.MessageID, error)
	// OnCommit is called by the writer goroutine for every group commit,
	// while the segment is being synced, so that the caller can make an
	// audit entry for each stored entry durable: the commit is acknowledged
	// only after both. An error aborts the commit (the appends fail). It must
	// not call back into the Store.
	OnCommit func([]Committed) error
	// OnRollback is called when a commit fails after OnCommit succeeded:
	// the entries it was given were not stored.
	OnRollback func([]Committed, error)
	// OnCommitDone is called by the writer goroutine after each group
	// commit that wrote records, with the number of entries in the batch
	// and how long the commit took (encryption, segment write and fsync
	// with OnCommit), for metrics. It must not block or call back into the Store.
	OnCommitDone func(entries int, took time.Duration)
	// OnSegmentSync is called by the writer goroutine after each group
	// commit's fsync of the segment, with how long the fsync took, for
	// metrics. It must not block or call back into the Store.
	OnSegmentSync func(took time.Duration)
	// OnReplay is called at Open (read-only too) with the entries of the
	// complete records after the active segment's committed length, in
	// order: written by commits after the catalog's last flush. It returns
	// how many of them, from the first, its records (the audit log) show
	// were made durable as they were stored, and fills in, for those, what
	// the records' clear entry tables lack: RetainUntil and Forever, and
	// for a tombstone Audit. Those records are replayed into the catalog;
	// the rest of the tail is cut off (OnDiscard). Nil replays every
	// complete record, without retention. It must not call back into the
	// Store and must change nothing.
	OnReplay func(entries []Committed) (int, error)
	// OnDiscard is called at Open, before the active segment's uncommitted
	// tail (bytes bytes, kept in the file keptIn) is cut off, with the
	// entries of the complete records in it that are not replayed: written
	// before a crash, never acknowledged, perhaps audited.
	OnDiscard func(entries []Committed, bytes int64, keptIn string) error
	// CatalogTimeout is how long Open waits for the catalog lock held by
	// another process before it returns ErrLocked. Default 10 s.
	CatalogTimeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// ReadOnly opens the catalog read-only and changes nothing on disk: no
	// tail repair, no writer; Append fails. Readers that run without the
	// daemon (list, get, verify) use it.
	ReadOnly bool
}

func (o *Options) setDefaults() {
	if o.SealSize <= 0 {
		o.SealSize = 1 << 30
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 64 << 20
	}
	if o.CommitDelay == 0 {
		o.CommitDelay = 500 * time.Microsecond
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.FS = vfs.Or(o.FS)
	if o.OpenFile == nil {
		fsys := o.FS
		o.OpenFile = func(name string, flag int, perm os.FileMode) (File, error) {
			return fsys.OpenFile(name, flag, perm)
		}
	}
	if o.CatalogTimeout <= 0 {
		o.CatalogTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// ArchiveInfo is the content of DIR/archive.json: what identifies an archive
// and whom it encrypts for. It holds no secrets.
type ArchiveInfo struct {
	Format     int       `json:"format"`
	ID         string    `json:"id"` // 32 hex digits
	Created    time.Time `json:"created"`
	Recipients []string  `json:"recipients"`
}

const (
	archiveFile   = "archive.json"
	digestKeyFile = "digest.key"
	catalogFile   = "catalog.db"
	archiveFormat = 1
)

// Exists reports whether dir holds an archive.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, archiveFile))
	return err == nil
}

// ParseRecipients parses age recipient strings (age1…, age1pq1…, ssh keys).
func ParseRecipients(rs []string) ([]age.Recipient, error) {
	if len(rs) == 0 {
		return nil, errors.New("no recipients: an archive needs at least one age recipient")
	}
	out, err := age.ParseRecipients(strings.NewReader(strings.Join(rs, "\n")))
	if err != nil {
		return nil, fmt.Errorf("parse recipients: %w", err)
	}
	return out, nil
}

// Create makes a new, empty archive in dir that encrypts for recipients.
// dir may exist but must not hold an archive.
func Create(dir string, recipients []string, opts Options) (*Store, error) {
	opts.setDefaults()
	if _, err := ParseRecipients(recipients); err != nil {
		return nil, err
	}
	if Exists(dir) {
		return nil, fmt.Errorf("create archive in %s: %w", dir, ErrExists)
	}
	if err := opts.FS.MkdirAll(filepath.Join(dir, "segments"), 0o700); err != nil {
		return nil, fmt.Errorf("create archive in %s: %w", dir, err)
	}
	var id [16]byte
	key := make([]byte, 32)
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	info := ArchiveInfo{Format: archiveFormat, ID: hex.EncodeToString(id[:]), Created: opts.Now().UTC(), Recipients: recipients}
	j, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := vfs.WriteFile(opts.FS, filepath.Join(dir, digestKeyFile), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("create archive in %s: %w", dir, err)
	}
	db, err := bolt.Open(filepath.Join(dir, catalogFile), 0o600, &bolt.Options{Timeout: opts.CatalogTimeout})
	if err != nil {
		return nil, fmt.Errorf("create catalog: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range catalogBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(metaFormat, []byte{catalogFormat}); err != nil {
			return err
		}
		if err := meta.Put(metaArchiveID, id[:]); err != nil {
			return err
		}
		return putU64(meta, metaNextID, 1)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("create catalog: %w", err)
	}
	// archive.json is written last: its presence marks a complete archive.
	if err := vfs.WriteFile(opts.FS, filepath.Join(dir, archiveFile), append(j, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("create archive in %s: %w", dir, err)
	}
	return Open(dir, opts)
}

// ReadArchiveInfo reads DIR/archive.json.
func ReadArchiveInfo(dir string) (*ArchiveInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, archiveFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoArchive)
	}
	if err != nil {
		return nil, err
	}
	var info ArchiveInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", archiveFile, err, ErrCorrupt)
	}
	if info.Format != archiveFormat {
		return nil, fmt.Errorf("%s: format %d: %w", archiveFile, info.Format, ErrUnsupportedVersion)
	}
	return &info, nil
}

// Store is an open archive store. See the package documentation.
type Store struct {
	dir   string
	opts  Options
	fs    vfs.FS
	log   *slog.Logger
	info  *ArchiveInfo
	id    [16]byte
	key   []byte
	db    *bolt.DB
	codec *codec

	reqs chan *appendReq
	done chan struct{} // closed when the writer goroutine has exited

	// catMu is held by whoever decides against the catalog or changes it:
	// the writer for each commit, every other catalog transaction
	// ([Store.update]), Open while it repairs.
	catMu sync.Mutex
	// pend (guarded by pendMu; changed only with catMu held too) is what
	// acknowledged commits changed in the catalog since its last flush
	// (pending.go).
	pendMu sync.RWMutex
	pend   *pending

	mu        sync.Mutex
	compactMu sync.RWMutex               // held by a compaction; shared by readers that need the files to stay (Verify, Snapshot)
	closed    bool                       // no more appends
	shut      bool                       // Close has run
	inflight  map[[32]byte]chan struct{} // digests being appended
	snaps     map[*Snapshot]bool         // open snapshots, closed by Close
	appends   sync.WaitGroup

	// Owned by the writer goroutine after Open.
	active  *activeSegment
	nextSeq SegmentSeq // the segment to start when active is nil after a seal
	// nextEnc (capacity 1) receives the next record's encryptor from the
	// goroutine that makes it; encBusy says one is being made or ready.
	nextEnc chan *encryptor
	encBusy bool

	// broken (under mu) is set when a failed write could not be undone, a
	// segment fsync failed or a catalog commit failed: the store refuses
	// changes until it is reopened.
	broken error
	// replayed is, read-only, the tail that catalog.db lacks and Open
	// replayed in memory (Verify names it).
	replayed replayedTail
	// testCommitHook, if set, runs after each successful catalog commit;
	// an error it returns is treated as a failed commit (tests).
	testCommitHook func() error
	// testReadHook, if set, runs in Records between the catalog lookup and
	// the file reads (tests).
	testReadHook func()
	// testVerifyHook, if set, runs at the start of Verify (tests).
	testVerifyHook func()
}

type activeSegment struct {
	info SegmentInfo
	f    File
}

// Open attaches to the archive in dir, repairs the tail of the active segment
// (see the package invariants) and starts the writer.
func Open(dir string, opts Options) (*Store, error) {
	opts.setDefaults()
	info, err := ReadArchiveInfo(dir)
	if err != nil {
		return nil, err
	}
	recips, err := ParseRecipients(info.Recipients)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", archiveFile, err)
	}
	keyHex, err := os.ReadFile(filepath.Join(dir, digestKeyFile))
	if err != nil {
		return nil, fmt.Errorf("read digest key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(keyHex)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s: not 64 hex digits: %w", digestKeyFile, ErrCorrupt)
	}
	c, err := newCodec(recips)
	if err != nil {
		return nil, err
	}
	// NoFreelistSync: the freelist is rebuilt at open instead of written at
	// every commit, which halves the pages a small commit writes.
	db, err := bolt.Open(filepath.Join(dir, catalogFile), 0o600, &bolt.Options{Timeout: opts.CatalogTimeout, NoFreelistSync: true, ReadOnly: opts.ReadOnly})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open catalog %s: %w", filepath.Join(dir, catalogFile), ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	s := &Store{
		dir: dir, opts: opts, fs: opts.FS, log: opts.Logger, info: info, key: key, db: db, codec: c,
		reqs:     make(chan *appendReq, 256),
		nextEnc:  make(chan *encryptor, 1),
		done:     make(chan struct{}),
		inflight: make(map[[32]byte]chan struct{}),
		pend:     newPending(),
	}
	if err := s.checkCatalog(); err != nil {
		db.Close()
		return nil, err
	}
	if opts.ReadOnly {
		s.closed = true // no writer: Append answers ErrClosed
		if err := s.replayReadOnly(); err != nil {
			// What the catalog holds can still be read.
			s.log.Warn("the active segment's tail is not replayed (read-only)", "err", err)
		}
		return s, nil
	}
	if err := s.upgradeCatalog(); err != nil {
		db.Close()
		return nil, err
	}
	// Open repairs before the writer starts; catMu for the repairs'
	// catalog changes.
	s.catMu.Lock()
	defer s.catMu.Unlock()
	if err := s.removeStaleSegmentFiles(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.openActive(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.reconcile(); err != nil {
		s.active.f.Close()
		db.Close()
		return nil, err
	}
	go s.run()
	return s, nil
}

// replayReadOnly shows a read-only store the catalog changes of the active
// segment's tail as pending changes (see [Store.repairTail]), so that a
// reader sees every acknowledged message before the daemon replays them.
func (s *Store) replayReadOnly() error {
	last, err := s.lastSegment()
	if err != nil || last == nil || last.State != SegmentActive {
		return err
	}
	f, err := os.Open(segmentPath(s.dir, last.Seq))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() <= last.Size {
		return err
	}
	tail, err := s.scanTail(*last, f, fi.Size())
	if err != nil {
		return err
	}
	s.pend = tail.replay
	s.replayed = replayedTail{seq: last.Seq, from: last.Size, to: tail.end, entries: tail.entries}
	return nil
}

// replayedTail is what a read-only Open replayed in memory: the records of
// segment seq in [from, to), which catalog.db lacks.
type replayedTail struct {
	seq      SegmentSeq
	from, to int64
	entries  int
}

func (s *Store) checkCatalog() error {
	return s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("catalog: no meta bucket: %w", ErrCorrupt)
		}
		// Format 1 is read as it is (read-only) or upgraded (upgradeCatalog).
		if v := meta.Get(metaFormat); len(v) != 1 || v[0] != 1 && v[0] != catalogFormat {
			return fmt.Errorf("catalog: format %v: %w", v, ErrUnsupportedVersion)
		}
		copy(s.id[:], meta.Get(metaArchiveID))
		if hex.EncodeToString(s.id[:]) != s.info.ID {
			return fmt.Errorf("catalog belongs to archive %x, not %s: %w", s.id, s.info.ID, ErrCorrupt)
		}
		return nil
	})
}

// catalogBuckets are the buckets of a catalog of the current format.
var catalogBuckets = [][]byte{bucketMeta, bucketMessages, bucketEnvelopes, bucketDigests, bucketSegments, bucketHoldMembers}

// upgradeCatalog brings a format-1 catalog to format 2 in one transaction:
// it adds the hold_members bucket and drops the index watermark (the
// receiver keeps no index since format 2).
func (s *Store) upgradeCatalog() error {
	var format byte
	if err := s.db.View(func(tx *bolt.Tx) error { format = tx.Bucket(bucketMeta).Get(metaFormat)[0]; return nil }); err != nil {
		return err
	}
	if format == catalogFormat {
		return nil
	}
	err := s.update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketHoldMembers); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Delete(metaWatermark); err != nil {
			return err
		}
		return meta.Put(metaFormat, []byte{catalogFormat})
	})
	if err != nil {
		return fmt.Errorf("upgrade catalog to format %d: %w", catalogFormat, err)
	}
	s.log.Info("catalog upgraded", "from_format", format, "to_format", catalogFormat)
	return nil
}

// reconcile lets the caller's records and the catalog agree after a crash:
// intents that committed are reported, and next-id is raised above every id
// the caller has seen given.
func (s *Store) reconcile() error {
	if err := s.resolveIntents(); err != nil {
		return err
	}
	if s.opts.OnOpen == nil {
		return nil
	}
	segs, err := s.Segments()
	if err != nil {
		return err
	}
	var next uint64
	if err := s.view(func(v *catView) error { next = v.nextID(); return nil }); err != nil {
		return err
	}
	floor, err := s.opts.OnOpen(segs, sealmail.MessageID(next))
	if err != nil {
		return fmt.Errorf("reconcile with the audit log: %w", err)
	}
	if uint64(floor) > next {
		s.log.Warn("raised the next message id above ids the audit log names (their records were lost in a crash, never acknowledged)",
			"from", next, "to", uint64(floor))
		return s.raiseNextID(floor)
	}
	return nil
}

// Dir returns the archive directory.
func (s *Store) Dir() string { return s.dir }

// Info returns the archive's identity.
func (s *Store) Info() ArchiveInfo { return *s.info }

// Close stops the writer after every pending append has finished and closes
// the catalog. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		return nil
	}
	s.shut, s.closed = true, true
	s.mu.Unlock()
	var err error
	if !s.opts.ReadOnly {
		s.appends.Wait()
		close(s.reqs)
		<-s.done
		if s.active != nil {
			err = s.active.f.Close()
		}
	}
	s.closeSnapshots()
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	return err
}

func fileSHA256(path string) ([32]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return [32]byte{}, 0, err
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, n, nil
}

// ReadOnly reports whether the store was opened read-only.
func (s *Store) ReadOnly() bool { return s.opts.ReadOnly }
