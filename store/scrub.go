// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/sealmail/sealmail/vfs"
)

// SealedCheck is what [Store.CheckSealed] found in one sealed segment.
type SealedCheck struct {
	Segment SegmentSeq
	Bytes   int64 // read
	Records int64 // valid records
	// Problems is empty when the segment's bytes hash to the SHA-256
	// recorded at sealing and every record's CRCs hold.
	Problems []string
}

// CheckSealed reads sealed segment seq again, through wrap (a rate limiter;
// nil reads directly): its SHA-256 against the catalog's, its header, and
// every record's CRCs. It reads the file the catalog names at the start;
// a compaction that replaces it meanwhile does not disturb the check (the
// file stays open). The error is for a segment that is not sealed or
// cannot be opened, and for ctx ending.
func (s *Store) CheckSealed(ctx context.Context, seq SegmentSeq, wrap func(io.Reader) io.Reader) (*SealedCheck, error) {
	s.compactMu.RLock()
	si, err := s.segment(seq)
	var f *os.File
	if err == nil {
		f, err = os.Open(si.path(s.dir))
	}
	s.compactMu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("check segment %s: %w", seq, err)
	}
	defer f.Close()
	if si.State != SegmentSealed {
		return nil, fmt.Errorf("check segment %s: not sealed", seq)
	}
	c := &SealedCheck{Segment: seq}
	h := sha256.New()
	var r io.Reader = vfs.ContextReader(ctx, f)
	if wrap != nil {
		r = wrap(r)
	}
	cr := &countingReader{r: io.TeeReader(r, h)}
	hdr, valid, scanErr := Scan(cr, func(ScannedRecord) error { c.Records++; return nil })
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, cr); err != nil { // hash what the scan did not read
		return nil, fmt.Errorf("check segment %s: %w", seq, err)
	}
	c.Bytes = cr.n
	switch {
	case hdr == nil:
		c.Problems = append(c.Problems, fmt.Sprintf("header unreadable: %v", scanErr))
	case hdr.ArchiveID != s.id || hdr.Seq != seq:
		c.Problems = append(c.Problems, fmt.Sprintf("header names archive %x segment %s", hdr.ArchiveID, hdr.Seq))
	}
	if hdr != nil && (scanErr != nil || valid != si.Size) {
		c.Problems = append(c.Problems, fmt.Sprintf("records unreadable from offset %d of %d: %v", valid, si.Size, scanErr))
	}
	if c.Bytes != si.Size {
		c.Problems = append(c.Problems, fmt.Sprintf("%d bytes, the catalog says %d", c.Bytes, si.Size))
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	if sum != si.SHA256 {
		c.Problems = append(c.Problems, fmt.Sprintf("SHA-256 %x differs from the one recorded at sealing, %x", sum, si.SHA256))
	}
	return c, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}
