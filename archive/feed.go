// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/store"
)

// The feed is how the reader service follows the archive: the audit log's
// lines, byte for byte (the reader checks the hash chain and the
// checkpoints' signatures itself), and for each message an ingest entry of
// the page names, its state now and its stored records (ciphertext), so
// that the reader can check each record's SHA-256 against the ingest entry
// that vouches for it, decrypt it and index it. A page never goes beyond
// the feed horizon: every ingest entry at or below it has had its catalog
// commit or its rollback, so a message it names that the catalog lacks was
// never stored.

// Feed bounds: lines per page, and the record bytes of a page beyond its
// first line's messages (a page always carries at least one line).
const (
	FeedMaxLines = 5000
	feedMaxBytes = 32 << 20
)

// FeedPage is one page of the feed.
type FeedPage struct {
	// Horizon is the feed horizon when the page was made; Head the audit
	// log's last durable entry (at least Horizon).
	Horizon uint64 `json:"horizon"`
	Head    uint64 `json:"head"`
	// Genesis is the first log file's header line (entry 1 chains to its
	// hash), sent with a page that starts at the beginning.
	Genesis []byte `json:"genesis,omitempty"`
	// Lines are the entry lines after the requested seq, as stored
	// (without their newline), in order.
	Lines [][]byte `json:"lines"`
	// Messages are the messages the page's message and envelope ingest
	// entries name, each once.
	Messages []FeedMessage `json:"messages"`
	// Records are the stored records the messages' refer to, each once.
	Records []FeedRecord `json:"records"`
	// LastID and Live are the catalog's highest id and its live messages.
	LastID uint64 `json:"last_id"`
	Live   int64  `json:"live"`
}

// Message states in the feed.
const (
	FeedLive    = "live"
	FeedDeleted = "deleted"
	FeedAbsent  = "absent" // never committed, or dropped by recovery
	// FeedUnreadable: the receiver cannot read the message's records (a
	// damaged segment): Error says why; `sealmail verify` says more.
	FeedUnreadable = "unreadable"
)

// FeedMessage is a message as the catalog holds it now.
type FeedMessage struct {
	ID       uint64    `json:"id"`
	State    string    `json:"state"`
	Received time.Time `json:"received,omitzero"`
	Receipts int       `json:"receipts,omitempty"`
	// RetainUntil is as [MessageSummary] has it.
	RetainUntil string `json:"retain_until,omitempty"`
	// Records are the message's receipts (the message entry first), each
	// the record that holds it and its index in that record.
	Records []RecordRef `json:"records,omitempty"`
	Error   string      `json:"error,omitempty"` // why it is unreadable
}

// RecordRef names one entry of a stored record: the record's SHA-256 (hex,
// as ingest entries name it) and the entry's index in it.
type RecordRef struct {
	Record string `json:"record"`
	Entry  int    `json:"entry"`
}

// FeedRecord is a whole stored record.
type FeedRecord struct {
	SHA256 string `json:"sha256"`
	Raw    []byte `json:"raw"`
}

// Feed returns the page of the feed after audit entry after: at most
// limit lines (0 or more than [FeedMaxLines]: FeedMaxLines). It is not
// audited: it carries ciphertext and content-free audit lines.
//
// The horizon: every ingest entry is appended by the store's OnCommit
// hook while the store holds the catalog write transaction that commits or
// rolls back its entries. So once the log's head is read and the store has
// passed a barrier (a write transaction begun and abandoned after it),
// every ingest entry up to that head is settled in the catalog.
func (a *Archive) Feed(ctx context.Context, after uint64, limit int) (*FeedPage, error) {
	if limit <= 0 || limit > FeedMaxLines {
		limit = FeedMaxLines
	}
	a.feedSeen.record(after, a.opts.Now())
	horizon, _ := a.audit.Head()
	if err := a.store.Barrier(); err != nil {
		return nil, err
	}
	if after > horizon {
		return nil, invalid("feed: after %d is beyond the audit log's head %d", after, horizon)
	}
	st, err := a.store.Stats()
	if err != nil {
		return nil, err
	}
	head, _ := a.audit.Head()
	p := &FeedPage{Horizon: horizon, Head: head, Lines: [][]byte{}, Messages: []FeedMessage{}, Records: []FeedRecord{},
		LastID: uint64(st.LastID), Live: st.Messages}
	if after == 0 {
		if p.Genesis, err = a.lines.Genesis(); err != nil {
			return nil, err
		}
	}
	seen := map[uint64]bool{}
	haveRec := map[string]bool{}
	cache := store.RecordCache{}
	size := 0
	var ferr error
	err = a.lines.Read(ctx, after, horizon, func(seq uint64, line []byte) bool {
		if len(p.Lines) >= limit {
			return false
		}
		id, ok, err := ingestedMessage(line)
		if err != nil {
			ferr = fmt.Errorf("feed: audit entry %d: %w", seq, err)
			return false
		}
		var msg *FeedMessage
		var recs []FeedRecord
		n := 0
		if ok && !seen[id] {
			msg, recs = a.feedMessage(id, cache, haveRec)
			for _, r := range recs {
				n += len(r.Raw)
			}
		}
		if len(p.Lines) > 0 && size+n > feedMaxBytes {
			return false
		}
		p.Lines = append(p.Lines, bytes.Clone(line))
		if msg != nil {
			seen[id] = true
			p.Messages = append(p.Messages, *msg)
			for _, r := range recs {
				haveRec[r.SHA256] = true
			}
			p.Records = append(p.Records, recs...)
			size += n
		}
		return true
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ingestedMessage returns the message id an ingest entry of kind message
// or envelope names; ok is false for any other line.
func ingestedMessage(line []byte) (uint64, bool, error) {
	if !bytes.Contains(line, []byte(`,"type":"ingest",`)) {
		return 0, false, nil
	}
	e, err := audit.ParseEntry(line)
	if err != nil {
		return 0, false, err
	}
	var f ingestFields
	if err := e.DecodeFields(&f); err != nil {
		return 0, false, err
	}
	if f.Kind != store.KindMessage.String() && f.Kind != store.KindEnvelope.String() {
		return 0, false, nil
	}
	return f.ID, true, nil
}

// feedMessage returns message id as the catalog holds it now and those of
// its records not in have (which the page carries already).
func (a *Archive) feedMessage(id uint64, cache store.RecordCache, have map[string]bool) (*FeedMessage, []FeedRecord) {
	info, recs, err := a.store.RecordsCached(sealmail.MessageID(id), cache)
	var de *store.DeletedError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &FeedMessage{ID: id, State: FeedAbsent}, nil
	case errors.As(err, &de):
		return &FeedMessage{ID: id, State: FeedDeleted}, nil
	case err != nil:
		a.log.Error("feed: a message's records cannot be read", "id", id, "err", err)
		return &FeedMessage{ID: id, State: FeedUnreadable, Error: err.Error()}, nil
	}
	m := &FeedMessage{ID: id, State: FeedLive, Received: info.Received, Receipts: info.Receipts,
		RetainUntil: retention(info.RetainUntil, info.Forever)}
	var out []FeedRecord
	mine := map[string]bool{}
	for _, r := range recs {
		sum := sha256.Sum256(r.Raw)
		h := hex.EncodeToString(sum[:])
		m.Records = append(m.Records, RecordRef{Record: h, Entry: r.Location.Entry})
		if !have[h] && !mine[h] {
			mine[h] = true
			out = append(out, FeedRecord{SHA256: h, Raw: r.Raw})
		}
	}
	return m, out
}

// AuditKey is what the reader pins of the receiver's audit log.
type AuditKey struct {
	Archive string `json:"archive"`
	Key     string `json:"key"` // Ed25519 public key, hex
}

// AuditKey returns the audit log's archive id and checkpoint signing key.
func (a *Archive) AuditKey() AuditKey {
	return AuditKey{Archive: a.audit.ArchiveID(), Key: hex.EncodeToString(a.audit.PublicKey())}
}

// feedSeen remembers the last feed request: the reader asks for the lines
// after what its index covers, so its after is how far the reader follows
// the log (for the metrics: the index's lag).
type feedSeen struct {
	mu    sync.Mutex
	after uint64
	at    time.Time
}

func (f *feedSeen) record(after uint64, now time.Time) {
	f.mu.Lock()
	f.after, f.at = after, now
	f.mu.Unlock()
}

func (f *feedSeen) get() (uint64, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.after, f.at
}
