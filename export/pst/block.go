// SPDX-License-Identifier: Apache-2.0

package pst

// Blocks, data trees and subnode trees ([MS-PST] 2.2.2.8).

import (
	"encoding/binary"
	"fmt"
	"slices"
)

func blockSize(cb int) int { return (cb + blockTrailer + 63) / 64 * 64 }

// writeBlock appends one block (2.2.2.8) holding data and returns its BID.
func (d *ndb) writeBlock(data []byte, internal bool) (uint64, error) {
	if len(data) > maxBlockData {
		return 0, fmt.Errorf("block of %d bytes: %w", len(data), ErrTooLarge)
	}
	bid := d.nextBID
	if internal {
		bid |= 2
	}
	d.nextBID += 4
	ib, b, err := d.alloc(blockSize(len(data)), 64)
	if err != nil {
		return 0, err
	}
	copy(b, data)
	t := b[len(b)-blockTrailer:]
	binary.LittleEndian.PutUint16(t[0:], uint16(len(data)))
	binary.LittleEndian.PutUint16(t[2:], sig(ib, bid))
	binary.LittleEndian.PutUint32(t[4:], crc(data))
	binary.LittleEndian.PutUint64(t[8:], bid)
	d.bbt = append(d.bbt, bbtEntry{bid: bid, ib: ib, cb: uint16(len(data))})
	if !internal {
		d.dataBytes += int64(len(data))
	}
	return bid, nil
}

// writeData stores node data of any size: one block, or a data tree of
// XBLOCK/XXBLOCK (2.2.2.8.3.2) over 8176-byte blocks. Empty data gives BID 0.
func (d *ndb) writeData(data []byte) (uint64, error) {
	if len(data) == 0 {
		return 0, nil
	}
	if len(data) <= maxBlockData {
		return d.writeBlock(data, false)
	}
	var chunks [][]byte
	for len(data) > 0 {
		n := min(len(data), maxBlockData)
		chunks = append(chunks, data[:n])
		data = data[n:]
	}
	return d.writeChunks(chunks)
}

// writeChunks stores node data made of the given blocks, in order (used for
// heaps and table row matrices whose blocks have meaningful boundaries).
func (d *ndb) writeChunks(chunks [][]byte) (uint64, error) {
	if len(chunks) == 1 {
		return d.writeBlock(chunks[0], false)
	}
	if len(chunks) > xblockMaxBIDs*xblockMaxBIDs {
		return 0, fmt.Errorf("data tree of %d blocks: %w", len(chunks), ErrTooLarge)
	}
	var total uint64
	bids := make([]uint64, 0, len(chunks))
	sizes := make([]uint64, 0, len(chunks))
	for _, c := range chunks {
		bid, err := d.writeBlock(c, false)
		if err != nil {
			return 0, err
		}
		bids = append(bids, bid)
		sizes = append(sizes, uint64(len(c)))
		total += uint64(len(c))
	}
	if total > 0xFFFFFFFF {
		return 0, fmt.Errorf("node data of %d bytes: %w", total, ErrTooLarge)
	}
	if len(bids) <= xblockMaxBIDs {
		return d.writeXBlock(1, bids, total)
	}
	var xbids []uint64
	for len(bids) > 0 {
		n := min(len(bids), xblockMaxBIDs)
		var sub uint64
		for _, s := range sizes[:n] {
			sub += s
		}
		x, err := d.writeXBlock(1, bids[:n], sub)
		if err != nil {
			return 0, err
		}
		xbids = append(xbids, x)
		bids, sizes = bids[n:], sizes[n:]
	}
	return d.writeXBlock(2, xbids, total)
}

func (d *ndb) writeXBlock(level byte, bids []uint64, total uint64) (uint64, error) {
	b := make([]byte, 8+8*len(bids))
	b[0] = 0x01
	b[1] = level
	binary.LittleEndian.PutUint16(b[2:], uint16(len(bids)))
	binary.LittleEndian.PutUint32(b[4:], uint32(total))
	for i, bid := range bids {
		binary.LittleEndian.PutUint64(b[8+8*i:], bid)
	}
	return d.writeBlock(b, true)
}

// subnode is one entry of a node's subnode B-tree (2.2.2.8.3.3).
type subnode struct {
	nid     uint32
	bidData uint64
	bidSub  uint64
}

// writeSubnodes writes an SLBLOCK (or SIBLOCK over SLBLOCKs) and returns its
// BID, or 0 for no subnodes.
func (d *ndb) writeSubnodes(subs []subnode) (uint64, error) {
	if len(subs) == 0 {
		return 0, nil
	}
	slices.SortFunc(subs, func(a, b subnode) int {
		switch {
		case a.nid < b.nid:
			return -1
		case a.nid > b.nid:
			return 1
		}
		return 0
	})
	writeSL := func(s []subnode) (uint64, error) {
		b := make([]byte, 8+24*len(s))
		b[0] = 0x02
		binary.LittleEndian.PutUint16(b[2:], uint16(len(s)))
		for i, e := range s {
			o := 8 + 24*i
			binary.LittleEndian.PutUint64(b[o:], uint64(e.nid))
			binary.LittleEndian.PutUint64(b[o+8:], e.bidData)
			binary.LittleEndian.PutUint64(b[o+16:], e.bidSub)
		}
		return d.writeBlock(b, true)
	}
	if len(subs) <= slblockMaxEnts {
		return writeSL(subs)
	}
	type sie struct {
		nid uint32
		bid uint64
	}
	var ents []sie
	for len(subs) > 0 {
		n := min(len(subs), slblockMaxEnts)
		bid, err := writeSL(subs[:n])
		if err != nil {
			return 0, err
		}
		ents = append(ents, sie{subs[0].nid, bid})
		subs = subs[n:]
	}
	if len(ents) > siblockMaxEnts {
		return 0, fmt.Errorf("%d subnodes: %w", len(ents)*slblockMaxEnts, ErrTooLarge)
	}
	b := make([]byte, 8+16*len(ents))
	b[0] = 0x02
	b[1] = 1
	binary.LittleEndian.PutUint16(b[2:], uint16(len(ents)))
	for i, e := range ents {
		binary.LittleEndian.PutUint64(b[8+16*i:], uint64(e.nid))
		binary.LittleEndian.PutUint64(b[8+16*i+8:], e.bid)
	}
	return d.writeBlock(b, true)
}
