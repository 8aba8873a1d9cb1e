// SPDX-License-Identifier: Apache-2.0

package pst

// Allocation: AMap intervals and their map pages ([MS-PST] 2.2.2.7.2-2.2.2.7.6).

import (
	"encoding/binary"
	"fmt"
)

// intervalPages returns how many map pages (AMap, PMap, FMap, FPMap) sit at
// the start of AMap interval i, and which ones.
func intervalPages(i int64) (n int, pmap, fmap, fpmap bool) {
	n = 1
	if i%8 == 0 {
		pmap = true
		n++
		if i >= fmapFirst && (i-fmapFirst)%fmapPerPage == 0 {
			fmap = true
			n++
		}
		if i >= fpmapFirst && (i-fpmapFirst)%fpmapPerPage == 0 {
			fpmap = true
			n++
		}
	}
	return n, pmap, fmap, fpmap
}

func intervalBase(i int64) int64 { return amapFirst + i*intervalSize }

func (d *ndb) startInterval(i int64) {
	d.ival = i
	clear(d.buf)
	clear(d.bits)
	n, _, _, _ := intervalPages(i)
	d.pos = 0
	d.mark(0, n*pageSize)
	d.pos = n * pageSize
}

// mark sets the AMap bits for [off, off+n) of the current interval.
func (d *ndb) mark(off, n int) {
	for s := off / 64; s < (off+n)/64; s++ {
		d.bits[s/8] |= 0x80 >> (s % 8)
	}
}

// finishInterval fills in the map pages of the current interval and writes it.
func (d *ndb) finishInterval() error {
	if d.err != nil {
		return d.err
	}
	base := intervalBase(d.ival)
	_, pmap, fmap, fpmap := intervalPages(d.ival)
	// free space accounting from the bitmap itself
	freeSlots, run, best := 0, 0, 0
	for s := 0; s < 496*8; s++ {
		if d.bits[s/8]&(0x80>>(s%8)) == 0 {
			freeSlots++
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	d.free += int64(freeSlots) * 64
	d.maxFree = append(d.maxFree, byte(min(best, 255)))
	copy(d.buf[0:496], d.bits)
	writePageTrailer(d.buf[0:pageSize], ptypeAMap, 0, uint64(base))
	off := pageSize
	if pmap {
		p := d.buf[off : off+pageSize]
		for i := range 496 {
			p[i] = 0xFF
		}
		writePageTrailer(p, ptypePMap, 0, uint64(base)+uint64(off))
		off += pageSize
	}
	if fmap {
		// contents are written at close, once every interval it covers is known
		writePageTrailer(d.buf[off:off+pageSize], ptypeFMap, 0, uint64(base)+uint64(off))
		off += pageSize
	}
	if fpmap {
		p := d.buf[off : off+pageSize]
		for i := range 496 {
			p[i] = 0xFF
		}
		writePageTrailer(p, ptypeFPMap, 0, uint64(base)+uint64(off))
	}
	if _, err := d.w.Write(d.buf); err != nil {
		d.err = fmt.Errorf("write interval %d: %w", d.ival, err)
		return d.err
	}
	d.written += intervalSize
	return nil
}

// writePageTrailer fills the 16-byte PAGETRAILER of a 512-byte page.
func writePageTrailer(p []byte, ptype byte, wsig uint16, bid uint64) {
	p[496] = ptype
	p[497] = ptype
	binary.LittleEndian.PutUint16(p[498:], wsig)
	binary.LittleEndian.PutUint32(p[500:], crc(p[:496]))
	binary.LittleEndian.PutUint64(p[504:], bid)
}

// alloc reserves n bytes (a multiple of 64, at most 8192) aligned to align
// and returns the file offset and the slice of the interval buffer.
func (d *ndb) alloc(n, align int) (uint64, []byte, error) {
	if d.err != nil {
		return 0, nil, d.err
	}
	p := (d.pos + align - 1) / align * align
	if p+n > intervalSize {
		if err := d.finishInterval(); err != nil {
			return 0, nil, err
		}
		d.startInterval(d.ival + 1)
		p = (d.pos + align - 1) / align * align
	}
	d.mark(p, n)
	d.pos = p + n
	return uint64(intervalBase(d.ival)) + uint64(p), d.buf[p : p+n], nil
}
