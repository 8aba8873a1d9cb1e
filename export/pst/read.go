// SPDX-License-Identifier: Apache-2.0

package pst

// A reader for Unicode and ANSI PST files ([MS-PST]): the NDB layer (header,
// node and block B-trees, data and subnode trees, NDB_CRYPT_PERMUTE), the
// LTP layer (heap-on-node, BTH, property and table contexts) and enough of
// the messaging layer to rebuild every mail message as RFC 5322
// (rebuild.go). Every length and offset read from the file is checked, so
// a malformed file gives an error, never a panic or an unbounded
// allocation (FuzzReader).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"
)

// ErrNotPST says the file is not a PST the reader understands.
var ErrNotPST = errors.New("pst: not a PST file")

// ErrMessageTooLarge says a message's data exceeds ReadOptions.MaxMessageBytes.
var ErrMessageTooLarge = errors.New("pst: message larger than the limit")

// ErrNotMail says a PST item is not a mail message (a contact, an
// appointment, a task, a note).
var ErrNotMail = errors.New("pst: not a mail message")

var errCorrupt = errors.New("pst: malformed structure")

// ReadOptions configures a Reader. The zero value is safe.
type ReadOptions struct {
	// MaxMessageBytes bounds the data read for one message (bodies,
	// attachments, embedded messages). Zero means 64 MiB.
	MaxMessageBytes int64
}

// MessageError is a problem with one message: it is skipped, reading goes
// on.
type MessageError struct {
	NID    uint32
	Folder string
	Err    error
}

func (e *MessageError) Error() string {
	return fmt.Sprintf("pst message node %#x in %q: %v", e.NID, e.Folder, e.Err)
}

func (e *MessageError) Unwrap() error { return e.Err }

// Message is one message read from a PST.
type Message struct {
	NID    uint32
	Folder string // folder path below the top of the message store, "/"-separated
	Class  string // PidTagMessageClass
	// Raw is the message rebuilt as RFC 5322 (see rebuild.go).
	Raw []byte
	// Delivered is PidTagMessageDeliveryTime, else PidTagClientSubmitTime;
	// zero when the PST has neither.
	Delivered time.Time
}

type nodeRef struct {
	bidData, bidSub uint64
	parent          uint32
}

type blockRef struct {
	ib uint64
	cb uint16
}

// Reader reads the messages of one PST file in node order. Memory holds
// the node and block B-trees (about 40 bytes per node and per block) and
// one message.
type Reader struct {
	r       io.ReaderAt
	closer  io.Closer
	size    int64
	unicode bool
	crypt   byte
	max     int64
	nbt     map[uint32]nodeRef
	bbt     map[uint64]blockRef
	msgs    []uint32
	i       int
	folders map[uint32]string
	top     uint32 // the IPM subtree folder, left out of folder paths
}

// Open opens the PST file at path.
func Open(path string, opts ReadOptions) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pst: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pst: %w", err)
	}
	r, err := NewReader(f, st.Size(), opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pst %s: %w", path, err)
	}
	r.closer = f
	return r, nil
}

// NewReader reads the PST of size bytes in r: its header and B-trees.
func NewReader(r io.ReaderAt, size int64, opts ReadOptions) (rd *Reader, err error) {
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 64 << 20
	}
	rd = &Reader{r: r, size: size, max: opts.MaxMessageBytes, nbt: map[uint32]nodeRef{}, bbt: map[uint64]blockRef{},
		folders: map[uint32]string{}, top: nidIPMSubtree}
	h := make([]byte, 564)
	if size < 564 {
		return nil, fmt.Errorf("%w: %d bytes", ErrNotPST, size)
	}
	if _, err := r.ReadAt(h, 0); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if string(h[0:4]) != "!BDN" || string(h[8:10]) != "SM" {
		return nil, fmt.Errorf("%w: bad magic", ErrNotPST)
	}
	le := binary.LittleEndian
	var nbtIB, bbtIB uint64
	switch v := le.Uint16(h[0x0A:]); {
	case v == 14 || v == 15:
		nbtIB, bbtIB = uint64(le.Uint32(h[0xBC:])), uint64(le.Uint32(h[0xC4:]))
		rd.crypt = h[0x1CD]
	case v == 23:
		rd.unicode = true
		nbtIB, bbtIB = le.Uint64(h[0xE0:]), le.Uint64(h[0xF0:])
		rd.crypt = h[0x201]
	default:
		return nil, fmt.Errorf("%w: format version %d (14/15 ANSI and 23 Unicode are read)", ErrNotPST, v)
	}
	if rd.crypt > 1 {
		return nil, fmt.Errorf("%w: encryption method %d (high encryption) is not supported", ErrNotPST, rd.crypt)
	}
	err = rd.walkBT(nbtIB, ptypeNBT, 0, map[uint64]bool{}, func(e []byte) error {
		var nid uint32
		var ref nodeRef
		if rd.unicode {
			if len(e) < 32 {
				return errCorrupt
			}
			nid, ref = le.Uint32(e), nodeRef{le.Uint64(e[8:]), le.Uint64(e[16:]), le.Uint32(e[24:])}
		} else {
			if len(e) < 16 {
				return errCorrupt
			}
			nid, ref = le.Uint32(e), nodeRef{uint64(le.Uint32(e[4:])), uint64(le.Uint32(e[8:])), le.Uint32(e[12:])}
		}
		rd.nbt[nid] = ref
		if nid&0x1F == nidTypeNormalMessage {
			rd.msgs = append(rd.msgs, nid)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("node B-tree: %w", err)
	}
	err = rd.walkBT(bbtIB, ptypeBBT, 0, map[uint64]bool{}, func(e []byte) error {
		if rd.unicode {
			if len(e) < 18 {
				return errCorrupt
			}
			rd.bbt[le.Uint64(e)&^1] = blockRef{le.Uint64(e[8:]), le.Uint16(e[16:])}
		} else {
			if len(e) < 10 {
				return errCorrupt
			}
			rd.bbt[uint64(le.Uint32(e))&^1] = blockRef{uint64(le.Uint32(e[4:])), le.Uint16(e[8:])}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("block B-tree: %w", err)
	}
	slices.Sort(rd.msgs)
	if props, err := rd.propsOf(nidMessageStore); err == nil {
		if id := props.bytes(tagIPMSubtreeEntryID); len(id) >= 24 {
			rd.top = le.Uint32(id[20:])
		}
	}
	return rd, nil
}

// Close closes the file if Open opened it.
func (rd *Reader) Close() error {
	if rd.closer != nil {
		return rd.closer.Close()
	}
	return nil
}

// Count returns the number of message nodes (mail or not).
func (rd *Reader) Count() int { return len(rd.msgs) }

// Progress returns the message nodes read and their count.
func (rd *Reader) Progress() (done, total int) { return rd.i, len(rd.msgs) }

// Next returns the next mail message, io.EOF after the last. A message that
// cannot be read, or is not mail, is a *MessageError.
func (rd *Reader) Next() (m *Message, err error) {
	if rd.i >= len(rd.msgs) {
		return nil, io.EOF
	}
	nid := rd.msgs[rd.i]
	rd.i++
	ref := rd.nbt[nid]
	folder := rd.folderPath(ref.parent, 0)
	defer func() {
		if err != nil {
			err = &MessageError{NID: nid, Folder: folder, Err: err}
		}
	}()
	budget := rd.max
	msg, err := rd.readMessage(node{ref.bidData, ref.bidSub}, &budget, 0)
	if err != nil {
		return nil, err
	}
	if !isMail(msg.class) {
		return nil, fmt.Errorf("%w: %s", ErrNotMail, msg.class)
	}
	raw, err := msg.rebuild(0)
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > rd.max {
		return nil, fmt.Errorf("%w: %d bytes rebuilt", ErrMessageTooLarge, len(raw))
	}
	return &Message{NID: nid, Folder: folder, Class: msg.class, Raw: raw, Delivered: msg.delivered()}, nil
}

func isMail(class string) bool {
	if class == "" {
		return true
	}
	for _, p := range []string{"IPM.Note", "IPM.Schedule.Meeting", "IPM.Post", "REPORT.", "IPM.Outlook.Recall", "IPM.Recall"} {
		if len(class) >= len(p) && equalFold(class[:len(p)], p) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 32
		}
		if 'a' <= y && y <= 'z' {
			y -= 32
		}
		if x != y {
			return false
		}
	}
	return true
}

// folderPath names a folder by its display names from below the IPM
// subtree ("Inbox/Projects").
func (rd *Reader) folderPath(nid uint32, depth int) string {
	if p, ok := rd.folders[nid]; ok {
		return p
	}
	if nid == 0 || nid == nidRootFolder || nid == rd.top || depth > 64 {
		return ""
	}
	ref, ok := rd.nbt[nid]
	if !ok {
		return ""
	}
	name := fmt.Sprintf("%#x", nid)
	if props, err := rd.propsOf(nid); err == nil {
		if s := props.str(tagDisplayName); s != "" {
			name = s
		}
	}
	p := name
	if ref.parent != nid {
		if parent := rd.folderPath(ref.parent, depth+1); parent != "" {
			p = parent + "/" + name
		}
	}
	rd.folders[nid] = p
	return p
}

// walkBT calls fn for every leaf entry of the B-tree whose root page is at
// ib.
func (rd *Reader) walkBT(ib uint64, ptype byte, depth int, seen map[uint64]bool, fn func([]byte) error) error {
	if depth > 16 {
		return fmt.Errorf("%w: B-tree deeper than 16", errCorrupt)
	}
	if seen[ib] {
		return fmt.Errorf("%w: B-tree page %#x reached twice", errCorrupt, ib)
	}
	seen[ib] = true
	p := make([]byte, pageSize)
	if int64(ib) < 0 || int64(ib)+pageSize > rd.size {
		return fmt.Errorf("%w: page at %#x beyond the end", errCorrupt, ib)
	}
	if _, err := rd.r.ReadAt(p, int64(ib)); err != nil {
		return fmt.Errorf("read page at %#x: %w", ib, err)
	}
	var cEnt, cbEnt, level, pt int
	area := 488
	if rd.unicode {
		cEnt, cbEnt, level, pt = int(p[488]), int(p[490]), int(p[491]), int(p[496])
	} else {
		area = 496
		cEnt, cbEnt, level, pt = int(p[496]), int(p[498]), int(p[499]), int(p[500])
	}
	if pt != int(ptype) || cbEnt == 0 || cEnt*cbEnt > area {
		return fmt.Errorf("%w: B-tree page at %#x (type %#x, %d entries of %d bytes)", errCorrupt, ib, pt, cEnt, cbEnt)
	}
	le := binary.LittleEndian
	for i := range cEnt {
		e := p[i*cbEnt : (i+1)*cbEnt]
		if level == 0 {
			if err := fn(e); err != nil {
				return err
			}
			continue
		}
		var child uint64
		if rd.unicode {
			if len(e) < 24 {
				return errCorrupt
			}
			child = le.Uint64(e[16:])
		} else {
			if len(e) < 12 {
				return errCorrupt
			}
			child = uint64(le.Uint32(e[8:]))
		}
		if err := rd.walkBT(child, ptype, depth+1, seen, fn); err != nil {
			return err
		}
	}
	return nil
}

// block reads one block's data, decoded.
func (rd *Reader) block(bid uint64) ([]byte, error) {
	b, ok := rd.bbt[bid&^1]
	if !ok {
		return nil, fmt.Errorf("%w: no block %#x", errCorrupt, bid)
	}
	if int64(b.ib) < 0 || int64(b.ib)+int64(b.cb) > rd.size || b.cb > maxBlockSize {
		return nil, fmt.Errorf("%w: block %#x at %#x+%d outside the file", errCorrupt, bid, b.ib, b.cb)
	}
	data := make([]byte, b.cb)
	if _, err := rd.r.ReadAt(data, int64(b.ib)); err != nil {
		return nil, fmt.Errorf("read block %#x: %w", bid, err)
	}
	if bid&2 == 0 && rd.crypt == 1 {
		for i, c := range data {
			data[i] = permuteDecode[c]
		}
	}
	return data, nil
}

// dataBlocks returns the data blocks of the data tree rooted at bid,
// charging their size to budget.
func (rd *Reader) dataBlocks(bid uint64, budget *int64, depth int) ([][]byte, error) {
	if bid == 0 {
		return nil, nil
	}
	data, err := rd.block(bid)
	if err != nil {
		return nil, err
	}
	if bid&2 == 0 {
		*budget -= int64(len(data))
		if *budget < 0 {
			return nil, ErrMessageTooLarge
		}
		return [][]byte{data}, nil
	}
	if depth > 2 || len(data) < 8 || data[0] != 1 {
		return nil, fmt.Errorf("%w: data tree block %#x", errCorrupt, bid)
	}
	n := int(binary.LittleEndian.Uint16(data[2:]))
	sz := 4
	if rd.unicode {
		sz = 8
	}
	if 8+n*sz > len(data) {
		return nil, fmt.Errorf("%w: data tree block %#x has %d entries", errCorrupt, bid, n)
	}
	var out [][]byte
	for i := range n {
		child := rd.bid(data[8+i*sz:])
		if data[1] == 1 && child&2 != 0 {
			return nil, fmt.Errorf("%w: XBLOCK %#x points to an internal block", errCorrupt, bid)
		}
		bs, err := rd.dataBlocks(child, budget, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	return out, nil
}

func (rd *Reader) bid(b []byte) uint64 {
	if rd.unicode {
		return binary.LittleEndian.Uint64(b)
	}
	return uint64(binary.LittleEndian.Uint32(b))
}

type node struct{ bidData, bidSub uint64 }

// subnodes reads the subnode tree rooted at bid.
func (rd *Reader) subnodes(bid uint64, out map[uint32]node, depth int, seen map[uint64]bool) error {
	if bid == 0 {
		return nil
	}
	if seen[bid] {
		return fmt.Errorf("%w: subnode block %#x reached twice", errCorrupt, bid)
	}
	seen[bid] = true
	if depth > 4 || len(out) > 1<<20 {
		return fmt.Errorf("%w: subnode tree too deep or too large", errCorrupt)
	}
	data, err := rd.block(bid)
	if err != nil {
		return err
	}
	hdr, sz := 4, 4
	if rd.unicode {
		hdr, sz = 8, 8
	}
	if len(data) < hdr || data[0] != 2 {
		return fmt.Errorf("%w: subnode block %#x", errCorrupt, bid)
	}
	n := int(binary.LittleEndian.Uint16(data[2:]))
	ent := 3 * sz
	if data[1] == 1 {
		ent = 2 * sz
	}
	if hdr+n*ent > len(data) {
		return fmt.Errorf("%w: subnode block %#x has %d entries", errCorrupt, bid, n)
	}
	for i := range n {
		e := data[hdr+i*ent:]
		nid := binary.LittleEndian.Uint32(e)
		if data[1] == 1 {
			if err := rd.subnodes(rd.bid(e[sz:]), out, depth+1, seen); err != nil {
				return err
			}
			continue
		}
		out[nid] = node{rd.bid(e[sz:]), rd.bid(e[2*sz:])}
	}
	return nil
}

// heap is a heap-on-node with the node's subnodes.
type rheap struct {
	rd     *Reader
	blocks [][]byte
	subs   map[uint32]node
	budget *int64
}

func (rd *Reader) heap(n node, sig byte, budget *int64) (*rheap, uint32, error) {
	blocks, err := rd.dataBlocks(n.bidData, budget, 0)
	if err != nil {
		return nil, 0, err
	}
	if len(blocks) == 0 || len(blocks[0]) < 12 || blocks[0][2] != hnSig || blocks[0][3] != sig {
		return nil, 0, fmt.Errorf("%w: not a heap of type %#x", errCorrupt, sig)
	}
	h := &rheap{rd: rd, blocks: blocks, subs: map[uint32]node{}, budget: budget}
	if err := rd.subnodes(n.bidSub, h.subs, 0, map[uint64]bool{}); err != nil {
		return nil, 0, err
	}
	return h, binary.LittleEndian.Uint32(blocks[0][4:]), nil
}

// get returns a heap allocation.
func (h *rheap) get(hid uint32) ([]byte, error) {
	if hid&0x1F != 0 {
		return nil, fmt.Errorf("%w: %#x is not a heap id", errCorrupt, hid)
	}
	idx, blk := int(hid>>5)&0x7FF, int(hid>>16)
	if blk >= len(h.blocks) || idx == 0 {
		return nil, fmt.Errorf("%w: heap id %#x", errCorrupt, hid)
	}
	b := h.blocks[blk]
	if len(b) < 2 {
		return nil, errCorrupt
	}
	m := int(binary.LittleEndian.Uint16(b))
	if m+4 > len(b) {
		return nil, fmt.Errorf("%w: heap page map at %d", errCorrupt, m)
	}
	n := int(binary.LittleEndian.Uint16(b[m:]))
	if idx > n || m+4+2*(idx+1) > len(b) {
		return nil, fmt.Errorf("%w: heap id %#x beyond %d allocations", errCorrupt, hid, n)
	}
	s, e := int(binary.LittleEndian.Uint16(b[m+4+2*(idx-1):])), int(binary.LittleEndian.Uint16(b[m+4+2*idx:]))
	if s > e || e > len(b) {
		return nil, fmt.Errorf("%w: heap allocation %d..%d", errCorrupt, s, e)
	}
	return b[s:e], nil
}

// hnid resolves a heap id or, for a subnode id, the subnode's data.
func (h *rheap) hnid(v uint32) ([]byte, error) {
	if v == 0 {
		return nil, nil
	}
	if v&0x1F == 0 {
		return h.get(v)
	}
	sn, ok := h.subs[v]
	if !ok {
		return nil, fmt.Errorf("%w: no subnode %#x", errCorrupt, v)
	}
	blocks, err := h.rd.dataBlocks(sn.bidData, h.budget, 0)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, b := range blocks {
		out = append(out, b...)
	}
	return out, nil
}

// bth returns the leaf records (key, data) of the BTH whose header is at
// hid.
func (h *rheap) bth(hid uint32, wantKey, wantEnt int) ([][2][]byte, error) {
	hdr, err := h.get(hid)
	if err != nil {
		return nil, err
	}
	if len(hdr) < 8 || hdr[0] != sigBTH || int(hdr[1]) != wantKey || int(hdr[2]) != wantEnt {
		return nil, fmt.Errorf("%w: BTH header", errCorrupt)
	}
	var out [][2][]byte
	seen := map[uint32]bool{}
	var walk func(hid uint32, level int) error
	walk = func(hid uint32, level int) error {
		if hid == 0 {
			return nil
		}
		if seen[hid] {
			return fmt.Errorf("%w: BTH record %#x reached twice", errCorrupt, hid)
		}
		seen[hid] = true
		if level > 8 {
			return fmt.Errorf("%w: BTH deeper than 8", errCorrupt)
		}
		d, err := h.get(hid)
		if err != nil {
			return err
		}
		if level > 0 {
			for i := 0; i+wantKey+4 <= len(d); i += wantKey + 4 {
				if err := walk(binary.LittleEndian.Uint32(d[i+wantKey:]), level-1); err != nil {
					return err
				}
			}
			return nil
		}
		for i := 0; i+wantKey+wantEnt <= len(d); i += wantKey + wantEnt {
			out = append(out, [2][]byte{d[i : i+wantKey], d[i+wantKey : i+wantKey+wantEnt]})
		}
		return nil
	}
	return out, walk(binary.LittleEndian.Uint32(hdr[4:]), int(hdr[3]))
}

// props are the properties of an object, by tag (id << 16 | type).
type rprops struct {
	m        map[uint32][]byte
	codepage int
}

// value resolves one property value of type typ stored as v (inline, heap
// or subnode).
func (h *rheap) value(typ uint16, v []byte) ([]byte, error) {
	switch typ {
	case ptInt16, ptInt32, ptFloat, ptErr, ptBool:
		return v, nil
	}
	return h.hnid(binary.LittleEndian.Uint32(v))
}

func (rd *Reader) propsOf(nid uint32) (*rprops, error) {
	ref, ok := rd.nbt[nid]
	if !ok {
		return nil, fmt.Errorf("%w: no node %#x", errCorrupt, nid)
	}
	budget := rd.max
	p, _, err := rd.pc(node{ref.bidData, ref.bidSub}, &budget)
	return p, err
}

// pc reads a property context.
func (rd *Reader) pc(n node, budget *int64) (*rprops, *rheap, error) {
	h, root, err := rd.heap(n, sigPC, budget)
	if err != nil {
		return nil, nil, err
	}
	recs, err := h.bth(root, 2, 6)
	if err != nil {
		return nil, nil, err
	}
	p := &rprops{m: map[uint32][]byte{}}
	for _, r := range recs {
		id, typ := binary.LittleEndian.Uint16(r[0]), binary.LittleEndian.Uint16(r[1])
		v, err := h.value(typ, r[1][2:6])
		if err != nil {
			if errors.Is(err, ErrMessageTooLarge) {
				return nil, nil, err
			}
			continue // one unreadable property does not lose the message
		}
		p.m[uint32(id)<<16|uint32(typ)] = v
	}
	p.codepage = int(p.int32(tagInternetCodepage))
	if cp := p.int32(0x3FFD0003); cp != 0 { // PidTagMessageCodepage
		p.codepage = int(cp)
	}
	return p, h, nil
}

// table reads a table context: one property map per row.
func (rd *Reader) table(n node, budget *int64, codepage int) ([]*rprops, error) {
	h, root, err := rd.heap(n, sigTC, budget)
	if err != nil {
		return nil, err
	}
	info, err := h.get(root)
	if err != nil {
		return nil, err
	}
	if len(info) < 22 || info[0] != sigTC {
		return nil, fmt.Errorf("%w: TCINFO", errCorrupt)
	}
	le := binary.LittleEndian
	nCols := int(info[1])
	ceb, rowSize := int(le.Uint16(info[6:])), int(le.Uint16(info[8:]))
	if len(info) < 22+8*nCols || rowSize == 0 || ceb+(nCols+7)/8 > rowSize {
		return nil, fmt.Errorf("%w: TCINFO columns", errCorrupt)
	}
	type col struct {
		tag    uint32
		ib, cb int
		bit    int
		typ    uint16
	}
	cols := make([]col, nCols)
	for i := range cols {
		d := info[22+8*i:]
		c := col{tag: le.Uint32(d), ib: int(le.Uint16(d[4:])), cb: int(d[6]), bit: int(d[7])}
		c.typ = uint16(c.tag)
		if c.ib+c.cb > rowSize || c.bit/8 >= (nCols+7)/8 {
			return nil, fmt.Errorf("%w: column %#x", errCorrupt, c.tag)
		}
		cols[i] = c
	}
	hnidRows := le.Uint32(info[14:])
	var blocks [][]byte
	if hnidRows&0x1F == 0 {
		if hnidRows != 0 {
			b, err := h.get(hnidRows)
			if err != nil {
				return nil, err
			}
			blocks = [][]byte{b}
		}
	} else {
		sn, ok := h.subs[hnidRows]
		if !ok {
			return nil, fmt.Errorf("%w: no row subnode %#x", errCorrupt, hnidRows)
		}
		if blocks, err = rd.dataBlocks(sn.bidData, budget, 0); err != nil {
			return nil, err
		}
	}
	var rows []*rprops
	for _, b := range blocks {
		for off := 0; off+rowSize <= len(b); off += rowSize {
			row := b[off : off+rowSize]
			p := &rprops{m: map[uint32][]byte{}, codepage: codepage}
			for _, c := range cols {
				if row[ceb+c.bit/8]&(0x80>>(c.bit%8)) == 0 {
					continue
				}
				v := row[c.ib : c.ib+c.cb]
				switch c.typ {
				case ptInt16, ptInt32, ptFloat, ptErr, ptBool, ptInt64, ptTime, ptDouble, ptCY, ptAppTime:
				default:
					if len(v) < 4 {
						continue
					}
					r, err := h.hnid(le.Uint32(v))
					if err != nil {
						if errors.Is(err, ErrMessageTooLarge) {
							return nil, err
						}
						continue
					}
					v = r
				}
				p.m[c.tag] = v
			}
			rows = append(rows, p)
		}
	}
	return rows, nil
}

func (p *rprops) bytes(tag uint32) []byte { return p.m[tag] }

func (p *rprops) int32(tag uint32) int32 {
	if v := p.m[tag]; len(v) >= 4 {
		return int32(binary.LittleEndian.Uint32(v))
	}
	return 0
}

// str returns a string property, given with type PtypString; the
// PtypString8 variant is found and decoded from the code page too.
func (p *rprops) str(tag uint32) string {
	if v, ok := p.m[tag&^0xFFFF|ptString]; ok {
		return decodeUTF16(v)
	}
	if v, ok := p.m[tag&^0xFFFF|ptString8]; ok {
		return decode8(v, p.codepage)
	}
	return ""
}

func (p *rprops) time(tag uint32) time.Time {
	v := p.m[tag]
	if len(v) < 8 {
		return time.Time{}
	}
	ft := int64(binary.LittleEndian.Uint64(v))
	if ft <= 0 {
		return time.Time{}
	}
	// FILETIME: 100 ns intervals since 1601-01-01 UTC.
	const epochDiff = 116444736000000000
	return time.Unix(0, 0).UTC().Add(time.Duration(ft-epochDiff) * 100)
}

func decodeUTF16(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	return string(utf16.Decode(u))
}

func decode8(b []byte, codepage int) string {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	if codepage == 65001 || codepage == 20127 {
		return string(b)
	}
	s, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil {
		return string(b)
	}
	return string(s)
}
