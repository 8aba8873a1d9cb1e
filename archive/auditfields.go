// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"encoding/hex"
	"time"

	"github.com/sealmail/sealmail/store"
)

// The audit schema: the facts of each audit entry the archive writes, one
// struct per event type, so that the writers and the readers ([Archive.Verify],
// [Archive.Get] of a deleted message) share the keys. The keys are those
// docs/format.md ("Audit entry types") lists; each struct keeps them in
// alphabetical order, the order in which the map-based writers before it
// encoded them, so the bytes written are unchanged. A key is never renamed:
// the log is kept for the life of the archive.

// entryRef names one entry of a stored record: the record's SHA-256 and
// the entry's index in the record. Ingest, recovery and compaction entries
// refer to a stored entry this way; refOf is the one place that makes it.
type entryRef struct {
	record string // hex SHA-256 of the whole record
	entry  int
}

func refOf(recordSHA256 [32]byte, entry int) entryRef {
	return entryRef{record: hex.EncodeToString(recordSHA256[:]), entry: entry}
}

// ingestFields are the facts of one stored entry (TypeIngest): ids, digest,
// size, place and transport facts, never content or addresses.
type ingestFields struct {
	AuthUser string `json:"auth_user,omitempty"`
	ClientIP string `json:"client_ip,omitempty"`
	Digest   string `json:"digest"` // hex keyed digest of the original
	Entry    int    `json:"entry"`
	ID       uint64 `json:"id"`
	Kind     string `json:"kind"`
	Offset   int64  `json:"offset"`
	// OrderedBy is, for a tombstone, the audit entry (purge or erase)
	// that ordered the deletion.
	OrderedBy uint64 `json:"ordered_by,omitempty"`
	Receipt   int    `json:"receipt,omitempty"`
	// Received is kept for recover, when compaction removed the record.
	Received        string `json:"received,omitempty"`
	Record          string `json:"record"` // hex SHA-256 of the whole record
	RetainUntil     string `json:"retain_until,omitempty"`
	Segment         string `json:"segment"`
	Size            int64  `json:"size"`
	Source          string `json:"source,omitempty"`
	TLS             string `json:"tls,omitempty"`
	UntrustedReport bool   `json:"untrusted_report,omitempty"`
	Warnings        int    `json:"warnings,omitempty"`
}

func (f ingestFields) ref() entryRef { return entryRef{record: f.Record, entry: f.Entry} }

func ingestOf(c store.Committed) ingestFields {
	ref := refOf(c.RecordSHA256, c.Location.Entry)
	f := ingestFields{
		ID: uint64(c.ID), Kind: c.Kind.String(), Digest: hex.EncodeToString(c.Digest[:]), Size: c.Size,
		Segment: c.Location.Segment.String(), Offset: c.Location.Offset, Entry: ref.entry, Record: ref.record,
		Receipt: c.Receipt, RetainUntil: retention(c.RetainUntil, c.Forever), OrderedBy: c.Audit,
	}
	if !c.Received.IsZero() {
		f.Received = c.Received.UTC().Format(time.RFC3339Nano)
	}
	if e := c.Envelope; e != nil {
		f.Source, f.ClientIP, f.TLS, f.AuthUser = string(e.Source), e.ClientIP, e.TLS, e.AuthUser
		f.UntrustedReport = e.Untrusted != nil
		f.Warnings = len(e.Warnings)
	}
	return f
}

// rollbackFields: ingest entries whose catalog commit failed
// (TypeIngestRollback).
type rollbackFields struct {
	Error string   `json:"error"` // ours (paths, errno), never message content
	IDs   []uint64 `json:"ids"`
}

// droppedEntry is a stored entry cut off at start-up or removed by
// compaction.
type droppedEntry struct {
	// Audit is, for an entry a crash lost before its commit, the ingest
	// entry that named it.
	Audit  uint64 `json:"audit,omitempty"`
	Entry  int    `json:"entry"`
	ID     uint64 `json:"id"`
	Kind   string `json:"kind"`
	Record string `json:"record"`
}

func (d droppedEntry) ref() entryRef { return entryRef{record: d.Record, entry: d.Entry} }

func droppedOf(cs []store.Committed) []droppedEntry {
	out := make([]droppedEntry, len(cs))
	for i, c := range cs {
		ref := refOf(c.RecordSHA256, c.Location.Entry)
		out[i] = droppedEntry{Entry: ref.entry, ID: uint64(c.ID), Kind: c.Kind.String(), Record: ref.record}
	}
	return out
}

// recoverFields: a repair at start-up (TypeRecover), either an uncommitted
// segment tail set aside (Op, Bytes, Entries, KeptIn) or a torn audit line
// cut (AuditTornBytes).
type recoverFields struct {
	AuditTornBytes int64          `json:"audit_torn_bytes,omitempty"`
	Bytes          int64          `json:"bytes,omitempty"`
	Entries        []droppedEntry `json:"entries,omitempty"`
	KeptIn         string         `json:"kept_in,omitempty"` // side file in segments/
	Op             string         `json:"op,omitempty"`
}

// rebuildFields: the catalog rebuilt by `sealmail recover` (TypeRecover,
// op "rebuild catalog").
type rebuildFields struct {
	Deleted  int64    `json:"deleted"`
	Findings []string `json:"findings"`
	Messages int64    `json:"messages"`
	NextID   uint64   `json:"next_id"`
	Op       string   `json:"op"`
	Replaced string   `json:"replaced"`
	Segments int      `json:"segments"`
}

// sealFields: a segment sealed (TypeSegmentSeal).
type sealFields struct {
	// Intent marks an entry that counts once its intent.commit entry
	// follows (or the catalog lists it as pending after a crash).
	Intent  bool   `json:"intent,omitempty"`
	Records int64  `json:"records"`
	Segment string `json:"segment"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
}

// compactFields: a sealed segment rewritten without deleted records
// (TypeSegmentCompact).
type compactFields struct {
	Dropped   []droppedEntry `json:"dropped"`
	Intent    bool           `json:"intent,omitempty"` // as in sealFields
	OldSHA256 string         `json:"old_sha256"`
	OldSize   int64          `json:"old_size"`
	Segment   string         `json:"segment"`
	SHA256    string         `json:"sha256"`
	Size      int64          `json:"size"`
}

// intentFields: the outcome of a seal or compaction audited as an intent
// (TypeIntentCommit, TypeIntentAbort): Intent is its entry's seq.
type intentFields struct {
	Intent uint64 `json:"intent"`
}

// intentFlag reads whether a seal or compaction entry is an intent.
type intentFlag struct {
	Intent bool `json:"intent"`
}

// importFields: an import run (TypeImport): its start, then its end (or
// interruption) with the counts.
type importFields struct {
	Kind   string `json:"kind"`
	Owner  string `json:"owner"`
	Phase  string `json:"phase"` // start, end or interrupted
	Source string `json:"source"`
	*importCounts
}

type importCounts struct {
	Bytes     int64          `json:"bytes"`
	Duplicate int            `json:"duplicate"`
	Reasons   map[string]int `json:"reasons,omitempty"` // refusal reason → count
	Refused   int            `json:"refused"`
	Skipped   int            `json:"skipped"`
	Stored    int            `json:"stored"`
}

// purgeFields: a purge, or its dry run (TypePurge).
type purgeFields struct {
	AsOf   string         `json:"as_of"`
	Count  int            `json:"count"`
	DryRun bool           `json:"dry_run"`
	IDs    []uint64       `json:"ids"`
	Kept   map[string]int `json:"kept"`
}

// deleteSkippedFields: deletions a purge or an erasure ordered that the
// store skipped because the message changed after they were decided
// (TypeDeleteSkipped).
type deleteSkippedFields struct {
	Audit  uint64   `json:"audit"` // the purge or erase entry
	Count  int      `json:"count"`
	IDs    []uint64 `json:"ids"`
	Reason string   `json:"reason"`
	Why    string   `json:"why"`
}

// eraseFields: an erasure request (TypeErase).
type eraseFields struct {
	Approvals         []string  `json:"approvals,omitempty"`
	DryRun            bool      `json:"dry_run,omitempty"`
	IDs               []uint64  `json:"ids"`
	OverrideRetention bool      `json:"override_retention"`
	Query             string    `json:"query"`
	Reason            string    `json:"reason"`
	Refused           []Refusal `json:"refused"`
	Request           string    `json:"request,omitempty"`
}

// holdCreateFields and holdReleaseFields: TypeHoldCreate, TypeHoldRelease.
// (Entries of older versions also have "matches", the count their index
// found.)
type holdCreateFields struct {
	Name   string `json:"name"`
	Query  string `json:"query"`
	Reason string `json:"reason"`
}

type holdReleaseFields struct {
	Name   string `json:"name"`
	Query  string `json:"query"`
	Reason string `json:"reason"`
}

// holdMembersFields: messages a hold now covers (TypeHoldMembers), as the
// reader evaluated it through audit entry Through.
type holdMembersFields struct {
	Count   int      `json:"count"`
	IDs     []uint64 `json:"ids"`
	Name    string   `json:"name"`
	Through uint64   `json:"through"`
}

// indexRemoveFields: an older version's search index removed from the
// archive directory (TypeIndexRemove).
type indexRemoveFields struct {
	Bytes int64  `json:"bytes"`
	Path  string `json:"path"` // relative to the archive directory
}

// policyFields: retention re-evaluated (TypePolicyChange).
type policyFields struct {
	Changed   []PolicyChange `json:"changed"`
	Evaluated int            `json:"evaluated"`
	Op        string         `json:"op"`
	// Rules is the SHA-256 of the rules in force; Withheld counts the
	// shortening changes not made (they wait for a second officer).
	Rules    string `json:"rules_sha256,omitempty"`
	Withheld int    `json:"withheld,omitempty"`
}

// verifyFields: a whole-archive verification (TypeVerify).
type verifyFields struct {
	AuditHead string `json:"audit_head"`
	Entries   int64  `json:"entries"`
	OK        bool   `json:"ok"`
	Problems  int    `json:"problems"`
	Records   int64  `json:"records"`
}

// verifyAuditFields: a verification of the audit log alone (TypeVerify,
// scope "audit").
type verifyAuditFields struct {
	Entries  uint64 `json:"entries"`
	External int    `json:"external"`
	OK       bool   `json:"ok"`
	Problems int    `json:"problems"`
	Scope    string `json:"scope"`
}

// callFields: a read through the archive (TypeAPICall): Op names it;
// list and get carry what they returned. (Older versions also wrote
// "search" and "ids" calls, of their own index.)
type callFields struct {
	Op string `json:"op"`
}

type listCallFields struct {
	After uint64 `json:"after"`
	Count int    `json:"count"`
	First uint64 `json:"first,omitempty"`
	Last  uint64 `json:"last,omitempty"`
	Limit int    `json:"limit"`
	Op    string `json:"op"`
}

type getCallFields struct {
	Error string   `json:"error,omitempty"`
	IDs   []uint64 `json:"ids"`
	Op    string   `json:"op"`
	Via   string   `json:"via,omitempty"` // the service that read for the actor
}

type holdMembersCallFields struct {
	Count int    `json:"count"`
	Name  string `json:"name"`
	Op    string `json:"op"`
}

// createFields: the archive created (TypeConfig, op "create").
type createFields struct {
	Archive    string   `json:"archive"`
	Op         string   `json:"op"`
	Recipients []string `json:"recipients"`
}

// configFields: the daemon's configuration in force (TypeConfig).
type configFields struct {
	Config any    `json:"config"`
	Op     string `json:"op"`
}

// daemonStartFields and daemonStopFields: TypeDaemonStart, TypeDaemonStop.
type daemonStartFields struct {
	Listeners []string `json:"listeners"`
	PID       int      `json:"pid"`
	Version   string   `json:"version"`
}

type daemonStopFields struct {
	Reason string `json:"reason"`
}

// gapFields: a journal gap (TypeJournalGap).
type gapFields struct {
	Source     string `json:"source"`      // the configured network
	LastSeen   string `json:"last_seen"`   // RFC 3339: last message, or the daemon's start
	MaxSilence string `json:"max_silence"` // Go duration, e.g. "2h0m0s"
}

// authFields: an SMTP AUTH attempt (TypeAuthOK, TypeAuthFail).
type authFields struct {
	Method string `json:"method"`
	Remote string `json:"remote"`
	User   string `json:"user,omitempty"`
	// Throttled counts the attempts refused without a password check
	// since the previous summary (one entry per address and minute).
	Throttled int `json:"throttled,omitempty"`
}

// refusalFields: a peer the control socket refused (TypeAPICall, op
// "refused"), at most one entry per uid and minute.
type refusalFields struct {
	Op                    string `json:"op"`
	Method                string `json:"method"`
	Path                  string `json:"path"`
	UID                   uint32 `json:"uid"`
	PID                   int32  `json:"pid"`
	Peer                  string `json:"peer,omitempty"`
	RefusedSinceLastEntry int    `json:"refused_since_last_entry"`
}

// pprofFields: a profile read through the control socket (TypeAPICall,
// op "pprof"; only with serve --pprof).
type pprofFields struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Query string `json:"query"`
}

// backupFields: a backup (TypeBackup), written when it ends. Checkpoint
// is the audit entry the backup's copy of the log ends with.
type backupFields struct {
	Target         string `json:"target"`
	Backup         uint64 `json:"backup,omitempty"`
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
	Checkpoint     uint64 `json:"checkpoint"`
	Files          int    `json:"files"`
	Copied         int64  `json:"copied_bytes"`
	Reused         int64  `json:"reused_bytes"`
	Error          string `json:"error,omitempty"`
}

// restoreFields: an archive restored from a backup (TypeRestore), the
// last entry of the restore. Checkpoint is the entry the backup's log ended
// with; NotInBackup the messages audited after its catalog copy; Reapplied
// the deletions made again.
type restoreFields struct {
	From        string   `json:"from"`
	Backup      uint64   `json:"backup"`
	Created     string   `json:"created"` // RFC 3339: when the backup was taken
	Checkpoint  uint64   `json:"checkpoint"`
	Files       int      `json:"files"`
	NotInBackup []uint64 `json:"not_in_backup"`
	Reapplied   []uint64 `json:"reapplied_deletions"`
}

// scrubFields: the scrubber (TypeScrub): a pass's start (phase "start",
// segments to check), each damaged segment (phase "finding"), a pass's end
// (phase "end", with what it checked and every problem).
type scrubFields struct {
	Phase    string   `json:"phase"`
	Segment  string   `json:"segment,omitempty"`
	Segments int      `json:"segments,omitempty"`
	Bytes    int64    `json:"bytes,omitempty"`
	Started  string   `json:"started,omitempty"` // RFC 3339: when the pass began
	Problems []string `json:"problems,omitempty"`
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

// offsiteFields: a run of the offsite copy (TypeOffsite). Op "sync": the
// bucket (s3://BUCKET/PREFIX), the checkpoint entry the copied log ends
// with, and what it did; op "verify": objects checked and problems found;
// error for a run that failed.
type offsiteFields struct {
	Op            string   `json:"op"`
	Bucket        string   `json:"bucket"`
	Checkpoint    uint64   `json:"checkpoint,omitempty"`
	Objects       int      `json:"objects"`
	Uploaded      int      `json:"uploaded,omitempty"`
	UploadedBytes int64    `json:"uploaded_bytes,omitempty"`
	Adopted       int      `json:"adopted,omitempty"`
	Extended      int      `json:"extended,omitempty"`
	Removed       int      `json:"removed,omitempty"`
	Retired       int      `json:"retired,omitempty"`
	Problems      []string `json:"problems,omitempty"`
	Error         string   `json:"error,omitempty"`
}
