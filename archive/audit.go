// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

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
func storeHooks(o *store.Options, log *audit.Log, deleting *sync.Map) {
	ctx := WithActor(context.Background(), "smtpd")
	o.OnCommit = func(cs []store.Committed) error {
		evs := make([]audit.Event, len(cs))
		for i, c := range cs {
			actor := "smtpd"
			if v, ok := deleting.Load(c.ID); ok && c.Kind == store.KindTombstone {
				actor = v.(string) // who ordered the purge or erasure
			}
			evs[i] = audit.Event{Type: audit.TypeIngest, Actor: actor, Fields: committedFields(c)}
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
	o.OnSeal = func(si store.SegmentInfo) {
		log.Append(ctx, audit.Event{Type: audit.TypeSegmentSeal, Actor: "sealmail", Fields: map[string]any{
			"segment": si.Seq.String(), "sha256": hex.EncodeToString(si.SHA256[:]), "size": si.Size, "records": si.Records,
		}})
	}
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
		CheckpointEvery: opts.CheckpointEvery, CheckpointInterval: opts.CheckpointInterval, LockTimeout: opts.LockTimeout})
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
