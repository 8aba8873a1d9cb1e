// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// SegmentSeq numbers segment files, starting at 1.
type SegmentSeq uint32

func (s SegmentSeq) String() string { return fmt.Sprintf("%08d", uint32(s)) }

const (
	segmentMagic      = "SEALMSEG"
	segmentVersion    = 1
	segmentHeaderSize = 48
)

func segmentName(seq SegmentSeq) string { return seq.String() + ".seg" }

func segmentPath(dir string, seq SegmentSeq) string {
	return filepath.Join(dir, "segments", segmentName(seq))
}

// path is the segment's file: NNNNNNNN.seg, or NNNNNNNN.gG.seg after its
// G-th compaction.
func (si *SegmentInfo) path(dir string) string {
	return filepath.Join(dir, "segments", si.FileName())
}

// segmentHeader is the fixed header at the start of every segment file.
type segmentHeader struct {
	Seq       SegmentSeq
	ArchiveID [16]byte
	Created   int64 // Unix nanoseconds
}

func (h *segmentHeader) encode() []byte {
	b := make([]byte, 0, segmentHeaderSize)
	b = append(b, segmentMagic...)
	b = binary.LittleEndian.AppendUint16(b, segmentVersion)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(h.Seq))
	b = append(b, h.ArchiveID[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.Created))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return append(b, 0, 0, 0, 0)
}

func parseSegmentHeader(b []byte) (*segmentHeader, error) {
	if len(b) < segmentHeaderSize {
		return nil, fmt.Errorf("segment header: %d bytes, want %d: %w", len(b), segmentHeaderSize, ErrCorrupt)
	}
	if string(b[:8]) != segmentMagic {
		return nil, fmt.Errorf("segment header: bad magic %q: %w", b[:8], ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != segmentVersion {
		return nil, fmt.Errorf("segment header: version %d: %w", v, ErrUnsupportedVersion)
	}
	if got, want := crc32.Checksum(b[:40], castagnoli), binary.LittleEndian.Uint32(b[40:]); got != want {
		return nil, fmt.Errorf("segment header: checksum %08x, want %08x: %w", got, want, ErrCorrupt)
	}
	h := &segmentHeader{
		Seq:     SegmentSeq(binary.LittleEndian.Uint32(b[12:])),
		Created: int64(binary.LittleEndian.Uint64(b[32:])),
	}
	copy(h.ArchiveID[:], b[16:32])
	return h, nil
}

// ScannedRecord is one record found by [Scan].
type ScannedRecord struct {
	Header *RecordHeader
	Offset int64    // of the record's first byte in the segment
	Length int64    // of the whole record, header to trailer
	SHA256 [32]byte // of the whole record
}

// Scan reads a segment from r and calls fn for each valid record, in order.
// It stops at the first record that is torn or corrupt and returns the offset
// just past the last valid record (the valid length of the segment) together
// with the error that stopped it; a clean end of file returns a nil error.
// Payloads are checked against their CRC but not decrypted.
func Scan(r io.Reader, fn func(ScannedRecord) error) (seg *SegmentInfo, valid int64, err error) {
	br := bufio.NewReaderSize(r, 1<<20)
	hb := make([]byte, segmentHeaderSize)
	if _, err := io.ReadFull(br, hb); err != nil {
		return nil, 0, fmt.Errorf("read segment header: %w", errTorn(err))
	}
	sh, err := parseSegmentHeader(hb)
	if err != nil {
		return nil, 0, err
	}
	seg = &SegmentInfo{Seq: sh.Seq, ArchiveID: sh.ArchiveID, Created: sh.Created}
	valid, err = scanRecords(br, segmentHeaderSize, func(rec ScannedRecord) error {
		seg.Records++
		return fn(rec)
	})
	seg.Size = valid
	return seg, valid, err
}

// scanRecords reads records from br, the first at offset off, until the end
// of br or the first invalid record. See [Scan].
func scanRecords(br *bufio.Reader, off int64, fn func(ScannedRecord) error) (int64, error) {
	var buf []byte
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return off, nil
		}
		fixed := make([]byte, recordHeaderSize)
		if _, err := io.ReadFull(br, fixed); err != nil {
			return off, fmt.Errorf("record at %d: %w", off, errTorn(err))
		}
		hlen, err := peekRecordLen(fixed)
		if err != nil {
			return off, fmt.Errorf("record at %d: %w", off, err)
		}
		buf = append(buf[:0], fixed...)
		buf = growTo(buf, int(hlen))
		if _, err := io.ReadFull(br, buf[recordHeaderSize:hlen]); err != nil {
			return off, fmt.Errorf("record at %d: %w", off, errTorn(err))
		}
		h, err := parseRecordHeader(buf)
		if err != nil {
			return off, fmt.Errorf("record at %d: %w", off, err)
		}
		n := h.Len()
		buf = growTo(buf, int(n))
		if _, err := io.ReadFull(br, buf[hlen:n]); err != nil {
			return off, fmt.Errorf("record at %d: %w", off, errTorn(err))
		}
		if err := checkRecordTrailer(buf); err != nil {
			return off, fmt.Errorf("record at %d: %w", off, err)
		}
		if err := fn(ScannedRecord{Header: h, Offset: off, Length: n, SHA256: sha256.Sum256(buf[:n])}); err != nil {
			return off, err
		}
		off += n
	}
}

// growTo extends b to n bytes, keeping its content.
func growTo(b []byte, n int) []byte {
	if cap(b) < n {
		nb := make([]byte, n)
		copy(nb, b)
		return nb
	}
	return b[:n]
}

// errTorn turns an unexpected end of file into ErrTorn.
func errTorn(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTorn
	}
	return err
}

// ErrTorn reports a segment that ends inside a record: the tail of a write
// that never completed.
var ErrTorn = errors.New("store: torn record at end of segment")

// ScanFile scans the segment file at path; see [Scan].
func ScanFile(path string, fn func(ScannedRecord) error) (*SegmentInfo, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	return Scan(f, fn)
}
