// SPDX-License-Identifier: Apache-2.0

package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/sealmail/sealmail"
)

// Kind is the type of a record entry.
type Kind uint8

// Entry kinds (docs/format.md, "Record").
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

// A record is one age file holding the entries of one group commit (or part
// of one): a clear header, a clear entry table, the age payload, a CRC.
const (
	recordMagic      = "SMRC"
	recordVersion    = 1
	recordHeaderSize = 16 // magic, version, flags, entry count, payload length
	entrySize        = 64
	recordTrailer    = 4 // CRC32C of everything before it
	// maxEntries bounds the entry table (a uint16 count).
	maxEntries = 1<<16 - 1
	// maxPayload bounds a payload so that a corrupted length can never make a
	// reader allocate without limit. It is a sanity bound, not a policy.
	maxPayload = 1 << 31
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Entry is the clear-text description of one message, envelope or
// tombstone inside a record. It lets the catalog be rebuilt and the store
// verified without the identity; it holds no content and no addresses.
type Entry struct {
	Kind     Kind
	ID       sealmail.MessageID
	Received int64 // Unix nanoseconds
	// Size is the plaintext size of the data that follows the JSON line: the
	// original message for KindMessage, the journal report for KindEnvelope.
	Size int64
	// Digest is the keyed digest (HMAC-SHA-256) of the original message the
	// entry belongs to.
	Digest [32]byte
	// PlainOffset and PlainLen locate the entry's zstd frame in the
	// record's decrypted payload. PlainOffset is the sum of the previous
	// entries' PlainLen; it is not stored.
	PlainOffset int64
	PlainLen    int64
}

// RecordHeader is the clear part of a record.
type RecordHeader struct {
	Entries    []Entry
	PayloadLen int64
}

// headerLen is the length of the header, entry table and table CRC.
func (h *RecordHeader) headerLen() int64 {
	return recordHeaderSize + entrySize*int64(len(h.Entries)) + 4
}

// Len is the length of the whole record.
func (h *RecordHeader) Len() int64 { return h.headerLen() + h.PayloadLen + recordTrailer }

// appendRecordHeader encodes h: header, entry table, CRC of both.
func appendRecordHeader(b []byte, h *RecordHeader) []byte {
	start := len(b)
	b = append(b, recordMagic...)
	b = append(b, recordVersion, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.Entries)))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.PayloadLen))
	for _, e := range h.Entries {
		b = append(b, byte(e.Kind), 0, 0, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(e.PlainLen))
		b = binary.LittleEndian.AppendUint64(b, uint64(e.ID))
		b = binary.LittleEndian.AppendUint64(b, uint64(e.Received))
		b = binary.LittleEndian.AppendUint64(b, uint64(e.Size))
		b = append(b, e.Digest[:]...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// peekRecordLen reads the fixed header and returns the length of the header
// with its entry table, after checking magic and version. The CRC comes
// with the table, in [parseRecordHeader].
func peekRecordLen(b []byte) (int64, error) {
	if len(b) < recordHeaderSize {
		return 0, fmt.Errorf("record header: %d bytes, want %d: %w", len(b), recordHeaderSize, ErrCorrupt)
	}
	if string(b[:4]) != recordMagic {
		return 0, fmt.Errorf("record header: bad magic %q: %w", b[:4], ErrCorrupt)
	}
	if b[4] != recordVersion {
		return 0, fmt.Errorf("record header: version %d: %w", b[4], ErrUnsupportedVersion)
	}
	n := binary.LittleEndian.Uint16(b[6:])
	if n == 0 {
		return 0, fmt.Errorf("record header: no entries: %w", ErrCorrupt)
	}
	return recordHeaderSize + entrySize*int64(n) + 4, nil
}

// parseRecordHeader decodes and checks a record header and its entry table:
// magic, then version, then checksum, then field ranges (the order of
// bbolt's meta validation).
func parseRecordHeader(b []byte) (*RecordHeader, error) {
	n, err := peekRecordLen(b)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) < n {
		return nil, fmt.Errorf("record header: %d bytes, want %d: %w", len(b), n, ErrCorrupt)
	}
	if got, want := crc32.Checksum(b[:n-4], castagnoli), binary.LittleEndian.Uint32(b[n-4:]); got != want {
		return nil, fmt.Errorf("record header: checksum %08x, want %08x: %w", got, want, ErrCorrupt)
	}
	h := &RecordHeader{PayloadLen: int64(binary.LittleEndian.Uint64(b[8:]))}
	if h.PayloadLen <= 0 || h.PayloadLen > maxPayload {
		return nil, fmt.Errorf("record header: payload length %d: %w", h.PayloadLen, ErrCorrupt)
	}
	count := int(binary.LittleEndian.Uint16(b[6:]))
	h.Entries = make([]Entry, count)
	var off int64
	for i := range h.Entries {
		p := b[recordHeaderSize+entrySize*i:]
		e := Entry{
			Kind:        Kind(p[0]),
			PlainLen:    int64(binary.LittleEndian.Uint32(p[4:])),
			ID:          sealmail.MessageID(binary.LittleEndian.Uint64(p[8:])),
			Received:    int64(binary.LittleEndian.Uint64(p[16:])),
			Size:        int64(binary.LittleEndian.Uint64(p[24:])),
			PlainOffset: off,
		}
		copy(e.Digest[:], p[32:64])
		switch {
		case e.Kind != KindMessage && e.Kind != KindEnvelope && e.Kind != KindTombstone:
			return nil, fmt.Errorf("record entry %d: unknown kind %d: %w", i, e.Kind, ErrCorrupt)
		case e.ID == 0:
			return nil, fmt.Errorf("record entry %d: message id 0: %w", i, ErrCorrupt)
		case e.Size < 0 || e.PlainLen == 0:
			return nil, fmt.Errorf("record entry %d: size %d, frame %d: %w", i, e.Size, e.PlainLen, ErrCorrupt)
		}
		off += e.PlainLen
		h.Entries[i] = e
	}
	return h, nil
}

// payload returns the payload of rec, the record h was parsed from.
func (h *RecordHeader) payload(rec []byte) []byte {
	return rec[h.headerLen() : h.headerLen()+h.PayloadLen]
}

// ParseRecord checks a whole record (as [Record.Raw] holds it: header and
// entry table with their CRC, payload, trailer CRC) and returns its header
// and its payload, a part of rec. It is for readers that got the record
// from elsewhere (the reader service, through the control socket) and
// checked its SHA-256 against the audit log.
func ParseRecord(rec []byte) (*RecordHeader, []byte, error) {
	h, err := parseRecordHeader(rec)
	if err != nil {
		return nil, nil, err
	}
	if h.Len() != int64(len(rec)) {
		return nil, nil, fmt.Errorf("record: %d bytes, its header says %d: %w", len(rec), h.Len(), ErrCorrupt)
	}
	if err := checkRecordTrailer(rec); err != nil {
		return nil, nil, err
	}
	return h, h.payload(rec), nil
}

// encodeRecord returns the complete record bytes for h and payload.
func encodeRecord(h *RecordHeader, payload []byte) []byte {
	h.PayloadLen = int64(len(payload))
	b := make([]byte, 0, h.Len())
	b = appendRecordHeader(b, h)
	b = append(b, payload...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// checkRecordTrailer verifies the CRC over a complete record.
func checkRecordTrailer(rec []byte) error {
	n := len(rec) - recordTrailer
	if got, want := crc32.Checksum(rec[:n], castagnoli), binary.LittleEndian.Uint32(rec[n:]); got != want {
		return fmt.Errorf("record checksum %08x, want %08x: %w", got, want, ErrCorrupt)
	}
	return nil
}
