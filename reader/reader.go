// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/index"
	"github.com/sealmail/sealmail/vfs"
)

// Options configures a [Reader]. StateDir and Receiver are required; the
// other fields' zero values are safe.
type Options struct {
	// StateDir is the reader's state directory (mode 0700; access.OpenState
	// makes it): the index in StateDir/index, the pin in reader.json,
	// export jobs in exports/.
	StateDir string
	// Receiver is the receiver's control socket client.
	Receiver *api.Client
	// Identities decrypt the archive. Nil: start locked.
	Identities []age.Identity
	Logger     *slog.Logger
	// Version is the reader's version, for its start's audit entry.
	Version string
	// Poll is how long the tail waits, when caught up, before it asks the
	// receiver again (default 250 ms).
	Poll time.Duration
	// PageLines bounds the audit lines of one feed page (default
	// [archive.FeedMaxLines]).
	PageLines int
	// FS is what reader.json and export job files are written through; nil
	// means the real file system.
	FS vfs.FS
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Access is the people's state (access.db, opened by the access.Server
	// the reader is registered on). Its audit outbox, the events of
	// `sealmail user` made while no reader ran, is sent to the receiver
	// at the start and, if that fails, again once the receiver answers;
	// its four eyes guard erasure, hold release and shortening retention.
	// Nil: no outbox, and those acts are refused while they need approval.
	Access *access.State
	// Extractor reads the text of attachments for the index (the reader
	// command's extract.Sandbox); nil indexes only their names.
	// ExtractorInfo says what it enforces, for the status.
	Extractor     index.Extractor
	ExtractorInfo string
}

// Reader is an open reader service. See the package documentation.
type Reader struct {
	opts Options
	log  *slog.Logger
	rcv  *api.Client
	key  archive.AuditKey

	// xmu guards x, which reindex --all replaces; searches hold it for
	// reading.
	xmu sync.RWMutex
	x   *index.Index

	// tailMu serialises what writes the index or decides on it: a tail
	// step, hold creation and evaluation, purge and erasure decisions,
	// reindex. It guards cur and holds.
	tailMu sync.Mutex
	cur    cursor
	holds  map[string]*holdState // active holds by key

	mu       sync.Mutex // guards what follows
	snap     snapshot   // cur and holds as of the last change, for readers of the state
	ids      []age.Identity
	lockedBy string // why locked, when ids is nil
	seen     seen   // what the last feed page said of the receiver
	docs     int    // message documents in the index
	problems []string
	problemN int
	// checkpoint is the last signed checkpoint the tail verified since the
	// start; chainErr why the log last failed to continue the chain.
	checkpoint archive.FeedEntry
	chainErr   string
	// ingest samples the receiver's last message id over time, for the
	// ingest rate.
	ingest []idSample

	wake chan struct{} // unlock or reindex: the tail looks again now
	jobs jobs

	// outboxDue: the audit outbox has not been sent yet (the receiver
	// failed); resumeDue: requests approved before a crash may wait for
	// execution. Both are the tail goroutine's.
	outboxDue, resumeDue bool
	started              time.Time // by opts.Now

	ctx    context.Context // ends at Close: export jobs stop
	cancel context.CancelFunc
}

// snapshot is what the tail last published of its state, so that status
// and coverage never wait for a page being indexed.
type snapshot struct {
	seq, lastID uint64
	hash        string // of entry seq's line
	holds       []Hold
}

// publish copies the tail's state for readers. The caller holds tailMu.
func (r *Reader) publish() {
	hs := []Hold{}
	for k, h := range r.holds {
		hs = append(hs, Hold{HoldInfo: h.info, Evaluated: r.cur.Holds[k]})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Created.Before(hs[j].Created) })
	r.mu.Lock()
	r.snap = snapshot{seq: r.cur.Seq, lastID: r.cur.LastID, hash: r.cur.Hash, holds: hs}
	r.mu.Unlock()
}

// seen is what the receiver said in the last feed page.
type seen struct {
	Horizon, Head uint64
	LastID        uint64
	Live          int64
	At            time.Time
	CaughtUp      bool
	Err           string // the last failure to reach or follow the receiver
}

// maxProblems bounds the problems the reader remembers for its status.
const maxProblems = 100

// Open opens the reader state in opts.StateDir, attaches to the receiver
// (pinning its archive and audit key on the first attach, refusing
// others later) and audits the reader's start. The caller runs
// [Reader.Run] and then [Reader.Close].
func Open(ctx context.Context, opts Options) (*Reader, error) {
	if opts.StateDir == "" || opts.Receiver == nil {
		return nil, errors.New("reader: a state directory and the receiver are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Poll <= 0 {
		opts.Poll = 250 * time.Millisecond
	}
	if opts.PageLines <= 0 || opts.PageLines > archive.FeedMaxLines {
		opts.PageLines = archive.FeedMaxLines
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.FS = vfs.Or(opts.FS)
	r := &Reader{opts: opts, log: opts.Logger, rcv: opts.Receiver, wake: make(chan struct{}, 1), holds: map[string]*holdState{},
		started: opts.Now()}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	key, err := r.rcv.AuditKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("reader: attach to the receiver: %w", err)
	}
	if err := checkPin(opts.FS, opts.StateDir, key, opts.Now()); err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	r.key = key
	if err := r.openIndex(ctx); err != nil {
		return nil, err
	}
	if err := r.jobs.open(opts.FS, filepath.Join(opts.StateDir, "exports")); err != nil {
		_ = r.x.Close()
		return nil, err
	}
	if len(opts.Identities) > 0 {
		r.ids = opts.Identities
	} else {
		r.lockedBy = "started without an identity"
	}
	_, err = r.rcv.RecordEvent(ctx, audit.TypeReaderStart, struct {
		Version    string `json:"version"`
		PID        int    `json:"pid"`
		Locked     bool   `json:"locked"`
		IndexedSeq uint64 `json:"indexed_seq"`
	}{opts.Version, os.Getpid(), r.ids == nil, r.cur.Seq})
	if err == nil {
		err = r.refreshHolds(ctx)
	}
	if err != nil {
		_ = r.x.Close()
		return nil, fmt.Errorf("reader: %w", err)
	}
	r.outboxDue, r.resumeDue = opts.Access != nil, opts.Access != nil
	return r, nil
}

// forwardOutbox sends the audit outbox to the receiver if it is due. A
// failure is logged; the tail tries again on its next round.
func (r *Reader) forwardOutbox(ctx context.Context) {
	if !r.outboxDue {
		return
	}
	n, err := r.opts.Access.ForwardOutbox(ctx, r.AuditAccess)
	if n > 0 {
		r.log.Info("audit outbox sent to the receiver", "events", n)
	}
	if err != nil {
		r.log.Warn("audit outbox: the receiver did not take it; trying again when it answers", "err", err)
		return
	}
	r.outboxDue = false
}

// maintain is the tail's work besides indexing, before each round (the
// first right at the start): the audit outbox, until the receiver has
// taken it, and (once unlocked) the requests approved before a crash.
func (r *Reader) maintain(ctx context.Context) {
	r.forwardOutbox(ctx)
	if r.resumeDue && r.identities() != nil {
		r.resumeDue = !r.resumeApproved(ctx)
	}
}

// indexDir is where the index lives.
func (r *Reader) indexDir() string { return filepath.Join(r.opts.StateDir, "index") }

// openIndex opens the index and loads the state stored with it.
func (r *Reader) openIndex(ctx context.Context) error {
	// A child process the attachment sandbox forked a moment ago holds the
	// index's LOCK file (shared with this process) until it execs: wait
	// that out rather than fail. Another reader on the same state is
	// refused by reader.sock before it gets here.
	//
	// An index of an older format, which Open removes (the tail then
	// indexes everything again), is audited first, as reindex --all is: no
	// rebuild the log does not show. If the entry cannot be written, the old
	// index stays for the next start.
	v, err := index.DirVersion(r.indexDir())
	if err != nil {
		return fmt.Errorf("reader: %w", err)
	}
	if v != 0 && v < index.FormatVersion {
		if _, err := r.rcv.RecordEvent(ctx, audit.TypeReaderReindex, struct {
			All        bool `json:"all"`
			FromFormat int  `json:"from_format"`
			ToFormat   int  `json:"to_format"`
		}{true, v, index.FormatVersion}); err != nil {
			return fmt.Errorf("reader: record the rebuild of the index of format %d: %w", v, err)
		}
	}
	x, err := index.Open(r.indexDir(), index.Options{Logger: r.log, Extractor: r.opts.Extractor, LockTimeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("reader: %w", err)
	}
	cur, err := loadCursor(ctx, x, r.key.Archive)
	if err == nil {
		r.docs, err = countDocs(ctx, x)
	}
	if err != nil {
		_ = x.Close()
		return fmt.Errorf("reader: %w (if the index is damaged: `sealmail reindex --all` rebuilds it)", err)
	}
	r.x, r.cur = x, cur
	return nil
}

// Close stops export jobs and closes the index. Run must have returned.
func (r *Reader) Close() error {
	r.cancel()
	r.jobs.wait()
	r.xmu.Lock()
	defer r.xmu.Unlock()
	return r.x.Close()
}

// index returns the index for reading; the caller calls done after.
func (r *Reader) index() (x *index.Index, done func()) {
	r.xmu.RLock()
	return r.x, r.xmu.RUnlock
}

// identities returns the identity, nil while locked.
func (r *Reader) identities() []age.Identity {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids
}

// LockedBy says why the reader is locked ("" while unlocked): for the
// unlock page, which officers see without the status permission.
func (r *Reader) LockedBy() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lockedBy
}

// requireUnlocked refuses content calls while locked.
func (r *Reader) requireUnlocked() error {
	if r.identities() == nil {
		return ErrLocked
	}
	return nil
}

// Unlock gives the reader the archive identity: it then indexes and
// serves content. Identities whose recipients are known (X25519, the
// post-quantum hybrid) must include one of the archive's. It is audited.
func (r *Reader) Unlock(ctx context.Context, c Caller, ids []age.Identity) error {
	if err := c.may(access.PermUnlock, r.opts.Now()); err != nil {
		return err
	}
	if len(ids) == 0 {
		return invalid("unlock: no identity")
	}
	st, err := r.rcv.Status(api.OnBehalfOf(ctx, c.Name))
	if err != nil {
		return err
	}
	if !matchesRecipients(ids, st.Recipients) {
		return invalid("unlock: the identity does not match the archive's recipients (see `sealmail status`)")
	}
	if _, err := r.rcv.RecordEvent(api.OnBehalfOf(ctx, c.Name), audit.TypeReaderUnlock, struct{}{}); err != nil {
		return err
	}
	r.mu.Lock()
	r.ids, r.lockedBy = ids, ""
	r.mu.Unlock()
	r.log.Info("reader unlocked", "by", c.Name)
	r.poke()
	return nil
}

// Lock drops the identity from memory: indexing and reading stop.
func (r *Reader) Lock(ctx context.Context, c Caller) error {
	if err := c.may(access.PermUnlock, r.opts.Now()); err != nil {
		return err
	}
	if _, err := r.rcv.RecordEvent(api.OnBehalfOf(ctx, c.Name), audit.TypeReaderLock, struct{}{}); err != nil {
		return err
	}
	r.lock("locked by " + c.Name)
	return nil
}

func (r *Reader) lock(why string) {
	r.mu.Lock()
	r.ids, r.lockedBy = nil, why
	r.mu.Unlock()
	r.log.Warn("reader locked", "why", why)
}

// matchesRecipients reports whether one of ids is for one of the archive's
// recipients, as far as it can tell: identities of other kinds (plugins)
// are taken on trust until they fail to decrypt.
func matchesRecipients(ids []age.Identity, recipients []string) bool {
	unknown := false
	for _, id := range ids {
		var r string
		switch i := id.(type) {
		case *age.X25519Identity:
			r = i.Recipient().String()
		case *age.HybridIdentity:
			r = i.Recipient().String()
		default:
			unknown = true
			continue
		}
		if slices.Contains(recipients, r) {
			return true
		}
	}
	return unknown
}

// poke makes the tail look again now.
func (r *Reader) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// problem records something the reader could not do and goes on: for its
// status and the log. It never holds message content.
func (r *Reader) problem(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	r.log.Error("reader: " + msg)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problemN++
	r.problems = append(r.problems, r.opts.Now().UTC().Format(time.RFC3339)+" "+msg)
	if len(r.problems) > maxProblems {
		r.problems = r.problems[len(r.problems)-maxProblems:]
	}
}

// Coverage says how far the index covers the archive. Every search
// result, hold listing, export and purge report carries it.
type Coverage struct {
	// IndexedSeq: the index holds every message the audit log named up to
	// this entry.
	IndexedSeq uint64 `json:"indexed_seq"`
	// HeadSeq is the receiver's audit head when the reader last asked
	// (Checked).
	HeadSeq uint64    `json:"head_seq"`
	Checked time.Time `json:"checked,omitzero"`
	// LastIndexedID is the highest message id indexed; LastID the
	// receiver's highest.
	LastIndexedID uint64 `json:"last_indexed_id"`
	LastID        uint64 `json:"last_id"`
	// NotIndexed is the receiver's live messages less the messages
	// indexed: archived, not yet searchable.
	NotIndexed int64 `json:"not_indexed"`
	Indexed    int   `json:"indexed"`
	Locked     bool  `json:"locked"`
	// CaughtUp: the last feed page reached the receiver's head.
	CaughtUp bool `json:"caught_up"`
}

// Coverage returns how far the index covers the archive now.
func (r *Reader) Coverage() Coverage {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := Coverage{IndexedSeq: r.snap.seq, HeadSeq: r.seen.Head, Checked: r.seen.At, LastIndexedID: r.snap.lastID, LastID: r.seen.LastID,
		Indexed: r.docs, Locked: r.ids == nil, CaughtUp: r.seen.CaughtUp && r.snap.seq >= r.seen.Horizon}
	c.NotIndexed = max(0, r.seen.Live-int64(r.docs))
	return c
}

// Status is the reader's state for operators: nothing in it is content.
type Status struct {
	Archive  string   `json:"archive"`
	Locked   bool     `json:"locked"`
	LockedBy string   `json:"locked_by,omitempty"`
	Coverage Coverage `json:"coverage"`
	Holds    []Hold   `json:"holds"`
	// Receiver is the last failure to reach or follow the receiver, if
	// the last attempt failed.
	Receiver string `json:"receiver_error,omitempty"`
	// Problems are the latest of Problem things the reader could not do
	// (a record the audit log does not vouch for, a message that does not
	// decrypt): it went on without them.
	Problems     []string `json:"problems"`
	ProblemCount int      `json:"problem_count"`
	Jobs         int      `json:"export_jobs"`
}

// Status returns the reader's state. It holds no content: admins may see
// it.
func (r *Reader) Status(ctx context.Context, c Caller) (*Status, error) {
	if err := c.may(access.PermStatus, r.opts.Now()); err != nil {
		return nil, err
	}
	st := &Status{Archive: r.key.Archive, Coverage: r.Coverage()}
	r.mu.Lock()
	st.Holds = append([]Hold{}, r.snap.holds...)
	st.Locked, st.LockedBy, st.Receiver = r.ids == nil, r.lockedBy, r.seen.Err
	st.Problems, st.ProblemCount = append([]string{}, r.problems...), r.problemN
	r.mu.Unlock()
	st.Jobs = r.jobs.count()
	return st, nil
}

// SystemStatus is the whole service's state for admins: the reader's, the
// receiver's (ingest, the journaling sources' last messages, free disk),
// how far the index lags behind, and the attachment sandbox. Nothing in
// it is content.
type SystemStatus struct {
	Status
	// IndexLag is how many entries of the receiver's audit log the index
	// has not followed yet (when the reader last asked).
	IndexLag uint64 `json:"index_lag"`
	// IngestPerMinute is how many messages the receiver took per minute
	// over IngestWindow, as the reader saw its last message id grow (from
	// its feed requests and status calls); zero window: not seen long
	// enough yet.
	IngestPerMinute float64       `json:"ingest_per_minute"`
	IngestWindow    time.Duration `json:"ingest_window_ns"`
	// StateFreeBytes is the free space of the reader's state directory.
	StateFreeBytes int64      `json:"state_free_bytes"`
	Extraction     Extraction `json:"extraction"`
	// ReceiverStatus is the receiver's status; ReceiverStatusError says
	// why it is missing.
	ReceiverStatus      *archive.Status `json:"receiver"`
	ReceiverStatusError string          `json:"receiver_status_error,omitempty"`
}

// Extraction is the attachment sandbox's state.
type Extraction struct {
	// Sandbox says what it enforces ("off": attachments indexed by name).
	Sandbox string `json:"sandbox"`
	// Attachments were handed to it since the reader started; Unextracted
	// of them were not read whole (flag:unextracted).
	Attachments int64 `json:"attachments"`
	Unextracted int64 `json:"unextracted"`
}

// SystemStatus returns the service's state ([SystemStatus]). The
// receiver audits the caller's request for its part.
func (r *Reader) SystemStatus(ctx context.Context, c Caller) (*SystemStatus, error) {
	st, err := r.Status(ctx, c)
	if err != nil {
		return nil, err
	}
	out := &SystemStatus{Status: *st, Extraction: Extraction{Sandbox: "off"}}
	if st.Coverage.HeadSeq > st.Coverage.IndexedSeq {
		out.IndexLag = st.Coverage.HeadSeq - st.Coverage.IndexedSeq
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(r.opts.StateDir, &fs); err == nil {
		out.StateFreeBytes = int64(fs.Bavail) * int64(fs.Bsize)
	}
	if r.opts.Extractor != nil {
		x, done := r.index()
		es := x.ExtractStats()
		done()
		out.Extraction = Extraction{Sandbox: r.opts.ExtractorInfo, Attachments: es.Attachments, Unextracted: es.Unextracted}
	}
	if out.ReceiverStatus, err = r.rcv.Status(api.OnBehalfOf(ctx, c.Name)); err != nil {
		out.ReceiverStatusError = err.Error()
	} else {
		r.sampleIngest(out.ReceiverStatus.LastID)
	}
	out.IngestPerMinute, out.IngestWindow = r.ingestRate()
	return out, nil
}

// idSample is the receiver's last message id at a time.
type idSample struct {
	at   time.Time
	last uint64
}

// The ingest rate is measured over the samples of the last ingestWindow,
// at most one every ingestEvery.
const (
	ingestWindow = 15 * time.Minute
	ingestEvery  = 10 * time.Second
)

// sampleIngest notes the receiver's last message id now.
func (r *Reader) sampleIngest(last uint64) {
	now := r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.ingest); n > 0 && now.Sub(r.ingest[n-1].at) < ingestEvery {
		r.ingest[n-1].last = max(r.ingest[n-1].last, last)
		return
	}
	r.ingest = append(r.ingest, idSample{now, last})
	for len(r.ingest) > 2 && now.Sub(r.ingest[1].at) > ingestWindow {
		r.ingest = r.ingest[1:] // the first sample left is the window's start
	}
}

// ingestRate is the messages per minute between the oldest and the newest
// sample, and the time between them.
func (r *Reader) ingestRate() (float64, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ingest) < 2 {
		return 0, 0
	}
	first, last := r.ingest[0], r.ingest[len(r.ingest)-1]
	d := last.at.Sub(first.at)
	if d <= 0 || last.last < first.last {
		return 0, 0
	}
	return float64(last.last-first.last) / d.Minutes(), d
}

// cursor is how far the index follows the audit log, stored in the index
// with the documents it covers (the index's state document).
type cursor struct {
	Seq    uint64 `json:"seq"`
	Hash   string `json:"hash"` // of entry Seq's line; for 0 the genesis', "" before the first page
	LastID uint64 `json:"last_id"`
	// Holds is, per active hold (by holdKey), the audit seq through which
	// its members are posted.
	Holds map[string]uint64 `json:"holds"`
}

// indexState is the index's state document.
type indexState struct {
	Version int    `json:"version"`
	Archive string `json:"archive"`
	cursor
}

const indexStateVersion = 1

func loadCursor(ctx context.Context, x *index.Index, archiveID string) (cursor, error) {
	b, err := x.State(ctx)
	if err != nil || b == nil {
		return cursor{Holds: map[string]uint64{}}, err
	}
	var st indexState
	if err := json.Unmarshal(b, &st); err != nil {
		return cursor{}, fmt.Errorf("index state: %w", err)
	}
	switch {
	case st.Version != indexStateVersion:
		return cursor{}, fmt.Errorf("index state version %d, this sealmail reads %d", st.Version, indexStateVersion)
	case st.Archive != archiveID:
		return cursor{}, fmt.Errorf("the index is of archive %s, the receiver's is %s", st.Archive, archiveID)
	}
	if st.Holds == nil {
		st.Holds = map[string]uint64{}
	}
	return st.cursor, nil
}

// stateBytes encodes cur as the index's state document.
func (r *Reader) stateBytes(cur cursor) []byte {
	b, _ := json.Marshal(indexState{Version: indexStateVersion, Archive: r.key.Archive, cursor: cur}) // cannot fail
	return b
}

// countDocs counts the message documents.
func countDocs(ctx context.Context, x *index.Index) (int, error) {
	res, err := x.Find(ctx, index.Query{}, index.SearchOptions{Limit: 1})
	if err != nil {
		return 0, err
	}
	return res.Total, nil
}
