// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/store"
)

type actorKey struct{}

// WithActor returns a context that names who asks for an operation: the
// audit log records it. The control socket sets the peer's user; the CLI,
// when it opens an archive directly, its own.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

func actorOf(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok {
		return a
	}
	return "unknown"
}

type viaKey struct{}

// WithVia returns a context that names the service through which the
// context's actor asks (the reader service, reading for a person): reads
// and the service's own events record it beside the actor.
func WithVia(ctx context.Context, via string) context.Context {
	return context.WithValue(ctx, viaKey{}, via)
}

func viaOf(ctx context.Context) string {
	v, _ := ctx.Value(viaKey{}).(string)
	return v
}

func auditDir(dir string) string { return filepath.Join(dir, "audit") }

// logEvent appends one entry, with the facts of its type (auditfields.go),
// and returns when it is durable.
func (a *Archive) logEvent(ctx context.Context, typ string, fields any) error {
	_, err := a.audit.Append(ctx, audit.Event{Type: typ, Actor: actorOf(ctx), Fields: fields})
	return err
}

// LogDaemonStart audits a daemon's start: its version, pid and listeners.
func (a *Archive) LogDaemonStart(ctx context.Context, version string, pid int, listeners []string) error {
	return a.logEvent(ctx, audit.TypeDaemonStart, daemonStartFields{Version: version, PID: pid, Listeners: listeners})
}

// LogDaemonStop audits a daemon's stop and why.
func (a *Archive) LogDaemonStop(ctx context.Context, reason string) error {
	return a.logEvent(ctx, audit.TypeDaemonStop, daemonStopFields{Reason: reason})
}

// LogConfig audits the configuration a daemon runs with. config must hold
// no secrets (password hashes are redacted by the caller).
func (a *Archive) LogConfig(ctx context.Context, config any) error {
	return a.logEvent(ctx, audit.TypeConfig, configFields{Op: "in force", Config: config})
}

// LogAuth audits an SMTP AUTH attempt: who, from where, and whether it
// succeeded.
func (a *Archive) LogAuth(ctx context.Context, user, remote string, ok bool) error {
	typ := audit.TypeAuthOK
	if !ok {
		typ = audit.TypeAuthFail
	}
	return a.logEvent(ctx, typ, authFields{User: user, Remote: remote, Method: "smtp-plain"})
}

// LogAuthThrottled audits a summary of the SMTP AUTH attempts refused
// from remote without a password check while it was throttled.
func (a *Archive) LogAuthThrottled(ctx context.Context, remote string, refused int) error {
	return a.logEvent(ctx, audit.TypeAuthFail, authFields{Remote: remote, Method: "smtp-plain", Throttled: refused})
}

// LogControlRefusal audits a peer that the control socket refused; known
// is false when its credentials could not be read.
func (a *Archive) LogControlRefusal(ctx context.Context, method, path string, uid uint32, pid int32, known bool, since int) error {
	f := refusalFields{Op: "refused", Method: method, Path: path, UID: uid, PID: pid, RefusedSinceLastEntry: since}
	if !known {
		f.Peer = "unknown (no SO_PEERCRED)"
	}
	return a.logEvent(ctx, audit.TypeAPICall, f)
}

// LogPprof audits a profile read through the control socket.
func (a *Archive) LogPprof(ctx context.Context, path, query string) error {
	return a.logEvent(ctx, audit.TypeAPICall, pprofFields{Op: "pprof", Path: path, Query: query})
}

// storeHooks connects the store's writer to the audit log: every stored
// entry is logged before its catalog entry commits. The feed relies on
// OnCommit running inside the catalog transaction that commits or rolls
// back its entries (see [Archive.Feed]).
//
// lostOp is the op of the recover entry reconcileAudit writes.
func storeHooks(o *store.Options, log *audit.Log, logger *slog.Logger, dir, lostOp string) {
	ctx := WithActor(context.Background(), "smtpd")
	o.OnCommit = func(cs []store.Committed) error {
		evs := make([]audit.Event, len(cs))
		for i, c := range cs {
			actor := "smtpd"
			if c.Kind == store.KindTombstone && c.Actor != "" {
				actor = c.Actor // who ordered the purge or erasure
			}
			evs[i] = audit.Event{Type: audit.TypeIngest, Actor: actor, Fields: ingestOf(c)}
		}
		_, err := log.AppendAll(ctx, evs)
		return err
	}
	o.OnRollback = func(cs []store.Committed, cause error) {
		ids := make([]uint64, len(cs))
		for i, c := range cs {
			ids[i] = uint64(c.ID)
		}
		// The error text is ours (paths, errno), never message content.
		if _, err := log.Append(ctx, audit.Event{Type: audit.TypeIngestRollback, Actor: "smtpd",
			Fields: rollbackFields{IDs: ids, Error: cause.Error()}}); err != nil {
			// verify then names these ingest entries as missing records.
			logger.Error("audit an ingest rollback", "err", err)
		}
	}
	o.OnDiscard = func(cs []store.Committed, bytes int64, keptIn string) error {
		_, err := log.Append(ctx, audit.Event{Type: audit.TypeRecover, Actor: "sealmail", Fields: recoverFields{
			Op: "discard uncommitted tail", Bytes: bytes, Entries: droppedOf(cs), KeptIn: filepath.Base(keptIn),
		}})
		return err
	}
	o.OnSeal = func(si store.SegmentInfo) (store.Intent, error) {
		e, err := log.Append(ctx, audit.Event{Type: audit.TypeSegmentSeal, Actor: "sealmail", Fields: sealFields{
			Segment: si.Seq.String(), SHA256: hex.EncodeToString(si.SHA256[:]), Size: si.Size, Records: si.Records, Intent: true,
		}})
		return store.Intent(e.Seq), err
	}
	o.OnIntent = func(i store.Intent, committed bool) error {
		typ := audit.TypeIntentAbort
		if committed {
			typ = audit.TypeIntentCommit
		}
		_, err := log.Append(ctx, audit.Event{Type: typ, Actor: "sealmail", Fields: intentFields{Intent: uint64(i)}})
		return err
	}
	o.OnOpen = func(segs []store.SegmentInfo, next sealmail.MessageID) (sealmail.MessageID, error) {
		return reconcileAudit(ctx, log, dir, segs, next, lostOp)
	}
	o.OnReplay = func(cs []store.Committed) (int, error) { return vouchTail(dir, cs) }
}

// vouchTail tells the store which of the entries after its active
// segment's committed length (found, in order) were made durable as they
// were stored: those whose ingest entry is in the audit log (the writer
// acknowledges an entry only once both its record and its ingest entry are
// fsync'd), and neither rolled back after it nor settled by a recover
// entry. It returns how many of found, from the first, are vouched for, and
// fills in for them what the records' clear entry tables lack: retention
// and, for a tombstone, the audit entry that ordered it. It reads the log
// backwards, down to the first ingest entry before the tail.
func vouchTail(dir string, found []store.Committed) (int, error) {
	if len(found) == 0 {
		return 0, nil
	}
	seg, from := found[0].Location.Segment.String(), found[0].Location.Offset
	ingested := make(map[entryRef]ingestFields)
	err := unsettledIngests(dir, func(f ingestFields) bool {
		// Segment names are eight digits: their order is the numbers'.
		return f.Segment < seg || f.Segment == seg && f.Offset < from // cataloged already: so is everything before it
	}, func(_ uint64, f ingestFields) { ingested[f.ref()] = f })
	if err != nil {
		return 0, fmt.Errorf("read the audit log back: %w", err)
	}
	for i := range found {
		c := &found[i]
		f, ok := ingested[refOf(c.RecordSHA256, c.Location.Entry)]
		if !ok || f.ID != uint64(c.ID) || f.Kind != c.Kind.String() {
			return i, nil
		}
		c.RetainUntil, c.Forever = ParseRetention(f.RetainUntil)
		c.Audit = f.OrderedBy
	}
	return len(found), nil
}

// reconcileAudit finds the ingest entries that the audit log made durable
// but whose records a crash lost before the catalog committed them (the
// audit entry and the segment are synced in parallel): reading the log
// backwards, every ingest entry beyond its segment's committed length, down
// to the newest committed one, that no rollback or recover entry settled
// yet. It records them in one recover entry (with op), so that verify does
// not report them missing, and returns the id after the highest, so that no
// id the log names is given again. After a restore, these are the entries
// the log recorded after the backup's catalog copy was taken.
func reconcileAudit(ctx context.Context, log *audit.Log, dir string, segs []store.SegmentInfo, next sealmail.MessageID, op string) (sealmail.MessageID, error) {
	committed := make(map[string]int64, len(segs))
	for _, si := range segs {
		committed[si.Seq.String()] = si.Size
		if si.State == store.SegmentSealed {
			committed[si.Seq.String()] = math.MaxInt64
		}
	}
	var lost []droppedEntry
	floor := next
	err := unsettledIngests(dir, func(f ingestFields) bool {
		size, ok := committed[f.Segment]
		return ok && f.Offset < size // committed: everything before it is settled
	}, func(seq uint64, f ingestFields) {
		lost = append(lost, droppedEntry{ID: f.ID, Kind: f.Kind, Entry: f.Entry, Record: f.Record, Audit: seq})
		if f.Kind == store.KindMessage.String() {
			floor = max(floor, sealmail.MessageID(f.ID+1))
		}
	})
	if err != nil {
		return 0, err
	}
	if len(lost) == 0 {
		return floor, nil
	}
	slices.Reverse(lost)
	_, err = log.Append(ctx, audit.Event{Type: audit.TypeRecover, Actor: "sealmail", Fields: recoverFields{Op: op, Entries: lost}})
	return floor, err
}

// unsettledIngests reads the audit log backwards and calls fn, newest
// first, for every ingest entry that no later ingest.rollback (a rollback
// undoes the ingest entries before it; an id given again after one is
// another entry) or recover entry settled, until before(f) says an ingest
// entry lies before the part of the log that matters: it stops there.
func unsettledIngests(dir string, before func(ingestFields) bool, fn func(seq uint64, f ingestFields)) error {
	rolledBack := make(map[uint64]bool)
	settled := make(map[entryRef]bool)
	var derr error
	err := audit.ReadBack(auditDir(dir), func(e audit.Entry) bool {
		switch e.Type {
		case audit.TypeIngestRollback:
			var f rollbackFields
			if derr = e.DecodeFields(&f); derr != nil {
				return false
			}
			for _, id := range f.IDs {
				rolledBack[id] = true
			}
		case audit.TypeRecover:
			var f recoverFields
			if derr = e.DecodeFields(&f); derr != nil {
				return false
			}
			for _, d := range f.Entries {
				settled[d.ref()] = true
			}
		case audit.TypeIngest:
			var f ingestFields
			if derr = e.DecodeFields(&f); derr != nil {
				return false
			}
			if before(f) {
				return false
			}
			if !settled[f.ref()] && !rolledBack[f.ID] {
				fn(e.Seq, f)
			}
		}
		return true
	})
	if err == nil {
		err = derr
	}
	return err
}

// openAudit opens the archive's audit log. A missing log in an archive is
// an error, not something to recreate: it may have been deleted to hide what
// it recorded.
func openAudit(dir, archiveID string, opts Options) (*audit.Log, error) {
	log, err := audit.Open(auditDir(dir), audit.Options{ArchiveID: archiveID, Logger: opts.Logger,
		CheckpointEvery: opts.CheckpointEvery, CheckpointInterval: opts.CheckpointInterval, LockTimeout: opts.LockTimeout, FS: opts.FS})
	if errors.Is(err, audit.ErrNotExist) {
		return nil, fmt.Errorf("the audit log %s is missing: restore it from a backup and run `sealmail verify`", auditDir(dir))
	}
	if errors.Is(err, audit.ErrLocked) {
		return nil, fmt.Errorf("audit log: %w", store.ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return log, nil
}
