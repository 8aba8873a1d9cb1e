// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"time"

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

func auditDir(dir string) string { return filepath.Join(dir, "audit") }

// Log appends one entry to the audit log and returns when it is durable.
// Callers use it for what only they see (daemon start and stop,
// authentication); the archive logs its own operations.
func (a *Archive) Log(ctx context.Context, typ string, fields map[string]any) error {
	_, err := a.audit.Append(ctx, audit.Event{Type: typ, Actor: actorOf(ctx), Fields: fields})
	return err
}

// AuditLog returns the archive's audit log (for checkpoints).
func (a *Archive) AuditLog() *audit.Log { return a.audit }

// storeHooks connects the store's writer to the audit log: every stored
// entry is logged before its catalog entry commits.
func storeHooks(o *store.Options, log *audit.Log, dir string) {
	ctx := WithActor(context.Background(), "smtpd")
	o.OnCommit = func(cs []store.Committed) error {
		evs := make([]audit.Event, len(cs))
		for i, c := range cs {
			evs[i] = audit.Event{Type: audit.TypeIngest, Actor: "smtpd", Fields: committedFields(c)}
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
		log.Append(ctx, audit.Event{Type: audit.TypeIngestRollback, Actor: "smtpd", Fields: map[string]any{"ids": ids, "error": cause.Error()}})
	}
	o.OnDiscard = func(cs []store.Committed, bytes int64, keptIn string) error {
		entries := make([]map[string]any, len(cs))
		for i, c := range cs {
			entries[i] = map[string]any{"id": uint64(c.ID), "kind": c.Kind.String(), "entry": c.Location.Entry,
				"record": hex.EncodeToString(c.RecordSHA256[:])}
		}
		_, err := log.Append(ctx, audit.Event{Type: audit.TypeRecover, Actor: "sealmail", Fields: map[string]any{
			"op": "discard uncommitted tail", "bytes": bytes, "entries": entries, "kept_in": filepath.Base(keptIn),
		}})
		return err
	}
	o.OnSeal = func(si store.SegmentInfo) (store.Intent, error) {
		e, err := log.Append(ctx, audit.Event{Type: audit.TypeSegmentSeal, Actor: "sealmail", Fields: map[string]any{
			"segment": si.Seq.String(), "sha256": hex.EncodeToString(si.SHA256[:]), "size": si.Size, "records": si.Records,
			"intent": true,
		}})
		return store.Intent(e.Seq), err
	}
	o.OnIntent = func(i store.Intent, committed bool) error {
		typ := audit.TypeIntentAbort
		if committed {
			typ = audit.TypeIntentCommit
		}
		_, err := log.Append(ctx, audit.Event{Type: typ, Actor: "sealmail", Fields: map[string]any{"intent": uint64(i)}})
		return err
	}
	o.OnOpen = func(segs []store.SegmentInfo, next sealmail.MessageID) (sealmail.MessageID, error) {
		return reconcileAudit(ctx, log, dir, segs, next)
	}
}

// reconcileAudit finds the ingest entries that the audit log made durable
// but whose records a crash lost before the catalog committed them (the
// audit entry and the segment are synced in parallel): reading the log
// backwards, every ingest entry beyond its segment's committed length, down
// to the newest committed one, that no rollback or recover entry settled
// yet. It records them in one recover entry, so that verify does not report
// them missing, and returns the id after the highest, so that no id the
// log names is given again.
func reconcileAudit(ctx context.Context, log *audit.Log, dir string, segs []store.SegmentInfo, next sealmail.MessageID) (sealmail.MessageID, error) {
	committed := make(map[string]int64, len(segs))
	for _, si := range segs {
		committed[si.Seq.String()] = si.Size
		if si.State == store.SegmentSealed {
			committed[si.Seq.String()] = math.MaxInt64
		}
	}
	rolledBack := make(map[uint64]bool)
	settled := make(map[string]bool) // record/entry
	var lost []map[string]any
	floor := next
	err := audit.ReadBack(auditDir(dir), func(e audit.Entry) bool {
		f := e.Fields
		switch e.Type {
		case audit.TypeIngestRollback:
			for _, id := range list(f["ids"]) {
				rolledBack[num(id)] = true
			}
		case audit.TypeRecover:
			for _, d := range list(f["entries"]) {
				m, _ := d.(map[string]any)
				settled[str(m["record"])+"/"+strconv.FormatUint(num(m["entry"]), 10)] = true
			}
		case audit.TypeIngest:
			if size, ok := committed[str(f["segment"])]; ok && int64(num(f["offset"])) < size {
				return false // committed: everything before it is settled
			}
			key := str(f["record"]) + "/" + strconv.FormatUint(num(f["entry"]), 10)
			if settled[key] || rolledBack[num(f["id"])] {
				return true
			}
			lost = append(lost, map[string]any{"id": num(f["id"]), "kind": str(f["kind"]), "entry": num(f["entry"]),
				"record": str(f["record"]), "audit": e.Seq})
			if str(f["kind"]) == store.KindMessage.String() {
				floor = max(floor, sealmail.MessageID(num(f["id"])+1))
			}
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	if len(lost) == 0 {
		return floor, nil
	}
	slices.Reverse(lost)
	_, err = log.Append(ctx, audit.Event{Type: audit.TypeRecover, Actor: "sealmail", Fields: map[string]any{
		"op": "audited entries whose records a crash lost before their commit (never acknowledged)", "entries": lost,
	}})
	return floor, err
}

// committedFields are the audit facts of one stored entry: ids, digest,
// size and transport facts, never content or addresses.
func committedFields(c store.Committed) map[string]any {
	f := map[string]any{
		"id":      uint64(c.ID),
		"kind":    c.Kind.String(),
		"digest":  hex.EncodeToString(c.Digest[:]),
		"size":    c.Size,
		"segment": c.Location.Segment.String(),
		"offset":  c.Location.Offset,
		"entry":   c.Location.Entry,
		"record":  hex.EncodeToString(c.RecordSHA256[:]),
	}
	if c.Receipt > 0 {
		f["receipt"] = c.Receipt
	}
	if r := retention(c.RetainUntil, c.Forever); r != "" {
		f["retain_until"] = r
	}
	if e := c.Envelope; e != nil {
		f["source"] = string(e.Source)
		f["client_ip"] = e.ClientIP
		if e.TLS != "" {
			f["tls"] = e.TLS
		}
		if e.AuthUser != "" {
			f["auth_user"] = e.AuthUser
		}
		if e.Untrusted != nil {
			f["untrusted_report"] = true
		}
		if len(e.Warnings) > 0 {
			f["warnings"] = len(e.Warnings)
		}
	}
	return f
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

// retention formats a retain-until for people and the audit log.
func retention(until time.Time, forever bool) string {
	switch {
	case forever:
		return "forever"
	case until.IsZero():
		return ""
	}
	return until.UTC().Format(time.RFC3339)
}
