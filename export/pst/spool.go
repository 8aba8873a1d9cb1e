// SPDX-License-Identifier: Apache-2.0

package pst

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// spool keeps the contents-table rows of all messages in a temporary file
// until Close, so that memory holds 12 bytes per message instead of the
// row's strings. Record format: row ID (4), property count (4), then per
// property: tag (4), length (4), value.
type spool struct {
	f   *os.File
	off int64
	buf []byte
}

type spoolRef struct {
	off int64
	n   uint32
}

func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, "sealmail-pst-rows-*")
	if err != nil {
		return nil, fmt.Errorf("create row spool: %w", err)
	}
	return &spool{f: f}, nil
}

func (s *spool) put(r tcRow) (spoolRef, error) {
	b := s.buf[:0]
	b = binary.LittleEndian.AppendUint32(b, r.id)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.vals)))
	for _, p := range r.vals {
		b = binary.LittleEndian.AppendUint32(b, p.tag)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.val)))
		b = append(b, p.val...)
	}
	s.buf = b
	if _, err := s.f.WriteAt(b, s.off); err != nil {
		return spoolRef{}, fmt.Errorf("write row spool: %w", err)
	}
	ref := spoolRef{off: s.off, n: uint32(len(b))}
	s.off += int64(len(b))
	return ref, nil
}

func (s *spool) get(ref spoolRef) (tcRow, error) {
	b := make([]byte, ref.n)
	if _, err := s.f.ReadAt(b, ref.off); err != nil && err != io.EOF {
		return tcRow{}, fmt.Errorf("read row spool: %w", err)
	}
	le := binary.LittleEndian
	r := tcRow{id: le.Uint32(b)}
	n := int(le.Uint32(b[4:]))
	b = b[8:]
	for range n {
		tag, l := le.Uint32(b), int(le.Uint32(b[4:]))
		r.vals = append(r.vals, prop{tag: tag, val: b[8 : 8+l]})
		b = b[8+l:]
	}
	return r, nil
}

func (s *spool) close() error {
	name := s.f.Name()
	err := s.f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}
