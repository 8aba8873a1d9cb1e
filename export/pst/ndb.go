// SPDX-License-Identifier: Apache-2.0

package pst

import (
	"errors"
	"fmt"
	"io"
)

// File layout constants ([MS-PST] 1.3.2, 2.2.2.7).
const (
	pageSize       = 512
	amapFirst      = 0x4400       // offset of the first AMap page
	dlistOffset    = 0x4200       // offset of the density list page
	intervalSize   = 496 * 8 * 64 // bytes covered by one AMap page (253,952)
	maxBlockSize   = 8192
	blockTrailer   = 16
	maxBlockData   = maxBlockSize - blockTrailer // 8176
	fmapFirst      = 128                         // AMap intervals covered by the header's rgbFM
	fmapPerPage    = 496                         // AMap intervals covered by one FMap page
	fpmapFirst     = 8192                        // AMap intervals covered by the header's rgbFP
	fpmapPerPage   = 496 * 64                    // AMap intervals covered by one FPMap page
	xblockMaxBIDs  = (maxBlockData - 8) / 8
	slblockMaxEnts = (maxBlockData - 8) / 24
	siblockMaxEnts = (maxBlockData - 8) / 16
)

// Page types ([MS-PST] 2.2.2.7.1).
const (
	ptypeBBT   = 0x80
	ptypeNBT   = 0x81
	ptypeFMap  = 0x82
	ptypePMap  = 0x83
	ptypeAMap  = 0x84
	ptypeFPMap = 0x85
	ptypeDList = 0x86
)

// ErrTooLarge reports a message (or folder count) that a PST cannot hold,
// such as an attachment of 2 GiB or more. AddMessage returns it before
// writing anything, and the Writer stays usable.
var ErrTooLarge = errors.New("pst: value too large for a PST")

type nbtEntry struct {
	nid       uint64
	bidData   uint64
	bidSub    uint64
	nidParent uint32
}

type bbtEntry struct {
	bid uint64
	ib  uint64
	cb  uint16
}

// ndb is the append-only node database writer. It buffers the current AMap
// interval in memory and writes it out, with its AMap page, once the
// allocator moves past it. B-tree entries are the only state that grows
// with the file.
type ndb struct {
	w         io.WriteSeeker
	ival      int64  // current interval index
	buf       []byte // contents of the current interval
	pos       int    // allocation pointer within buf
	bits      []byte // AMap bitmap of the current interval
	nextBID   uint64 // next block BID (steps of 4)
	nextPage  uint64 // next page BID
	bbt       []bbtEntry
	nbt       []nbtEntry
	maxFree   []byte // per finished interval: longest free run in slots, capped at 255
	free      int64  // free bytes in finished intervals
	written   int64  // bytes written to w
	dataBytes int64  // bytes in data (non-internal) blocks so far, for object sizes
	err       error
}

func newNDB(w io.WriteSeeker) (*ndb, error) {
	d := &ndb{w: w, buf: make([]byte, intervalSize), bits: make([]byte, 496), nextBID: 4, nextPage: 1}
	if _, err := w.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seek start: %w", err)
	}
	// Header and reserved space are written at close; the zeros keep the
	// intervals at their offsets.
	if _, err := w.Write(make([]byte, amapFirst)); err != nil {
		return nil, fmt.Errorf("write header space: %w", err)
	}
	d.written = amapFirst
	d.startInterval(0)
	return d, nil
}

// addNode records an NBT entry.
func (d *ndb) addNode(nid uint32, bidData, bidSub uint64, parent uint32) {
	d.nbt = append(d.nbt, nbtEntry{nid: uint64(nid), bidData: bidData, bidSub: bidSub, nidParent: parent})
}
