// SPDX-License-Identifier: Apache-2.0

package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/sealmail/sealmail"
)

// Kind is the type of a record.
type Kind uint8

// Record kinds (docs/format.md, "Record").
const (
	// KindMessage holds an original message and its first envelope.
	KindMessage Kind = 1
	// KindEnvelope holds a further envelope (and journal report) for a
	// message already stored: a duplicate delivery.
	KindEnvelope Kind = 2
	// KindTombstone marks a message as deleted.
	KindTombstone Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindMessage:
		return "message"
	case KindEnvelope:
		return "envelope"
	case KindTombstone:
		return "tombstone"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

const (
	recordMagic      = "SMRC"
	recordVersion    = 1
	recordHeaderSize = 76 // including the header CRC
	recordTrailer    = 4  // CRC32C of header and payload
	// recordOverhead is what a record adds to its payload.
	recordOverhead = recordHeaderSize + recordTrailer
	// maxPayload bounds a payload so that a corrupted length can never make a
	// reader allocate without limit. Messages are far smaller (smtpd limits
	// them); this is a sanity bound, not a policy.
	maxPayload = 1 << 31
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// RecordHeader is the clear-text header of a record. It lets the catalog be
// rebuilt and the store verified without the identity; it holds no content
// and no addresses.
type RecordHeader struct {
	Version  uint8
	Kind     Kind
	ID       sealmail.MessageID
	Received int64 // Unix nanoseconds
	// Size is the plaintext size of the data that follows the JSON line: the
	// original message for KindMessage, the journal report for KindEnvelope.
	Size int64
	// Digest is the keyed digest (HMAC-SHA-256) of the original message the
	// record belongs to.
	Digest     [32]byte
	PayloadLen int64
}

// appendRecordHeader encodes h with its CRC.
func appendRecordHeader(b []byte, h *RecordHeader) []byte {
	start := len(b)
	b = append(b, recordMagic...)
	b = append(b, recordVersion, byte(h.Kind), 0, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.ID))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.Received))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.Size))
	b = append(b, h.Digest[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.PayloadLen))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
	return b
}

// parseRecordHeader decodes and checks a record header: magic, then version,
// then checksum, then field ranges (the order of bbolt's meta validation).
func parseRecordHeader(b []byte) (*RecordHeader, error) {
	if len(b) < recordHeaderSize {
		return nil, fmt.Errorf("record header: %d bytes, want %d: %w", len(b), recordHeaderSize, ErrCorrupt)
	}
	if string(b[:4]) != recordMagic {
		return nil, fmt.Errorf("record header: bad magic %q: %w", b[:4], ErrCorrupt)
	}
	if b[4] != recordVersion {
		return nil, fmt.Errorf("record header: version %d: %w", b[4], ErrUnsupportedVersion)
	}
	if got, want := crc32.Checksum(b[:72], castagnoli), binary.LittleEndian.Uint32(b[72:76]); got != want {
		return nil, fmt.Errorf("record header: checksum %08x, want %08x: %w", got, want, ErrCorrupt)
	}
	h := &RecordHeader{
		Version:    b[4],
		Kind:       Kind(b[5]),
		ID:         sealmail.MessageID(binary.LittleEndian.Uint64(b[8:])),
		Received:   int64(binary.LittleEndian.Uint64(b[16:])),
		Size:       int64(binary.LittleEndian.Uint64(b[24:])),
		PayloadLen: int64(binary.LittleEndian.Uint64(b[64:])),
	}
	copy(h.Digest[:], b[32:64])
	switch {
	case h.Kind != KindMessage && h.Kind != KindEnvelope && h.Kind != KindTombstone:
		return nil, fmt.Errorf("record header: unknown kind %d: %w", h.Kind, ErrCorrupt)
	case h.ID == 0:
		return nil, fmt.Errorf("record header: message id 0: %w", ErrCorrupt)
	case h.PayloadLen <= 0 || h.PayloadLen > maxPayload:
		return nil, fmt.Errorf("record header: payload length %d: %w", h.PayloadLen, ErrCorrupt)
	case h.Size < 0:
		return nil, fmt.Errorf("record header: size %d: %w", h.Size, ErrCorrupt)
	}
	return h, nil
}

// encodeRecord returns the complete record bytes for h and payload.
func encodeRecord(h *RecordHeader, payload []byte) []byte {
	h.PayloadLen = int64(len(payload))
	b := make([]byte, 0, recordOverhead+len(payload))
	b = appendRecordHeader(b, h)
	b = append(b, payload...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// checkRecordTrailer verifies the CRC over a complete record (header, payload
// and trailer).
func checkRecordTrailer(rec []byte) error {
	n := len(rec) - recordTrailer
	if got, want := crc32.Checksum(rec[:n], castagnoli), binary.LittleEndian.Uint32(rec[n:]); got != want {
		return fmt.Errorf("record checksum %08x, want %08x: %w", got, want, ErrCorrupt)
	}
	return nil
}
