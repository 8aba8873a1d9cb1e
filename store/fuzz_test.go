// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bytes"
	"errors"
	"testing"
)

func seedRecord() []byte {
	return encodeRecord(&RecordHeader{Entries: []Entry{
		{Kind: KindMessage, ID: 7, Received: 1, Size: 3, PlainLen: 10},
		{Kind: KindEnvelope, ID: 2, Received: 1, Size: 0, PlainLen: 5},
	}}, []byte("age-encryption.org/v1\n-> x\n"))
}

// FuzzRecordHeader checks that the record header decoder never panics and
// that whatever it accepts re-encodes to the same bytes.
func FuzzRecordHeader(f *testing.F) {
	f.Add(seedRecord())
	f.Add(make([]byte, recordHeaderSize+entrySize+4))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseRecordHeader(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("parseRecordHeader error %v is neither ErrCorrupt nor ErrUnsupportedVersion", err)
			}
			return
		}
		// Flags and reserved bytes are not kept: compare the rest.
		got := appendRecordHeader(nil, h)
		want := bytes.Clone(b[:h.headerLen()])
		want[5] = 0
		for i := range h.Entries {
			copy(want[recordHeaderSize+entrySize*i+1:], []byte{0, 0, 0})
		}
		if !bytes.Equal(got[:len(got)-4], want[:len(want)-4]) {
			t.Fatalf("re-encoded header %x, want %x", got, want)
		}
	})
}

// FuzzScan feeds arbitrary segment bytes to the scanner: it must never panic,
// never report a valid length beyond the input, and the records it reports
// must lie inside the valid prefix.
func FuzzScan(f *testing.F) {
	h := segmentHeader{Seq: 1, Created: 1}
	seg := append(h.encode(), seedRecord()...)
	f.Add(seg)
	f.Add(append(bytes.Clone(seg), seedRecord()[:50]...))
	f.Add(h.encode())
	f.Add([]byte("SEALMSEG"))
	f.Fuzz(func(t *testing.T, b []byte) {
		end := int64(segmentHeaderSize)
		_, valid, err := Scan(bytes.NewReader(b), func(r ScannedRecord) error {
			if r.Offset != end {
				t.Fatalf("record at %d, want %d", r.Offset, end)
			}
			end += r.Length
			return nil
		})
		if valid > int64(len(b)) {
			t.Fatalf("valid length %d beyond input %d", valid, len(b))
		}
		if err == nil && valid != int64(len(b)) {
			t.Fatalf("clean scan ended at %d of %d", valid, len(b))
		}
		if valid > 0 && valid != end {
			t.Fatalf("valid %d, records end at %d", valid, end)
		}
	})
}

// FuzzCatalogValues checks the catalog value decoders.
func FuzzCatalogValues(f *testing.F) {
	f.Add(encodeMessage(&MessageInfo{ID: 1, State: StateLive, Receipts: 1}))
	f.Add(encodeSegment(&SegmentInfo{Seq: 1, State: SegmentActive}))
	f.Add(encodeLocation(Location{Segment: 1, Offset: 48, Length: 100}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := decodeMessage(1, b); err == nil && m.Receipts < 0xffff {
			if got := encodeMessage(m); !bytes.Equal(got[4:], b[4:]) {
				t.Fatalf("message value does not round-trip: %x vs %x", got, b)
			}
		}
		decodeSegment(1, [16]byte{}, b)
		decodeLocation(b)
		decodeCounters(b)
	})
}
