// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/store"
)

// Status summarises an archive for operators.
type Status struct {
	Archive       string    `json:"archive"` // archive id
	Dir           string    `json:"dir"`
	Messages      int64     `json:"messages"`
	Receipts      int64     `json:"receipts"`
	OriginalBytes int64     `json:"original_bytes"`
	StoredBytes   int64     `json:"stored_bytes"`
	Segments      int       `json:"segments"`
	Sealed        int       `json:"sealed_segments"`
	LastID        uint64    `json:"last_id"`
	Recipients    []string  `json:"recipients"`
	Daemon        bool      `json:"daemon"` // answered by a running daemon
	Listeners     []string  `json:"listeners,omitempty"`
	Started       time.Time `json:"started,omitzero"`
	UptimeSeconds int64     `json:"uptime_seconds,omitempty"`

	// LastReceived is when the newest message (LastID) was received.
	LastReceived time.Time `json:"last_received,omitzero"`
	// FreeBytes is the free space of the data directory's file system.
	FreeBytes int64 `json:"free_bytes"`
	// JournalSources are the journal.expect sources with their last
	// message (or, before one, when the daemon began watching).
	JournalSources []JournalSource `json:"journal_sources,omitempty"`
	// RetentionSHA256 names the retention rules in force (the SHA-256 of
	// their JSON); empty without rules.
	RetentionSHA256 string `json:"retention_sha256,omitempty"`
	// Warnings are what an operator must act on now (a full disk).
	Warnings []string `json:"warnings,omitempty"`
	// JournalGaps are the journaling sources silent beyond their
	// journal.expect entry, now.
	JournalGaps []JournalGap `json:"journal_gaps,omitempty"`
	// Scrub is the scrubber's last full pass and the one under way.
	Scrub ScrubStatus `json:"scrub"`
	// LastBackup is when the last backup through the daemon (or an archive
	// opened directly) completed; zero if none is known.
	LastBackup time.Time `json:"last_backup,omitzero"`
}

// Status returns the archive's totals; when a daemon serves the archive, its
// listeners and uptime too.
func (a *Archive) Status(ctx context.Context) (*Status, error) {
	st, err := a.store.Stats()
	if err != nil {
		return nil, err
	}
	info := a.store.Info()
	s := &Status{
		Archive: info.ID, Dir: a.dir, Messages: st.Messages, Receipts: st.Receipts,
		OriginalBytes: st.OriginalBytes, StoredBytes: st.StoredBytes, Segments: st.Segments,
		Sealed: st.Sealed, LastID: uint64(st.LastID), Recipients: info.Recipients,
	}
	a.addStatusFacts(s)
	s.JournalGaps = a.JournalGaps()
	s.Scrub, s.LastBackup = a.ScrubStatusNow(), a.LastBackup()
	for _, p := range s.Scrub.Last.problems() {
		s.Warnings = append(s.Warnings, "scrub found damage: "+p+" (run `sealmail verify`; restore the file from a backup)")
	}
	// Status holds no content: on a full disk it answers all the same, so
	// that the operator learns what is wrong; reads of mail stay refused
	// while they cannot be audited.
	if err := a.logEvent(ctx, audit.TypeAPICall, callFields{Op: "status"}); err != nil {
		if !errors.Is(err, sealmail.ErrStorageFull) {
			return nil, err
		}
		s.Warnings = append(s.Warnings, "storage full: the archive answers 4xx to mail and cannot audit (so refuses reads) until space is freed; no restart is needed")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.listeners != nil {
		s.Daemon = true
		s.Listeners = a.listeners
		s.Started = a.started.UTC()
		s.UptimeSeconds = int64(a.opts.Now().Sub(a.started).Seconds())
	}
	return s, nil
}

// MessageSummary is one row of [Archive.List].
type MessageSummary struct {
	ID       uint64    `json:"id"`
	Received time.Time `json:"received"`
	Size     int64     `json:"size"`
	Receipts int       `json:"receipts"`
	State    string    `json:"state"`
	Segment  string    `json:"segment"`
	// RetainUntil is RFC 3339, "forever", or empty when no retention policy
	// was in force (then the message is never eligible for deletion).
	RetainUntil string `json:"retain_until,omitempty"`
}

// ListOptions selects rows for [Archive.List].
type ListOptions struct {
	After sealmail.MessageID // only ids greater than this
	Limit int                // at most this many; 0 means no limit
	// Deleted lists deleted messages too.
	Deleted bool
}

// List returns cataloged messages in id order (oldest first).
func (a *Archive) List(ctx context.Context, o ListOptions) ([]MessageSummary, error) {
	var out []MessageSummary
	err := a.store.List(o.After, func(m *store.MessageInfo) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if m.State == store.StateDeleted && !o.Deleted {
			return true, nil
		}
		out = append(out, MessageSummary{
			ID: uint64(m.ID), Received: m.Received, Size: m.Size, Receipts: m.Receipts,
			State: m.State.String(), Segment: m.Location.Segment.String(),
			RetainUntil: retention(m.RetainUntil, m.Forever),
		})
		return o.Limit <= 0 || len(out) < o.Limit, nil
	})
	if err != nil {
		return nil, err
	}
	f := listCallFields{Op: "list", After: uint64(o.After), Limit: o.Limit, Count: len(out)}
	if len(out) > 0 {
		f.First, f.Last = out[0].ID, out[len(out)-1].ID
	}
	if err := a.logEvent(ctx, audit.TypeAPICall, f); err != nil {
		return nil, err
	}
	return out, nil
}

// Sealed is a stored message as the archive holds it: encrypted records the
// caller decrypts with [Sealed.Decrypt].
type Sealed struct {
	ID       uint64         `json:"id"`
	Received time.Time      `json:"received"`
	Size     int64          `json:"size"`
	Records  []SealedRecord `json:"records"`
}

// SealedRecord is one stored entry: its kind, the whole record that holds
// it (whose SHA-256 its ingest audit entry names) and its index in that
// record ([Sealed.DecryptRecord] decrypts it).
type SealedRecord struct {
	Kind   string `json:"kind"`
	Record []byte `json:"record"`
	Entry  int    `json:"entry"`
	Digest []byte `json:"digest"` // keyed digest of the original, from the clear entry
}

// Get returns the encrypted records of message id: the message record, then
// one envelope record per further receipt.
func (a *Archive) Get(ctx context.Context, id sealmail.MessageID) (*Sealed, error) {
	m, recs, err := a.store.Records(id)
	if de := (*store.DeletedError)(nil); errors.As(err, &de) {
		err = a.deletedWhy(ctx, de)
	}
	f := getCallFields{Op: "get", IDs: []uint64{uint64(id)}, Via: viaOf(ctx)}
	if err != nil {
		f.Error = err.Error()
	}
	if lerr := a.logEvent(ctx, audit.TypeAPICall, f); lerr != nil {
		return nil, lerr
	}
	if err != nil {
		return nil, err
	}
	out := &Sealed{ID: uint64(id), Received: m.Received, Size: m.Size}
	for _, r := range recs {
		out.Records = append(out.Records, SealedRecord{Kind: r.Entry.Kind.String(), Record: r.Raw, Entry: r.Location.Entry, Digest: r.Entry.Digest[:]})
	}
	return out, nil
}

// Gauges are the archive's figures for the metrics endpoint. Unlike
// [Archive.Status] they are not audited (a scraper asks every few seconds)
// and hold no content.
type Gauges struct {
	Messages  int64
	Segments  int
	Sealed    int
	FreeBytes int64 // free space on the data directory's file system
	// AuditEntries is the audit log's last entry (its seq);
	// LastCheckpoint when its newest signed checkpoint was written.
	AuditEntries    uint64
	LastCheckpoint  time.Time
	UnsignedEntries uint64    // entries after the newest checkpoint
	LastBackup      time.Time // zero: none known
	Scrub           ScrubStatus
	Offsite         OffsiteStatus
	// ReaderSeq is the audit entry up to which the reader service's index
	// covers the log, as its last feed request said; ReaderSeen when that
	// was (zero: no reader asked since the start).
	ReaderSeq  uint64
	ReaderSeen time.Time
}

// Gauges returns the archive's current figures.
func (a *Archive) Gauges() (Gauges, error) {
	st, err := a.store.Stats()
	if err != nil {
		return Gauges{}, fmt.Errorf("archive: gauges: %w", err)
	}
	free, err := a.freeBytes()
	if err != nil {
		return Gauges{}, fmt.Errorf("archive: gauges: free space of %s: %w", a.dir, err)
	}
	g := Gauges{Messages: st.Messages, Segments: st.Segments, Sealed: st.Sealed, FreeBytes: free,
		LastBackup: a.LastBackup(), Scrub: a.ScrubStatusNow(), Offsite: a.OffsiteStatusNow()}
	g.AuditEntries, _ = a.audit.Head()
	g.ReaderSeq, g.ReaderSeen = a.feedSeen.get()
	g.UnsignedEntries = g.AuditEntries
	if cp, ok := a.audit.LatestCheckpoint(); ok {
		// The checkpoint entry (cp.Seq+1) is signed by what it covers.
		g.LastCheckpoint, g.UnsignedEntries = cp.Time, g.AuditEntries-min(g.AuditEntries, cp.Seq+1)
	}
	return g, nil
}

// Ready returns nil when the archive can take mail now: opened for
// writing, its store not broken by an earlier failure, and free disk space
// above the configured floor. Otherwise it says why.
func (a *Archive) Ready() error {
	if a.opts.ReadOnly {
		return errors.New("archive: opened read-only")
	}
	if err := a.store.Broken(); err != nil {
		return fmt.Errorf("archive: store unusable until a restart: %w", err)
	}
	if a.opts.MinFreeBytes >= 0 {
		free, err := a.freeBytes()
		if err != nil {
			return fmt.Errorf("archive: free space of %s: %w", a.dir, err)
		}
		if free < a.opts.MinFreeBytes {
			return fmt.Errorf("%w: %d bytes free on %s, floor %d", sealmail.ErrStorageFull, free, a.dir, a.opts.MinFreeBytes)
		}
	}
	return nil
}

// addStatusFacts adds to s what an operator watches besides the totals:
// the newest message's time, free space, the journaling sources' last
// messages and the retention rules' name.
func (a *Archive) addStatusFacts(s *Status) {
	if s.LastID > 0 {
		if m, err := a.store.Message(sealmail.MessageID(s.LastID)); err == nil {
			s.LastReceived = m.Received.UTC()
		}
	}
	if free, err := a.freeBytes(); err == nil {
		s.FreeBytes = free
	}
	s.JournalSources = a.journalSources()
	s.RetentionSHA256 = a.retentionSum
}
