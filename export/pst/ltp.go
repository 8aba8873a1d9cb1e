// SPDX-License-Identifier: Apache-2.0

package pst

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

// LTP layer ([MS-PST] 2.3): heap-on-node, BTH, property context, table
// context. Builders work in memory on one node at a time and hand the
// finished heap pages to the NDB writer.

const (
	maxHeapAlloc = 3580 // largest heap allocation (2.3.1.1)
	hnSig        = 0xEC
	sigTC        = 0x7C
	sigBTH       = 0xB5
	sigPC        = 0xBC
	nidTypeLTP   = 0x1F
)

// Property types ([MS-OXCDATA] 2.11.1).
const (
	ptInt16   = 0x0002
	ptInt32   = 0x0003
	ptFloat   = 0x0004
	ptDouble  = 0x0005
	ptCY      = 0x0006
	ptAppTime = 0x0007
	ptErr     = 0x000A
	ptBool    = 0x000B
	ptObject  = 0x000D
	ptInt64   = 0x0014
	ptString8 = 0x001E
	ptString  = 0x001F
	ptTime    = 0x0040
	ptGUID    = 0x0048
	ptBinary  = 0x0102
)

// heap is a heap-on-node (2.3.1) under construction.
type heap struct {
	clientSig byte
	userRoot  uint32
	pages     []*hnPage
}

type hnPage struct {
	data  []byte // allocations, back to back
	start []int  // start offset of each allocation within data
}

func hnHeaderSize(page int) int {
	switch {
	case page == 0:
		return 12 // HNHDR
	case page >= 8 && (page-8)%128 == 0:
		return 66 // HNBITMAPHDR
	default:
		return 2 // HNPAGEHDR
	}
}

func (p *hnPage) size(page int) int {
	n := hnHeaderSize(page) + len(p.data)
	n += n & 1
	return n + 4 + 2*(len(p.start)+1)
}

// alloc stores v in the heap and returns its HID.
func (h *heap) alloc(v []byte) (uint32, error) {
	if len(v) > maxHeapAlloc {
		return 0, fmt.Errorf("heap allocation of %d bytes: %w", len(v), ErrTooLarge)
	}
	fits := func(i int) bool {
		p := h.pages[i]
		return len(p.start) < 2047 && p.size(i)+len(v)+2+1 <= maxBlockData
	}
	if len(h.pages) == 0 || !fits(len(h.pages)-1) {
		if len(h.pages) >= 0xFFFF {
			return 0, fmt.Errorf("heap of %d pages: %w", len(h.pages), ErrTooLarge)
		}
		h.pages = append(h.pages, &hnPage{})
	}
	i := len(h.pages) - 1
	p := h.pages[i]
	p.start = append(p.start, len(p.data))
	p.data = append(p.data, v...)
	return uint32(i)<<16 | uint32(len(p.start))<<5, nil
}

// fillLevel maps free bytes to the 4-bit fill level of 2.3.1.2.
func fillLevel(free int) byte {
	limits := []int{3584, 2560, 2048, 1792, 1536, 1280, 1024, 768, 512, 256, 128, 64, 32, 16, 8}
	for i, l := range limits {
		if free >= l {
			return byte(i)
		}
	}
	return 0xF
}

// chunks serialises the heap, one block per page.
func (h *heap) chunks() [][]byte {
	if len(h.pages) == 0 {
		h.pages = append(h.pages, &hnPage{})
	}
	levels := make([]byte, len(h.pages))
	for i, p := range h.pages {
		levels[i] = fillLevel(maxBlockData - p.size(i))
	}
	nibbles := func(dst []byte, from int) {
		for j := 0; j < 2*len(dst) && from+j < len(levels); j++ {
			dst[j/2] |= levels[from+j] << (4 * (j % 2))
		}
	}
	out := make([][]byte, len(h.pages))
	for i, p := range h.pages {
		hs := hnHeaderSize(i)
		b := make([]byte, hs, p.size(i))
		b = append(b, p.data...)
		if len(b)&1 == 1 {
			b = append(b, 0)
		}
		ibHnpm := len(b)
		binary.LittleEndian.PutUint16(b[0:], uint16(ibHnpm))
		switch hs {
		case 12:
			b[2] = hnSig
			b[3] = h.clientSig
			binary.LittleEndian.PutUint32(b[4:], h.userRoot)
			nibbles(b[8:12], 0)
		case 66:
			nibbles(b[2:66], i)
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(len(p.start)))
		b = binary.LittleEndian.AppendUint16(b, 0)
		for _, s := range p.start {
			b = binary.LittleEndian.AppendUint16(b, uint16(hs+s))
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(hs+len(p.data)))
		out[i] = b
	}
	return out
}

// bth builds a BTH (2.3.2) over recs, which must be sorted by key and each
// cbKey+cbEnt bytes long, and returns the HID of its header.
func (h *heap) bth(cbKey, cbEnt int, recs [][]byte) (uint32, error) {
	var root uint32
	levels := 0
	if len(recs) > 0 {
		type ent struct {
			key []byte
			hid uint32
		}
		level := recs
		for {
			per := maxHeapAlloc / len(level[0])
			var next []ent
			for s := 0; s < len(level); s += per {
				e := min(len(level), s+per)
				hid, err := h.alloc(bytes.Join(level[s:e], nil))
				if err != nil {
					return 0, err
				}
				next = append(next, ent{level[s][:cbKey], hid})
			}
			if len(next) == 1 {
				root = next[0].hid
				break
			}
			levels++
			level = make([][]byte, len(next))
			for i, n := range next {
				level[i] = binary.LittleEndian.AppendUint32(slices.Clone(n.key), n.hid)
			}
		}
	}
	hdr := []byte{sigBTH, byte(cbKey), byte(cbEnt), byte(levels), 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(hdr[4:], root)
	return h.alloc(hdr)
}

// prop is one property: tag (id<<16 | type) and its value in stored form
// (little-endian fixed-size values, UTF-16LE strings, raw binary).
type prop struct {
	tag uint32
	val []byte
}

func (p prop) ptype() uint16 { return uint16(p.tag) }

// subAlloc collects the subnodes of one node.
type subAlloc struct {
	d        *ndb
	next     uint32
	subs     []subnode
	dry      bool  // count instead of writing (for size computations)
	dryBytes int64 // bytes a dry run would have written
}

func newSubAlloc(d *ndb) *subAlloc { return &subAlloc{d: d, next: 1} }

// nid returns a fresh subnode NID of the given type.
func (s *subAlloc) nid(typ uint32) uint32 {
	n := s.next<<5 | typ
	s.next++
	return n
}

// storeLarge writes v as a subnode and returns the subnode NID.
func (s *subAlloc) storeLarge(v []byte) (uint32, error) {
	if s.dry {
		s.dryBytes += int64(len(v))
		return s.nid(nidTypeLTP), nil
	}
	bid, err := s.d.writeData(v)
	if err != nil {
		return 0, err
	}
	nid := s.nid(nidTypeLTP)
	s.subs = append(s.subs, subnode{nid: nid, bidData: bid})
	return nid, nil
}

// hnid stores a variable-size value in the heap or, when too large, in a
// subnode, and returns the HNID.
func (h *heap) hnid(v []byte, subs *subAlloc) (uint32, error) {
	if len(v) <= maxHeapAlloc {
		return h.alloc(v)
	}
	return subs.storeLarge(v)
}

func fixedSize(t uint16) int {
	switch t {
	case ptBool:
		return 1
	case ptInt16:
		return 2
	case ptInt32, ptFloat, ptErr:
		return 4
	case ptDouble, ptCY, ptAppTime, ptInt64, ptTime:
		return 8
	}
	return 0 // variable size: stored through an HNID
}

// buildPC builds a property context (2.3.3) and returns its heap pages.
func buildPC(props []prop, subs *subAlloc) ([][]byte, error) {
	h := &heap{clientSig: sigPC}
	props = slices.Clone(props)
	slices.SortStableFunc(props, func(a, b prop) int { return int(a.tag>>16) - int(b.tag>>16) })
	recs := make([][]byte, 0, len(props))
	for i, p := range props {
		if i > 0 && props[i-1].tag>>16 == p.tag>>16 {
			return nil, fmt.Errorf("duplicate property %#x", p.tag)
		}
		r := make([]byte, 8)
		binary.LittleEndian.PutUint16(r[0:], uint16(p.tag>>16))
		binary.LittleEndian.PutUint16(r[2:], p.ptype())
		switch n := fixedSize(p.ptype()); {
		case n > 0 && n <= 4:
			copy(r[4:4+n], p.val)
		default:
			hnid, err := h.hnid(p.val, subs)
			if err != nil {
				return nil, fmt.Errorf("property %#x: %w", p.tag, err)
			}
			binary.LittleEndian.PutUint32(r[4:], hnid)
		}
		recs = append(recs, r)
	}
	root, err := h.bth(2, 6, recs)
	if err != nil {
		return nil, err
	}
	h.userRoot = root
	return h.chunks(), nil
}

// tcRow is one table row: its row ID and cell values keyed by tag.
type tcRow struct {
	id   uint32
	vals []prop
}

const (
	tagRowID  = 0x67F20003
	tagRowVer = 0x67F30003
)

type tcCol struct {
	tag  uint32
	ib   int
	cb   int
	iBit int
}

// tcLayout assigns cell offsets to columns (2.3.4.1): the row ID at 0 and
// the row version at 4, then 8-byte cells, 4-byte cells (HNIDs included),
// 2-byte cells, 1-byte cells, and finally the cell existence bitmap.
func tcLayout(tags []uint32) (cols []tcCol, rgib [4]int) {
	cell := func(t uint32) int {
		if n := fixedSize(uint16(t)); n > 0 {
			return n
		}
		return 4
	}
	cols = []tcCol{{tag: tagRowID, cb: 4}, {tag: tagRowVer, cb: 4}}
	seen := map[uint32]bool{tagRowID: true, tagRowVer: true}
	for _, want := range []int{8, 4, 2, 1} {
		for _, t := range tags {
			if !seen[t] && cell(t) == want {
				seen[t] = true
				cols = append(cols, tcCol{tag: t, cb: want})
			}
		}
	}
	off := 0
	for i := range cols {
		cols[i].ib = off
		cols[i].iBit = i
		off += cols[i].cb
		switch {
		case cols[i].cb >= 4:
			rgib[0] = off
		case cols[i].cb == 2:
			rgib[1] = off
		default:
			rgib[2] = off
		}
	}
	rgib[1] = max(rgib[1], rgib[0])
	rgib[2] = max(rgib[2], rgib[1])
	rgib[3] = rgib[2] + (len(cols)+7)/8
	return cols, rgib
}

// buildTC builds a table context (2.3.4) with the given columns and rows and
// returns its heap pages. Rows must be sorted by row ID.
func buildTC(tags []uint32, rows []tcRow, subs *subAlloc) ([][]byte, error) {
	h := &heap{clientSig: sigTC}
	cols, rgib := tcLayout(tags)
	rowSize := rgib[3]
	byTag := make(map[uint32]tcCol, len(cols))
	for _, c := range cols {
		byTag[c.tag] = c
	}
	matrix := make([]byte, 0, len(rows)*rowSize)
	rowsPerBlock := maxBlockData / rowSize
	var chunks [][]byte
	idx := make([][]byte, 0, len(rows))
	for ri, r := range rows {
		row := make([]byte, rowSize)
		binary.LittleEndian.PutUint32(row[0:], r.id)
		setBit := func(c tcCol) { row[rgib[2]+c.iBit/8] |= 0x80 >> (c.iBit % 8) }
		setBit(byTag[tagRowID])
		setBit(byTag[tagRowVer])
		for _, v := range r.vals {
			c, ok := byTag[v.tag]
			if !ok || v.tag == tagRowID || v.tag == tagRowVer {
				continue
			}
			if n := fixedSize(v.ptype()); n > 0 {
				copy(row[c.ib:c.ib+n], v.val)
			} else {
				hnid, err := h.hnid(v.val, subs)
				if err != nil {
					return nil, fmt.Errorf("cell %#x: %w", v.tag, err)
				}
				binary.LittleEndian.PutUint32(row[c.ib:], hnid)
			}
			setBit(c)
		}
		if ri > 0 && ri%rowsPerBlock == 0 {
			// rows never span blocks; every block but the last is full size
			matrix = append(matrix, make([]byte, maxBlockData-len(matrix))...)
			chunks = append(chunks, matrix)
			matrix = nil
		}
		matrix = append(matrix, row...)
		k := binary.LittleEndian.AppendUint32(nil, r.id)
		idx = append(idx, binary.LittleEndian.AppendUint32(k, uint32(ri)))
	}
	chunks = append(chunks, matrix)
	slices.SortFunc(idx, func(a, b []byte) int {
		return int(int64(binary.LittleEndian.Uint32(a)) - int64(binary.LittleEndian.Uint32(b)))
	})
	rowIndex, err := h.bth(4, 4, idx)
	if err != nil {
		return nil, err
	}
	var hnidRows uint32
	switch {
	case len(rows) == 0:
	case len(chunks) == 1 && len(chunks[0]) <= maxHeapAlloc:
		if hnidRows, err = h.alloc(chunks[0]); err != nil {
			return nil, err
		}
	default:
		bid, err := subs.d.writeChunks(chunks)
		if err != nil {
			return nil, err
		}
		hnidRows = subs.nid(nidTypeLTP)
		subs.subs = append(subs.subs, subnode{nid: hnidRows, bidData: bid})
	}
	sorted := slices.Clone(cols)
	slices.SortFunc(sorted, func(a, b tcCol) int {
		return int(int64(a.tag) - int64(b.tag))
	})
	info := make([]byte, 22+8*len(sorted))
	info[0] = sigTC
	info[1] = byte(len(sorted))
	for i, v := range rgib {
		binary.LittleEndian.PutUint16(info[2+2*i:], uint16(v))
	}
	binary.LittleEndian.PutUint32(info[10:], rowIndex)
	binary.LittleEndian.PutUint32(info[14:], hnidRows)
	for i, c := range sorted {
		o := 22 + 8*i
		binary.LittleEndian.PutUint32(info[o:], c.tag)
		binary.LittleEndian.PutUint16(info[o+4:], uint16(c.ib))
		info[o+6] = byte(c.cb)
		info[o+7] = byte(c.iBit)
	}
	if h.userRoot, err = h.alloc(info); err != nil {
		return nil, err
	}
	return h.chunks(), nil
}
