// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/store"
)

// What a reader of the feed needs to trust it without trusting the
// receiver: [Chain] checks each audit line's link to the one before and
// each checkpoint's signature with the key pinned at the first attach, and
// names the ingest entries; [ParseRecord] checks a record the feed carried
// and decrypts its entries, once the caller has matched its SHA-256 with
// the ingest entry that vouches for it.

// ErrChain reports a feed whose audit lines do not continue the chain the
// reader holds: the log was cut, rewritten or is another archive's.
var ErrChain = errors.New("archive: the audit log does not continue the verified chain")

// Hash is an audit line's SHA-256.
type Hash = audit.Hash

// ParseHash parses a hash's hex form.
func ParseHash(s string) (Hash, error) { return audit.ParseHash(s) }

// Chain is the audit log as far as a reader has verified it: the archive
// and signing key it pinned, and the seq and hash of the last line.
type Chain struct {
	Archive string
	Key     ed25519.PublicKey
	Seq     uint64
	Head    Hash
}

// ParseAuditKey returns the signing key of an [AuditKey].
func ParseAuditKey(k AuditKey) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(k.Key)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("audit key %q: want %d bytes of hex", k.Key, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// Genesis starts the chain at the first file's header line: it must name
// the pinned archive and be file 1.
func (c *Chain) Genesis(line []byte) error {
	if c.Seq != 0 {
		return fmt.Errorf("%w: a genesis line after seq %d", ErrChain, c.Seq)
	}
	arch, file, err := audit.ParseHeader(line)
	if err != nil {
		return fmt.Errorf("%w: genesis: %w", ErrChain, err)
	}
	if arch != c.Archive || file != 1 {
		return fmt.Errorf("%w: genesis names archive %q file %d, want archive %q file 1", ErrChain, arch, file, c.Archive)
	}
	c.Head = audit.HashLine(line)
	return nil
}

// FeedEntry is what a reader learns from one verified audit line.
type FeedEntry struct {
	Seq   uint64
	Time  time.Time
	Type  string
	Actor string
	// Ingest is set for ingest entries.
	Ingest *IngestFact
	// Hold names the hold of a hold.create or hold.release entry.
	Hold string
}

// IngestFact is an ingest entry: the stored entry it vouches for.
type IngestFact struct {
	ID      sealmail.MessageID
	Kind    string // "message", "envelope" or "tombstone"
	Receipt int    // 1 for a message entry, 2, 3, … for envelopes
	Ref     RecordRef
}

// Next checks that line is the entry after the chain's head (its seq and
// prev) and, for a checkpoint, that the pinned key signed it over the
// entry before; then it advances the chain. It returns what the line says.
// On an error the chain is unchanged.
func (c *Chain) Next(line []byte) (FeedEntry, error) {
	e, err := audit.ParseEntry(line)
	if err != nil {
		return FeedEntry{}, fmt.Errorf("%w: after seq %d: %w", ErrChain, c.Seq, err)
	}
	if e.Seq != c.Seq+1 || e.Prev != c.Head {
		return FeedEntry{}, fmt.Errorf("%w: entry %d (prev %s) does not follow entry %d (hash %s)", ErrChain, e.Seq, e.Prev, c.Seq, c.Head)
	}
	fe := FeedEntry{Seq: e.Seq, Time: e.Time, Type: e.Type, Actor: e.Actor}
	switch e.Type {
	case audit.TypeCheckpoint:
		cp, err := audit.CheckpointOf(e)
		if err == nil {
			err = cp.Verify(c.Key)
		}
		if err == nil && (cp.Archive != c.Archive || cp.Seq != c.Seq || cp.Head != c.Head) {
			err = fmt.Errorf("checkpoint of archive %q seq %d head %s, want %q seq %d head %s", cp.Archive, cp.Seq, cp.Head, c.Archive, c.Seq, c.Head)
		}
		if err != nil {
			return FeedEntry{}, fmt.Errorf("%w: checkpoint at %d: %w", ErrChain, e.Seq, err)
		}
	case audit.TypeIngest:
		var f ingestFields
		if err := e.DecodeFields(&f); err != nil {
			return FeedEntry{}, err
		}
		receipt := f.Receipt
		if receipt == 0 && f.Kind == store.KindMessage.String() {
			receipt = 1
		}
		fe.Ingest = &IngestFact{ID: sealmail.MessageID(f.ID), Kind: f.Kind, Receipt: receipt, Ref: RecordRef{Record: f.Record, Entry: f.Entry}}
	case audit.TypeHoldCreate, audit.TypeHoldRelease:
		var f holdReleaseFields // the name is all a reader needs
		if err := e.DecodeFields(&f); err != nil {
			return FeedEntry{}, err
		}
		fe.Hold = f.Name
	}
	c.Seq, c.Head = e.Seq, e.Hash
	return fe, nil
}

// RecordView is a stored record the feed carried, its structure checked.
type RecordView struct {
	h       *store.RecordHeader
	payload []byte
}

// ParseRecord checks a whole record's structure and checksums.
func ParseRecord(raw []byte) (*RecordView, error) {
	h, payload, err := store.ParseRecord(raw)
	if err != nil {
		return nil, err
	}
	return &RecordView{h: h, payload: payload}, nil
}

// Names reports whether entry i of the record is of the given kind for
// message id, as the ingest entry that vouched for the record says.
func (r *RecordView) Names(i int, id sealmail.MessageID, kind string) bool {
	return i >= 0 && i < len(r.h.Entries) && r.h.Entries[i].ID == id && r.h.Entries[i].Kind.String() == kind
}

// OpenRecord is a record whose file key is unwrapped.
type OpenRecord struct {
	r *RecordView
	d *store.DecryptedRecord
}

// Decrypt unwraps the record's file key with the identities (once for all
// its entries). It returns an error wrapping [ErrNoIdentityMatch] when none
// is the archive's.
func (r *RecordView) Decrypt(ids []age.Identity) (*OpenRecord, error) {
	d, err := store.DecryptRecord(r.payload, ids...)
	if store.IsNoIdentityMatch(err) {
		return nil, ErrNoIdentityMatch
	}
	if err != nil {
		return nil, err
	}
	return &OpenRecord{r: r, d: d}, nil
}

// Entry decrypts entry i: for a message entry the original and its
// receipt, for an envelope entry its receipt alone. It may be called
// concurrently.
func (o *OpenRecord) Entry(i int) (original []byte, r Receipt, err error) {
	if i < 0 || i >= len(o.r.h.Entries) {
		return nil, Receipt{}, fmt.Errorf("record entry %d of %d", i, len(o.r.h.Entries))
	}
	e := o.r.h.Entries[i]
	p, err := o.d.Entry(e.PlainOffset, e.PlainLen)
	if err != nil {
		return nil, Receipt{}, fmt.Errorf("message %d: %w", e.ID, err)
	}
	return p.Original, Receipt{Envelope: p.Header.Envelope, Report: p.Report}, nil
}
