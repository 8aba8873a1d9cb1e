// SPDX-License-Identifier: Apache-2.0

package audit

// Event types. Every audited operation uses one of these names as
// [Event.Type]; `audit show --type` filters on them. The list is the one place
// that defines them: add new types here, never as string literals elsewhere.
const (
	TypeDaemonStart = "daemon.start"
	TypeDaemonStop  = "daemon.stop"
	TypeConfig      = "config"
	TypeIngest      = "ingest"
	// TypeIngestRollback records ingest entries whose catalog commit failed
	// after they were logged: those messages were not stored (the sender got
	// a 4xx and retries).
	TypeIngestRollback = "ingest.rollback"
	// TypeRecover records a repair at start-up: the uncommitted tail of a
	// segment (written, never acknowledged) cut off, or a torn audit line.
	TypeRecover        = "recover"
	TypeSegmentSeal    = "segment.seal"
	TypeSegmentCompact = "segment.compact"
	TypeAPICall        = "api.call"
	TypeHoldCreate     = "hold.create"
	TypeHoldRelease    = "hold.release"
	// TypeHoldMembers records messages the reader found a hold's query to
	// match, which the catalog now counts as covered by the hold.
	TypeHoldMembers = "hold.members"
	TypePurge       = "purge"
	TypeErase       = "erase"
	// TypeDeleteSkipped records messages a purge or an erasure had decided
	// to delete that changed before their tombstone committed (a further
	// receipt, another retention): they were kept.
	TypeDeleteSkipped = "delete.skipped"
	TypePolicyChange  = "policy.change"
	TypeExport        = "export"
	TypeImport        = "import"
	TypeAuthOK        = "auth.ok"
	TypeAuthFail      = "auth.fail"
	TypeVerify        = "verify"
	// TypeJournalGap records a journaling source silent for longer than
	// its expectation (journal.expect), once per gap.
	TypeJournalGap = "journal.gap"
	// TypeIndexRemove records the search index of an older version removed
	// from the archive directory at start-up: the receiver keeps none.
	TypeIndexRemove = "index.remove"
	// TypeBackup records a backup (to which target, which manifest, or
	// why it failed); TypeRestore an archive restored from one.
	TypeBackup  = "backup"
	TypeRestore = "restore"
	// TypeScrub records a scrubbing pass over the sealed segments (its
	// end and what it found) and each damaged segment it found.
	TypeScrub = "scrub"
	// TypeOffsite records a run of the offsite copy to an S3 bucket with
	// Object Lock (a sync: what it uploaded, extended, removed; a
	// verification; or why it failed).
	TypeOffsite = "offsite"

	// TypeCheckpoint marks a signed checkpoint entry. Only the log itself
	// writes it; [Log.Append] rejects it.
	TypeCheckpoint = "checkpoint"
)

// Intents. A TypeSegmentSeal or TypeSegmentCompact entry with the field
// "intent": true is written before the catalog commits the change it
// records; it counts only once a TypeIntentCommit entry names its seq (field
// "intent"). TypeIntentAbort says the change did not commit. An intent with
// neither never committed; a commit written at start-up after a crash wins
// over an abort.
const (
	TypeIntentCommit = "intent.commit"
	TypeIntentAbort  = "intent.abort"
)

// The reader service's events, which it posts through the control socket
// (the receiver accepts only these from it, see [ReaderTypes]). Sign-ins
// and user changes are "access." followed by the access event's action
// (access.login, access.user.add, …).
const (
	TypeReaderStart    = "reader.start"
	TypeReaderUnlock   = "reader.unlock"
	TypeReaderLock     = "reader.lock"
	TypeReaderReindex  = "reader.reindex"
	TypeSearch         = "search"
	TypeErasureRequest = "erasure.request"
	TypeErasureApprove = "erasure.approve"
	TypeErasureDeny    = "erasure.deny"
	AccessPrefix       = "access."
)

// ReaderTypes are the types the reader service may post besides those
// under [AccessPrefix]. None of them is one the receiver or a reader
// interprets when it reads the log back.
func ReaderTypes() []string {
	return []string{TypeReaderStart, TypeReaderUnlock, TypeReaderLock, TypeReaderReindex, TypeSearch, TypeExport,
		TypeErasureRequest, TypeErasureApprove, TypeErasureDeny}
}

// Types lists every defined event type, in the order above.
func Types() []string {
	return []string{
		TypeDaemonStart, TypeDaemonStop, TypeConfig, TypeIngest, TypeIngestRollback, TypeRecover, TypeSegmentSeal,
		TypeSegmentCompact, TypeIntentCommit, TypeIntentAbort, TypeAPICall, TypeHoldCreate, TypeHoldRelease, TypePurge,
		TypeErase, TypeDeleteSkipped, TypePolicyChange, TypeExport, TypeImport, TypeAuthOK, TypeAuthFail, TypeVerify,
		TypeJournalGap, TypeHoldMembers, TypeIndexRemove, TypeBackup, TypeRestore, TypeScrub, TypeOffsite,
		TypeReaderStart, TypeReaderUnlock, TypeReaderLock, TypeSearch, TypeErasureRequest, TypeErasureApprove, TypeErasureDeny,
		TypeReaderReindex, TypeCheckpoint,
	}
}

// Event is what a caller asks to be logged.
//
// Fields carries the operation's structured facts (message ids, segment
// numbers and hashes, counts, query ids, remote addresses, user names): a
// struct with JSON tags, one per event type, so that writer and reader share
// the keys ([Entry.DecodeFields] reads them back), or a map. It is encoded
// with encoding/json and must encode as a JSON object (or null: no facts). Fields must never hold message content (bodies,
// subjects, attachment names) or secrets (passwords, keys, tokens): the audit
// log is readable by auditors and is kept for the life of the archive.
// Numbers read back by [Read] are [encoding/json.Number], so 64-bit ids
// survive exactly.
type Event struct {
	// Type is one of the Type… constants (any name of lowercase letters,
	// digits, '.', '_' and '-' is accepted, but use the constants).
	Type string
	// Actor names who caused the operation: a user name, "smtpd", "daemon",
	// "cli:root". Empty means the system itself.
	Actor string
	// Fields are the structured facts; nil is allowed.
	Fields any
}

// fieldsMap returns Fields for the [Entry] that [Log.Append] returns: the
// caller's map, or nil for a struct (the caller has it).
func fieldsMap(f any) map[string]any {
	m, _ := f.(map[string]any)
	return m
}
