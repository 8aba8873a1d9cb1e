// SPDX-License-Identifier: Apache-2.0

package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sealmail/sealmail"
)

// Catalog buckets (docs/format.md, "Catalog"). Keys are big-endian so that
// bbolt's byte order is numeric order.
var (
	bucketMeta      = []byte("meta")
	bucketMessages  = []byte("messages")
	bucketEnvelopes = []byte("envelopes")
	bucketDigests   = []byte("digests")
	bucketSegments  = []byte("segments")
	// bucketHoldMembers records which messages each legal hold covers, as
	// the reader evaluated it (catalog format 2; holds.go).
	bucketHoldMembers = []byte("hold_members")
)

// Meta keys.
var (
	metaFormat     = []byte("format")
	metaArchiveID  = []byte("archive-id")
	metaNextID     = []byte("next-id")
	metaCounters   = []byte("counters")
	catalogVersion = byte(1) // of every value
	// catalogFormat is the catalog's format (meta/format). Format 2 added
	// the hold_members bucket and dropped format 1's index-watermark key;
	// Open upgrades a format-1 catalog (docs/format.md, "Catalog").
	catalogFormat = byte(2)
	// metaWatermark is format 1's index watermark, removed by the upgrade:
	// the receiver keeps no index since format 2.
	metaWatermark = []byte("index-watermark")
)

// MessageState is the life-cycle state of a cataloged message.
type MessageState uint8

// Message states.
const (
	StateLive    MessageState = 1
	StateDeleted MessageState = 2
)

func (s MessageState) String() string {
	switch s {
	case StateLive:
		return "live"
	case StateDeleted:
		return "deleted"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Location says where a record is.
type Location struct {
	Segment SegmentSeq
	Offset  int64 // of the record's first byte
	Length  int64 // of the whole record
	Entry   int   // index in the record's entry table
}

// MessageInfo is the catalog entry of one message.
type MessageInfo struct {
	ID          sealmail.MessageID
	State       MessageState
	Location    Location
	Received    time.Time
	Size        int64 // original bytes
	Digest      [32]byte
	RetainUntil time.Time // zero: not set (never eligible for deletion)
	Forever     bool      // kept forever by retention policy
	Receipts    int       // number of envelopes: 1 + duplicate deliveries
	// DeletedAt and DeletedAudit say when a deleted message was deleted and
	// which audit entry ordered it.
	DeletedAt    time.Time
	DeletedAudit uint64
}

const messageValueSize = 1 + 1 + 2 + 4 + 8 + 8 + 2 + 8 + 8 + 32 + 8 + 8 + 8

func encodeMessage(m *MessageInfo) []byte {
	b := make([]byte, 0, messageValueSize)
	b = append(b, catalogVersion, byte(m.State))
	b = binary.LittleEndian.AppendUint16(b, uint16(min(m.Receipts, 0xffff)))
	b = binary.LittleEndian.AppendUint32(b, uint32(m.Location.Segment))
	b = binary.LittleEndian.AppendUint64(b, uint64(m.Location.Offset))
	b = binary.LittleEndian.AppendUint64(b, uint64(m.Location.Length))
	b = binary.LittleEndian.AppendUint16(b, uint16(m.Location.Entry))
	b = binary.LittleEndian.AppendUint64(b, uint64(m.Received.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, uint64(m.Size))
	b = append(b, m.Digest[:]...)
	var ru int64
	switch {
	case m.Forever:
		ru = -1
	case !m.RetainUntil.IsZero():
		ru = m.RetainUntil.Unix()
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(ru))
	var del int64
	if !m.DeletedAt.IsZero() {
		del = m.DeletedAt.UnixNano()
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(del))
	return binary.LittleEndian.AppendUint64(b, m.DeletedAudit)
}

func decodeMessage(id sealmail.MessageID, b []byte) (*MessageInfo, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("catalog message %d: empty value: %w", id, ErrCorrupt)
	}
	if b[0] != catalogVersion {
		return nil, fmt.Errorf("catalog message %d: version %d: %w", id, b[0], ErrUnsupportedVersion)
	}
	if len(b) != messageValueSize {
		return nil, fmt.Errorf("catalog message %d: %d bytes, want %d: %w", id, len(b), messageValueSize, ErrCorrupt)
	}
	m := &MessageInfo{
		ID:       id,
		State:    MessageState(b[1]),
		Receipts: int(binary.LittleEndian.Uint16(b[2:])),
		Location: Location{
			Segment: SegmentSeq(binary.LittleEndian.Uint32(b[4:])),
			Offset:  int64(binary.LittleEndian.Uint64(b[8:])),
			Length:  int64(binary.LittleEndian.Uint64(b[16:])),
			Entry:   int(binary.LittleEndian.Uint16(b[24:])),
		},
		Received: time.Unix(0, int64(binary.LittleEndian.Uint64(b[26:]))).UTC(),
		Size:     int64(binary.LittleEndian.Uint64(b[34:])),
	}
	copy(m.Digest[:], b[42:74])
	switch ru := int64(binary.LittleEndian.Uint64(b[74:])); {
	case ru == -1:
		m.Forever = true
	case ru != 0:
		m.RetainUntil = time.Unix(ru, 0).UTC()
	}
	if del := int64(binary.LittleEndian.Uint64(b[82:])); del != 0 {
		m.DeletedAt = time.Unix(0, del).UTC()
	}
	m.DeletedAudit = binary.LittleEndian.Uint64(b[90:])
	if m.State != StateLive && m.State != StateDeleted {
		return nil, fmt.Errorf("catalog message %d: state %d: %w", id, m.State, ErrCorrupt)
	}
	return m, nil
}

const locationValueSize = 1 + 4 + 8 + 8 + 2

func encodeLocation(l Location) []byte {
	b := make([]byte, 0, locationValueSize)
	b = append(b, catalogVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(l.Segment))
	b = binary.LittleEndian.AppendUint64(b, uint64(l.Offset))
	b = binary.LittleEndian.AppendUint64(b, uint64(l.Length))
	return binary.LittleEndian.AppendUint16(b, uint16(l.Entry))
}

func decodeLocation(b []byte) (Location, error) {
	if len(b) != locationValueSize {
		return Location{}, fmt.Errorf("catalog location: %d bytes: %w", len(b), ErrCorrupt)
	}
	if b[0] != catalogVersion {
		return Location{}, fmt.Errorf("catalog location: version %d: %w", b[0], ErrUnsupportedVersion)
	}
	return Location{
		Segment: SegmentSeq(binary.LittleEndian.Uint32(b[1:])),
		Offset:  int64(binary.LittleEndian.Uint64(b[5:])),
		Length:  int64(binary.LittleEndian.Uint64(b[13:])),
		Entry:   int(binary.LittleEndian.Uint16(b[21:])),
	}, nil
}

// SegmentState is the life-cycle state of a segment.
type SegmentState uint8

// Segment states.
const (
	SegmentActive SegmentState = 1
	SegmentSealed SegmentState = 2
)

func (s SegmentState) String() string {
	switch s {
	case SegmentActive:
		return "active"
	case SegmentSealed:
		return "sealed"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// SegmentInfo is the catalog entry of one segment.
type SegmentInfo struct {
	Seq       SegmentSeq
	ArchiveID [16]byte
	State     SegmentState
	Created   int64 // Unix nanoseconds, from the segment header
	Size      int64 // committed length: every byte before it is cataloged
	Records   int64
	Sealed    time.Time
	SHA256    [32]byte // of the whole file, set when sealed
	Gen       uint32   // compactions so far; names the file
}

const segmentValueSize = 1 + 1 + 8 + 8 + 8 + 8 + 32 + 4

func encodeSegment(s *SegmentInfo) []byte {
	b := make([]byte, 0, segmentValueSize)
	b = append(b, catalogVersion, byte(s.State))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.Created))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.Size))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.Records))
	var sealed int64
	if !s.Sealed.IsZero() {
		sealed = s.Sealed.UnixNano()
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(sealed))
	b = append(b, s.SHA256[:]...)
	return binary.LittleEndian.AppendUint32(b, s.Gen)
}

func decodeSegment(seq SegmentSeq, archiveID [16]byte, b []byte) (*SegmentInfo, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("catalog segment %s: empty value: %w", seq, ErrCorrupt)
	}
	if b[0] != catalogVersion {
		return nil, fmt.Errorf("catalog segment %s: version %d: %w", seq, b[0], ErrUnsupportedVersion)
	}
	if len(b) != segmentValueSize {
		return nil, fmt.Errorf("catalog segment %s: %d bytes: %w", seq, len(b), ErrCorrupt)
	}
	s := &SegmentInfo{
		Seq:       seq,
		ArchiveID: archiveID,
		State:     SegmentState(b[1]),
		Created:   int64(binary.LittleEndian.Uint64(b[2:])),
		Size:      int64(binary.LittleEndian.Uint64(b[10:])),
		Records:   int64(binary.LittleEndian.Uint64(b[18:])),
	}
	if n := int64(binary.LittleEndian.Uint64(b[26:])); n != 0 {
		s.Sealed = time.Unix(0, n).UTC()
	}
	copy(s.SHA256[:], b[34:66])
	s.Gen = binary.LittleEndian.Uint32(b[66:])
	if s.State != SegmentActive && s.State != SegmentSealed {
		return nil, fmt.Errorf("catalog segment %s: state %d: %w", seq, s.State, ErrCorrupt)
	}
	return s, nil
}

// counters are running totals kept in the meta bucket so that status is
// cheap.
type counters struct {
	Messages      int64 // live messages
	OriginalBytes int64 // sum of live messages' original sizes
	Receipts      int64 // envelopes stored, including the first of each message
}

func encodeCounters(c counters) []byte {
	b := []byte{catalogVersion}
	b = binary.LittleEndian.AppendUint64(b, uint64(c.Messages))
	b = binary.LittleEndian.AppendUint64(b, uint64(c.OriginalBytes))
	return binary.LittleEndian.AppendUint64(b, uint64(c.Receipts))
}

func decodeCounters(b []byte) (counters, error) {
	if len(b) == 0 {
		return counters{}, nil
	}
	if len(b) != 25 || b[0] != catalogVersion {
		return counters{}, fmt.Errorf("catalog counters: %d bytes: %w", len(b), ErrCorrupt)
	}
	return counters{
		Messages:      int64(binary.LittleEndian.Uint64(b[1:])),
		OriginalBytes: int64(binary.LittleEndian.Uint64(b[9:])),
		Receipts:      int64(binary.LittleEndian.Uint64(b[17:])),
	}, nil
}

func u64key(v uint64) []byte             { return binary.BigEndian.AppendUint64(nil, v) }
func idKey(id sealmail.MessageID) []byte { return u64key(uint64(id)) }
func segKey(s SegmentSeq) []byte         { return binary.BigEndian.AppendUint32(nil, uint32(s)) }

// envelopeKey is the message id followed by the receipt number (2, 3, …;
// receipt 1 is the message record itself).
func envelopeKey(id sealmail.MessageID, n int) []byte {
	return binary.BigEndian.AppendUint32(idKey(id), uint32(n))
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putU64(b *bolt.Bucket, k []byte, v uint64) error { return b.Put(k, u64key(v)) }
