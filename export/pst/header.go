// SPDX-License-Identifier: Apache-2.0

package pst

// Header, density list and close ([MS-PST] 2.2.2.6, 2.2.2.7.4).

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// headerInfo carries what the header needs besides the NDB state.
type headerInfo struct {
	rgnid [32]uint32
}

// close writes the B-trees, the remaining map pages, the density list and
// the header. The file is valid only after close returns nil.
func (d *ndb) close(hi headerInfo) error {
	if d.err != nil {
		return d.err
	}
	slices.SortFunc(d.nbt, func(a, b nbtEntry) int {
		switch {
		case a.nid < b.nid:
			return -1
		case a.nid > b.nid:
			return 1
		}
		return 0
	})
	for i := 1; i < len(d.nbt); i++ {
		if d.nbt[i].nid == d.nbt[i-1].nid {
			return fmt.Errorf("duplicate node %#x", d.nbt[i].nid)
		}
	}
	nbtRoot, err := d.writeBTree(ptypeNBT, len(d.nbt), 32, func(i int) uint64 { return d.nbt[i].nid }, func(i int, b []byte) {
		e := d.nbt[i]
		binary.LittleEndian.PutUint64(b[0:], e.nid)
		binary.LittleEndian.PutUint64(b[8:], e.bidData)
		binary.LittleEndian.PutUint64(b[16:], e.bidSub)
		binary.LittleEndian.PutUint32(b[24:], e.nidParent)
	})
	if err != nil {
		return fmt.Errorf("write nbt: %w", err)
	}
	// BIDs are handed out in increasing order, so the BBT is already sorted.
	bbtRoot, err := d.writeBTree(ptypeBBT, len(d.bbt), 24, func(i int) uint64 { return d.bbt[i].bid &^ 1 }, func(i int, b []byte) {
		e := d.bbt[i]
		binary.LittleEndian.PutUint64(b[0:], e.bid)
		binary.LittleEndian.PutUint64(b[8:], e.ib)
		binary.LittleEndian.PutUint16(b[16:], e.cb)
		binary.LittleEndian.PutUint16(b[18:], 2) // cRef: one referrer + 1 (2.2.2.7.7.3.1)
	})
	if err != nil {
		return fmt.Errorf("write bbt: %w", err)
	}
	lastAMap := intervalBase(d.ival)
	if err := d.finishInterval(); err != nil {
		return err
	}
	eof := d.written
	// FMap pages: the longest free run of each AMap interval they cover.
	nInt := int64(len(d.maxFree))
	for i := int64(fmapFirst); i < nInt; i += fmapPerPage {
		_, _, fm, _ := intervalPages(i)
		if !fm {
			continue
		}
		off := intervalBase(i) + 2*pageSize
		p := make([]byte, pageSize)
		copy(p[:496], d.maxFree[i:min(nInt, i+496)])
		writePageTrailer(p, ptypeFMap, 0, uint64(off))
		if err := d.writeAt(p, off); err != nil {
			return err
		}
	}
	// Density list (2.2.2.7.4): present, no entries, as Outlook writes it.
	dl := make([]byte, pageSize)
	dlBID := d.nextPage
	d.nextPage++
	writePageTrailer(dl, ptypeDList, sig(dlistOffset, dlBID), dlBID)
	if err := d.writeAt(dl, dlistOffset); err != nil {
		return err
	}
	h := make([]byte, 564)
	copy(h[0:], "!BDN")
	copy(h[8:], "SM")
	binary.LittleEndian.PutUint16(h[0x0A:], 23) // wVer: Unicode
	binary.LittleEndian.PutUint16(h[0x0C:], 19) // wVerClient
	h[0x0E], h[0x0F] = 1, 1
	binary.LittleEndian.PutUint64(h[0x20:], d.nextPage)
	binary.LittleEndian.PutUint32(h[0x28:], 1) // dwUnique
	for i, v := range hi.rgnid {
		binary.LittleEndian.PutUint32(h[0x2C+4*i:], v)
	}
	binary.LittleEndian.PutUint64(h[0xB8:], uint64(eof))
	binary.LittleEndian.PutUint64(h[0xC0:], uint64(lastAMap))
	binary.LittleEndian.PutUint64(h[0xC8:], uint64(d.free))
	binary.LittleEndian.PutUint64(h[0xD8:], nbtRoot.bid)
	binary.LittleEndian.PutUint64(h[0xE0:], nbtRoot.ib)
	binary.LittleEndian.PutUint64(h[0xE8:], bbtRoot.bid)
	binary.LittleEndian.PutUint64(h[0xF0:], bbtRoot.ib)
	h[0xF8] = 2 // fAMapValid: VALID_AMAP2
	for i := 0x100; i < 0x200; i++ {
		h[i] = 0xFF // rgbFM, rgbFP: deprecated, all 0xFF
	}
	h[0x200] = 0x80 // bSentinel
	h[0x201] = 0    // bCryptMethod: NDB_CRYPT_NONE
	binary.LittleEndian.PutUint64(h[0x204:], d.nextBID)
	binary.LittleEndian.PutUint32(h[0x04:], crc(h[8:8+471]))
	binary.LittleEndian.PutUint32(h[0x20C:], crc(h[8:8+516]))
	if err := d.writeAt(h, 0); err != nil {
		return err
	}
	if _, err := d.w.Seek(eof, io.SeekStart); err != nil {
		return fmt.Errorf("seek end: %w", err)
	}
	return nil
}

func (d *ndb) writeAt(p []byte, off int64) error {
	if _, err := d.w.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("seek %#x: %w", off, err)
	}
	if _, err := d.w.Write(p); err != nil {
		return fmt.Errorf("write %#x: %w", off, err)
	}
	return nil
}
