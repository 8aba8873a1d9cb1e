// SPDX-License-Identifier: Apache-2.0

package pst

// A structural checker for Unicode PST files, independent of the writer's
// code paths: it re-reads the file and verifies CRCs, signatures, B-tree
// order, block trailers, the AMap against the actual allocations, the map
// pages, the mandatory node set and, for unencoded files, message sizes and
// folder counts. readpst and pffexport accept many broken files silently, so
// every test runs this on what it writes.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

type chkBlock struct {
	ib uint64
	cb uint16
}

type chkNode struct {
	nid, bidData, bidSub uint64
	parent               uint32
}

type checker struct {
	r      io.ReaderAt
	size   int64
	errs   []error
	crypt  byte
	bbt    map[uint64]chkBlock
	nbt    []chkNode
	alloc  [][]byte // computed AMap bits per interval
	pages  map[uint64]bool
	maxBID uint64
	maxPID uint64

	// decode undoes NDB_CRYPT_PERMUTE for content checks of Outlook files
	// (see permuteTable); sizes is false for files whose PidTagMessageSize
	// follows Outlook's definition rather than ours.
	decode  *[256]byte
	lenient bool

	// results for tests
	messages     int
	folderCounts map[uint32]int // folder NID -> PidTagContentCount
	tableRows    map[uint32]int // table NID -> row count
}

func (c *checker) errorf(format string, a ...any) {
	if len(c.errs) < 50 {
		c.errs = append(c.errs, fmt.Errorf(format, a...))
	}
}

func (c *checker) read(off int64, n int) []byte {
	b := make([]byte, n)
	if off < 0 || off+int64(n) > c.size {
		c.errorf("read %d bytes at %#x beyond end of file %#x", n, off, c.size)
		return b
	}
	if _, err := c.r.ReadAt(b, off); err != nil {
		c.errorf("read at %#x: %v", off, err)
	}
	return b
}

// checkFile runs the checker on a file.
func checkFile(path string) (*checker, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	c := checkPST(f, st.Size())
	return c, errors.Join(c.errs...)
}

func newChecker(r io.ReaderAt, size int64) *checker {
	return &checker{r: r, size: size, bbt: map[uint64]chkBlock{}, pages: map[uint64]bool{},
		folderCounts: map[uint32]int{}, tableRows: map[uint32]int{}}
}

// checkPST checks a file; a malformed file that trips the checker itself is
// reported as an error.
func checkPST(r io.ReaderAt, size int64) (c *checker) {
	c = newChecker(r, size)
	defer func() {
		if p := recover(); p != nil {
			c.errorf("checker panic (malformed file): %v", p)
		}
	}()
	c.run()
	return c
}

func (c *checker) run() {
	size := c.size
	if size < amapFirst+intervalSize {
		c.errorf("file of %d bytes is shorter than one AMap interval", size)
		return
	}
	h := c.read(0, 564)
	le := binary.LittleEndian
	if string(h[0:4]) != "!BDN" || string(h[8:10]) != "SM" {
		c.errorf("bad magic %q %q", h[0:4], h[8:10])
	}
	if v := le.Uint16(h[0x0A:]); v < 23 {
		c.errorf("wVer %d: not a Unicode PST", v)
		return
	}
	if crc(h[8:8+471]) != le.Uint32(h[4:]) {
		c.errorf("dwCRCPartial mismatch")
	}
	if crc(h[8:8+516]) != le.Uint32(h[0x20C:]) {
		c.errorf("dwCRCFull mismatch")
	}
	if h[0x200] != 0x80 {
		c.errorf("bSentinel %#x", h[0x200])
	}
	c.crypt = h[0x201]
	if c.crypt > 2 {
		c.errorf("bCryptMethod %d", c.crypt)
	}
	eof := int64(le.Uint64(h[0xB8:]))
	if eof != size {
		c.errorf("ibFileEof %#x != file size %#x", eof, size)
	}
	if (eof-amapFirst)%intervalSize != 0 {
		c.errorf("ibFileEof %#x is not at an AMap interval boundary", eof)
	}
	nInt := (eof - amapFirst + intervalSize - 1) / intervalSize
	if nInt <= 0 || nInt > 1<<24 {
		c.errorf("implausible interval count %d", nInt)
		return
	}
	if last := int64(le.Uint64(h[0xC0:])); last != intervalBase(nInt-1) {
		c.errorf("ibAMapLast %#x, want %#x", last, intervalBase(nInt-1))
	}
	if h[0xF8] != 2 {
		c.errorf("fAMapValid %d, want 2", h[0xF8])
	}
	c.alloc = make([][]byte, nInt)
	for i := range c.alloc {
		c.alloc[i] = make([]byte, 496)
		n, _, _, _ := intervalPages(int64(i))
		c.markRange(uint64(intervalBase(int64(i))), n*pageSize, "map pages")
	}
	// B-trees
	c.walk(ptypeNBT, le.Uint64(h[0xD8:]), le.Uint64(h[0xE0:]), -1, 0, nil)
	c.walk(ptypeBBT, le.Uint64(h[0xE8:]), le.Uint64(h[0xF0:]), -1, 0, nil)
	if bidNextP := le.Uint64(h[0x20:]); bidNextP <= c.maxPID {
		c.errorf("bidNextP %#x <= largest page BID %#x", bidNextP, c.maxPID)
	}
	if bidNextB := le.Uint64(h[0x204:]); bidNextB <= c.maxBID {
		c.errorf("bidNextB %#x <= largest block BID %#x", bidNextB, c.maxBID)
	}
	// map pages against the recomputed allocation
	var free int64
	for i := int64(0); i < nInt; i++ {
		base := intervalBase(i)
		p := c.read(base, pageSize)
		c.checkMapPage(p, base, ptypeAMap)
		for s := range 496 * 8 {
			if c.alloc[i][s/8]&(0x80>>(s%8)) == 0 {
				free += 64
			}
		}
		if !slices.Equal(p[:496], c.alloc[i]) {
			for j := range 496 {
				if p[j] != c.alloc[i][j] {
					c.errorf("AMap %#x byte %d is %#02x, allocation says %#02x", base, j, p[j], c.alloc[i][j])
					break
				}
			}
		}
		_, pm, fm, fpm := intervalPages(i)
		off := base + pageSize
		if pm {
			c.checkMapPage(c.read(off, pageSize), off, ptypePMap)
			off += pageSize
		}
		if fm {
			c.checkMapPage(c.read(off, pageSize), off, ptypeFMap)
			off += pageSize
		}
		if fpm {
			c.checkMapPage(c.read(off, pageSize), off, ptypeFPMap)
		}
	}
	if got := int64(le.Uint64(h[0xC8:])); got != free {
		c.errorf("cbAMapFree %d, recomputed %d", got, free)
	}
	dl := c.read(dlistOffset, pageSize)
	if dl[496] != ptypeDList || dl[497] != ptypeDList || crc(dl[:496]) != le.Uint32(dl[500:]) ||
		le.Uint16(dl[498:]) != sig(dlistOffset, le.Uint64(dl[504:])) {
		c.errorf("density list page trailer invalid")
	}
	c.checkNodes(h)
}

func (c *checker) checkMapPage(p []byte, off int64, ptype byte) {
	le := binary.LittleEndian
	if p[496] != ptype || p[497] != ptype {
		c.errorf("map page %#x: ptype %#x/%#x, want %#x", off, p[496], p[497], ptype)
	}
	if le.Uint16(p[498:]) != 0 || le.Uint64(p[504:]) != uint64(off) {
		c.errorf("map page %#x: wSig %#x bid %#x", off, le.Uint16(p[498:]), le.Uint64(p[504:]))
	}
	if crc(p[:496]) != le.Uint32(p[500:]) {
		c.errorf("map page %#x: CRC mismatch", off)
	}
}

// markRange records an allocation and reports overlaps and allocations
// that cross an interval or sit on map pages.
func (c *checker) markRange(ib uint64, n int, what string) {
	if ib < amapFirst || ib >= uint64(c.size) || ib+uint64(n) > uint64(c.size) {
		c.errorf("%s at %#x+%d outside the data area", what, ib, n)
		return
	}
	i := (int64(ib) - amapFirst) / intervalSize
	rel := int64(ib) - intervalBase(i)
	if rel%64 != 0 || rel+int64(n) > intervalSize {
		c.errorf("%s at %#x+%d misaligned or crossing an AMap interval", what, ib, n)
		return
	}
	for s := rel / 64; s < (rel+int64(n)+63)/64; s++ {
		if c.alloc[i][s/8]&(0x80>>(s%8)) != 0 {
			c.errorf("%s at %#x overlaps another allocation", what, ib)
			return
		}
		c.alloc[i][s/8] |= 0x80 >> (s % 8)
	}
}

type keyTrack struct {
	have bool
	v    uint64
}

func (c *checker) walk(ptype byte, bid, ib uint64, wantLevel int, minKey uint64, last *keyTrack) {
	le := binary.LittleEndian
	name := map[byte]string{ptypeNBT: "NBT", ptypeBBT: "BBT"}[ptype]
	if c.pages[ib] {
		c.errorf("%s page %#x reached twice", name, ib)
		return
	}
	c.pages[ib] = true
	if ib%pageSize != 0 {
		c.errorf("%s page %#x not 512-aligned", name, ib)
	}
	c.markRange(ib, pageSize, name+" page")
	c.maxPID = max(c.maxPID, bid)
	p := c.read(int64(ib), pageSize)
	if p[496] != ptype || p[497] != ptype {
		c.errorf("%s page %#x: ptype %#x", name, ib, p[496])
		return
	}
	if crc(p[:496]) != le.Uint32(p[500:]) {
		c.errorf("%s page %#x: CRC mismatch", name, ib)
	}
	if le.Uint64(p[504:]) != bid {
		c.errorf("%s page %#x: trailer bid %#x, BREF says %#x", name, ib, le.Uint64(p[504:]), bid)
	}
	if le.Uint16(p[498:]) != sig(ib, bid) {
		c.errorf("%s page %#x: wSig mismatch", name, ib)
	}
	cEnt, cEntMax, cbEnt, cLevel := int(p[488]), int(p[489]), int(p[490]), int(p[491])
	if wantLevel >= 0 && cLevel != wantLevel {
		c.errorf("%s page %#x: cLevel %d, want %d", name, ib, cLevel, wantLevel)
	}
	want := 24
	if ptype == ptypeNBT && cLevel == 0 {
		want = 32
	}
	if cbEnt != want || cEntMax != 488/cbEnt || cEnt > cEntMax || (cEnt == 0 && wantLevel >= 0) {
		c.errorf("%s page %#x: cEnt %d cEntMax %d cbEnt %d", name, ib, cEnt, cEntMax, cbEnt)
		return
	}
	if last == nil {
		last = &keyTrack{}
	}
	for i := range cEnt {
		e := p[i*cbEnt : (i+1)*cbEnt]
		key := le.Uint64(e)
		if ptype == ptypeNBT && cLevel == 0 {
			key = le.Uint64(e) & 0xFFFFFFFF
		}
		if i == 0 && wantLevel >= 0 && key != minKey {
			c.errorf("%s page %#x: first key %#x, parent says %#x", name, ib, key, minKey)
		}
		if cLevel == 0 && last.have && key <= last.v {
			c.errorf("%s page %#x: key %#x not after %#x", name, ib, key, last.v)
		}
		if cLevel > 0 {
			c.walk(ptype, le.Uint64(e[8:]), le.Uint64(e[16:]), cLevel-1, key, last)
			continue
		}
		last.have, last.v = true, key
		if ptype == ptypeNBT {
			c.nbt = append(c.nbt, chkNode{nid: key, bidData: le.Uint64(e[8:]), bidSub: le.Uint64(e[16:]), parent: le.Uint32(e[24:])})
			continue
		}
		bid, bib, cb := le.Uint64(e), le.Uint64(e[8:]), le.Uint16(e[16:])
		if bid&1 != 0 {
			c.errorf("BBT entry %#x has bit 0 set", bid)
		}
		c.maxBID = max(c.maxBID, bid)
		if cb > maxBlockData {
			c.errorf("block %#x: cb %d", bid, cb)
			continue
		}
		sz := blockSize(int(cb))
		c.markRange(bib, sz, fmt.Sprintf("block %#x", bid))
		b := c.read(int64(bib), sz)
		t := b[sz-16:]
		if le.Uint16(t) != cb || le.Uint16(t[2:]) != sig(bib, bid) || le.Uint32(t[4:]) != crc(b[:cb]) || le.Uint64(t[8:]) != bid {
			c.errorf("block %#x at %#x: bad trailer", bid, bib)
		}
		c.bbt[bid] = chkBlock{ib: bib, cb: cb}
	}
}

// block returns the (stored) data of a block.
func (c *checker) block(bid uint64) ([]byte, bool) {
	b, ok := c.bbt[bid&^1]
	if !ok {
		c.errorf("block %#x not in the BBT", bid)
		return nil, false
	}
	data := c.read(int64(b.ib), int(b.cb))
	if c.crypt == 1 && c.decode != nil && bid&2 == 0 {
		for i, x := range data {
			data[i] = c.decode[x]
		}
	}
	return data, true
}

// dataBlocks returns the data blocks of a data tree and adds the sizes of
// its data blocks to *n.
func (c *checker) dataBlocks(bid uint64, depth int) [][]byte {
	if bid == 0 {
		return nil
	}
	b, ok := c.block(bid)
	if !ok {
		return nil
	}
	if bid&2 == 0 {
		return [][]byte{b}
	}
	if len(b) < 8 || b[0] != 1 || depth > 2 {
		c.errorf("internal block %#x is not an XBLOCK/XXBLOCK", bid)
		return nil
	}
	le := binary.LittleEndian
	n, total := int(le.Uint16(b[2:])), le.Uint32(b[4:])
	if len(b) < 8+8*n || int(b[1]) != 2-depth && depth > 0 {
		c.errorf("XBLOCK %#x: level %d, %d entries", bid, b[1], n)
		return nil
	}
	var out [][]byte
	var sum uint32
	for i := range n {
		for _, d := range c.dataBlocks(le.Uint64(b[8+8*i:]), depth+1) {
			out = append(out, d)
			sum += uint32(len(d))
		}
	}
	if sum != total {
		c.errorf("XBLOCK %#x: lcbTotal %d, children hold %d", bid, total, sum)
	}
	return out
}

type chkSub struct{ nid, bidData, bidSub uint64 }

func (c *checker) subnodes(bid uint64) []chkSub { return c.subnodesAt(bid, 0) }

func (c *checker) subnodesAt(bid uint64, depth int) []chkSub {
	if bid == 0 {
		return nil
	}
	if depth > 1 {
		c.errorf("subnode block %#x: SIBLOCK nesting too deep", bid)
		return nil
	}
	b, ok := c.block(bid)
	if !ok {
		return nil
	}
	le := binary.LittleEndian
	if len(b) < 8 || b[0] != 2 || bid&2 == 0 {
		c.errorf("subnode block %#x: not an SLBLOCK/SIBLOCK", bid)
		return nil
	}
	n := int(le.Uint16(b[2:]))
	var out []chkSub
	if b[1] == 0 {
		if len(b) < 8+24*n {
			c.errorf("SLBLOCK %#x short", bid)
			return nil
		}
		for i := range n {
			e := b[8+24*i:]
			out = append(out, chkSub{le.Uint64(e), le.Uint64(e[8:]), le.Uint64(e[16:])})
		}
	} else {
		if len(b) < 8+16*n {
			c.errorf("SIBLOCK %#x short", bid)
			return nil
		}
		for i := range n {
			out = append(out, c.subnodesAt(le.Uint64(b[8+16*i+8:]), depth+1)...)
		}
	}
	// only the low 32 bits of an SLENTRY nid are the NID; Outlook leaves the
	// high bits undefined
	for i := range out {
		out[i].nid &= 0xFFFFFFFF
		if i > 0 && out[i].nid <= out[i-1].nid {
			c.errorf("subnode block %#x: NIDs %#x, %#x not sorted", bid, out[i-1].nid, out[i].nid)
		}
	}
	return out
}

// objectSize is the sum of the data blocks reachable from a node: the size
// the writer records as PidTagMessageSize / PidTagAttachSize.
func (c *checker) objectSize(bidData, bidSub uint64) int64 { return c.objectSizeAt(bidData, bidSub, 0) }

func (c *checker) objectSizeAt(bidData, bidSub uint64, depth int) int64 {
	if depth > 3*maxNesting+3 {
		c.errorf("subnode nesting too deep at block %#x", bidSub)
		return 0
	}
	var n int64
	for _, b := range c.dataBlocks(bidData, 0) {
		n += int64(len(b))
	}
	for _, s := range c.subnodes(bidSub) {
		n += c.objectSizeAt(s.bidData, s.bidSub, depth+1)
	}
	return n
}

// heapAlloc returns the heap allocation hid of the heap in pages.
func (c *checker) heapAlloc(pages [][]byte, hid uint32) []byte {
	le := binary.LittleEndian
	pi, idx := int(hid>>16), int(hid>>5&0x7FF)
	if hid&0x1F != 0 || pi >= len(pages) || idx == 0 {
		c.errorf("bad HID %#x", hid)
		return nil
	}
	p := pages[pi]
	m := int(le.Uint16(p))
	if m+4 > len(p) {
		c.errorf("heap page %d: ibHnpm %d", pi, m)
		return nil
	}
	cAlloc := int(le.Uint16(p[m:]))
	if idx > cAlloc || m+4+2*(cAlloc+1) > len(p) {
		c.errorf("HID %#x beyond %d allocations", hid, cAlloc)
		return nil
	}
	a, b := int(le.Uint16(p[m+4+2*(idx-1):])), int(le.Uint16(p[m+4+2*idx:]))
	if a > b || b > m {
		c.errorf("HID %#x: bad allocation bounds %d..%d", hid, a, b)
		return nil
	}
	return p[a:b]
}

// bthRecords returns the leaf records of the BTH whose header is at hid.
func (c *checker) bthRecords(pages [][]byte, hid uint32) [][]byte {
	h := c.heapAlloc(pages, hid)
	if len(h) != 8 || h[0] != sigBTH {
		c.errorf("BTH header %#x invalid", hid)
		return nil
	}
	cbKey, cbEnt, levels := int(h[1]), int(h[2]), int(h[3])
	root := binary.LittleEndian.Uint32(h[4:])
	if root == 0 {
		return nil
	}
	var rec func(hid uint32, level int) [][]byte
	rec = func(hid uint32, level int) [][]byte {
		a := c.heapAlloc(pages, hid)
		if level == 0 {
			var out [][]byte
			for i := 0; i+cbKey+cbEnt <= len(a); i += cbKey + cbEnt {
				out = append(out, a[i:i+cbKey+cbEnt])
			}
			return out
		}
		var out [][]byte
		for i := 0; i+cbKey+4 <= len(a); i += cbKey + 4 {
			out = append(out, rec(binary.LittleEndian.Uint32(a[i+cbKey:]), level-1)...)
		}
		return out
	}
	return rec(root, levels)
}

func (c *checker) heapOf(bid uint64, clientSig byte) ([][]byte, uint32) {
	pages := c.dataBlocks(bid, 0)
	if len(pages) == 0 || len(pages[0]) < 12 || pages[0][2] != hnSig || pages[0][3] != clientSig {
		c.errorf("node data %#x: not a heap with client signature %#x", bid, clientSig)
		return nil, 0
	}
	return pages, binary.LittleEndian.Uint32(pages[0][4:])
}

// pcInts returns the inline 4-byte property values of a PC by property ID.
func (c *checker) pcInts(bid uint64) map[uint16]uint32 {
	pages, root := c.heapOf(bid, sigPC)
	if pages == nil {
		return nil
	}
	out := map[uint16]uint32{}
	for _, r := range c.bthRecords(pages, root) {
		le := binary.LittleEndian
		if fixedSize(le.Uint16(r[2:])) > 0 && fixedSize(le.Uint16(r[2:])) <= 4 {
			out[le.Uint16(r)] = le.Uint32(r[4:])
		}
	}
	return out
}

// tcRowCount returns the number of rows of a TC (its row index).
func (c *checker) tcRowCount(bid uint64) int {
	pages, root := c.heapOf(bid, sigTC)
	if pages == nil {
		return -1
	}
	info := c.heapAlloc(pages, root)
	if len(info) < 22 || info[0] != sigTC {
		c.errorf("TCINFO invalid")
		return -1
	}
	return len(c.bthRecords(pages, binary.LittleEndian.Uint32(info[10:])))
}

func (c *checker) checkNodes(h []byte) {
	le := binary.LittleEndian
	byNID := map[uint32]chkNode{}
	for _, n := range c.nbt {
		byNID[uint32(n.nid)] = n
		for _, b := range []uint64{n.bidData, n.bidSub} {
			if _, ok := c.bbt[b&^1]; b != 0 && !ok {
				c.errorf("node %#x: block %#x not in the BBT", n.nid, b)
			}
		}
		typ := uint32(n.nid) & 0x1F
		if rg := le.Uint32(h[0x2C+4*typ:]); uint32(n.nid)>>5 > rg && typ != nidTypeInternal {
			c.errorf("node %#x: index above rgnid[%d] = %#x", n.nid, typ, rg)
		}
	}
	for _, nid := range []uint32{nidMessageStore, nidNameToIDMap, nidRootFolder, nidSMQ, nidSAL,
		nidHierTemplate, nidContTemplate, nidFAITemplate, nidSearchTemplate, nidAttachTable, nidRecipTable,
		nidSpamFolder, nidIPMSubtree, nidSearchRoot, nidDeletedItems} {
		if _, ok := byNID[nid]; !ok {
			c.errorf("mandatory node %#x missing", nid)
		}
	}
	for _, f := range []uint32{nidRootFolder, nidIPMSubtree, nidSearchRoot, nidDeletedItems} {
		for _, t := range []uint32{nidTypeHierarchy, nidTypeContents, nidTypeAssocContents} {
			if _, ok := byNID[f&^0x1F|t]; !ok {
				c.errorf("folder %#x: table %#x missing", f, f&^0x1F|t)
			}
		}
	}
	if c.crypt != 0 && (c.crypt != 1 || c.decode == nil) {
		return // content checks need decoding; structure is checked
	}
	children := map[uint32]int{}
	for _, n := range c.nbt {
		typ := uint32(n.nid) & 0x1F
		switch typ {
		case nidTypeNormalMessage:
			c.messages++
			children[n.parent]++
			if p, ok := byNID[n.parent]; !ok || uint32(p.nid)&0x1F != nidTypeNormalFolder {
				c.errorf("message %#x: parent %#x is not a folder", n.nid, n.parent)
			}
			c.checkMessage(n.bidData, n.bidSub, fmt.Sprintf("message %#x", n.nid), 0)
		case nidTypeNormalFolder, nidTypeSearchFolder:
			if _, ok := byNID[n.parent]; !ok {
				c.errorf("folder %#x: parent %#x missing", n.nid, n.parent)
			}
		}
	}
	for _, n := range c.nbt {
		nid := uint32(n.nid)
		switch nid & 0x1F {
		case nidTypeNormalFolder:
			v := c.pcInts(n.bidData)
			count := int(v[0x3602])
			c.folderCounts[nid] = count
			if count != children[nid] {
				c.errorf("folder %#x: PidTagContentCount %d, %d message nodes", nid, count, children[nid])
			}
			ct, ok := byNID[nid&^0x1F|nidTypeContents]
			if ok {
				rows := c.checkTableRows(fmt.Sprintf("contents table %#x", ct.nid), ct.bidData, ct.bidSub, func(id uint32) map[uint16]pcValue {
					m, ok := byNID[id]
					if !ok || m.parent != nid || id&0x1F != nidTypeNormalMessage {
						return nil
					}
					return c.pcProps(m.bidData, m.bidSub)
				})
				if rows != count {
					c.errorf("folder %#x: contents table has %d rows, count %d", nid, rows, count)
				}
			}
			if ht, ok := byNID[nid&^0x1F|nidTypeHierarchy]; ok {
				c.checkTableRows(fmt.Sprintf("hierarchy table %#x", ht.nid), ht.bidData, ht.bidSub, func(id uint32) map[uint16]pcValue {
					f, ok := byNID[id]
					if !ok || f.parent != nid {
						return nil
					}
					return c.pcProps(f.bidData, f.bidSub)
				})
			}
		case nidTypeHierarchy, nidTypeContents, nidTypeAssocContents, nidTypeSearchContent:
			c.tableRows[nid] = c.tcRowCount(n.bidData)
		}
	}
}

// checkMessage verifies PidTagMessageSize and, through the attachment
// table, every attachment's PidTagAttachSize and attached message.
func (c *checker) checkMessage(bidData, bidSub uint64, what string, depth int) {
	if depth > maxNesting+1 {
		c.errorf("%s: nesting too deep", what)
		return
	}
	v := c.pcInts(bidData)
	if got, want := int64(v[0x0E08]), c.objectSize(bidData, bidSub); got != want && !c.lenient {
		c.errorf("%s: PidTagMessageSize %d, node holds %d", what, got, want)
	}
	subs := c.subnodes(bidSub)
	var recip, att bool
	nAtt := 0
	for _, s := range subs {
		switch {
		case s.nid == nidRecipTable:
			recip = true
			c.tcRowCount(s.bidData)
		case s.nid == nidAttachTable:
			att = true
			if n := c.checkTableRows(what+" attachment table", s.bidData, s.bidSub, func(id uint32) map[uint16]pcValue {
				for _, a := range subs {
					if uint32(a.nid) == id && id&0x1F == nidTypeAttachment {
						return c.pcProps(a.bidData, a.bidSub)
					}
				}
				return nil
			}); n >= 0 {
				nAtt = n
			}
		}
	}
	if !recip {
		c.errorf("%s: no recipient table", what)
	}
	got := 0
	for _, s := range subs {
		if uint32(s.nid)&0x1F != nidTypeAttachment {
			continue
		}
		got++
		av := c.pcInts(s.bidData)
		if g, w := int64(av[0x0E20]), c.objectSize(s.bidData, s.bidSub); g != w && !c.lenient {
			c.errorf("%s: attachment %#x: PidTagAttachSize %d, node holds %d", what, s.nid, g, w)
		}
		if av[0x3705] == 5 {
			for _, e := range c.subnodes(s.bidSub) {
				if uint32(e.nid)&0x1F == nidTypeNormalMessage {
					c.checkMessage(e.bidData, e.bidSub, what+" > attached message", depth+1)
				}
			}
		}
	}
	if got != nAtt || (got > 0) != att {
		c.errorf("%s: %d attachment nodes, attachment table has %d rows", what, got, nAtt)
	}
	if got > 0 && v[0x0E07]&0x10 == 0 {
		c.errorf("%s: attachments without mfHasAttach", what)
	}
}

// pcValue is a property value read back from a PC or a TC cell.
type pcValue struct {
	typ uint16
	val []byte
}

// nodeValue resolves an HNID of a node: a heap allocation, or a subnode's
// data when the HNID is a NID.
func (c *checker) nodeValue(pages [][]byte, subs []chkSub, hnid uint32) ([]byte, bool) {
	if hnid == 0 {
		return nil, true
	}
	if hnid&0x1F == 0 {
		return c.heapAlloc(pages, hnid), true
	}
	for _, s := range subs {
		if uint32(s.nid) == hnid {
			var out []byte
			for _, b := range c.dataBlocks(s.bidData, 0) {
				out = append(out, b...)
			}
			return out, true
		}
	}
	c.errorf("HNID %#x: no such subnode", hnid)
	return nil, false
}

// pcProps reads every property of a PC.
func (c *checker) pcProps(bidData, bidSub uint64) map[uint16]pcValue {
	pages, root := c.heapOf(bidData, sigPC)
	if pages == nil {
		return nil
	}
	subs := c.subnodes(bidSub)
	out := map[uint16]pcValue{}
	le := binary.LittleEndian
	for _, r := range c.bthRecords(pages, root) {
		id, typ, v := le.Uint16(r), le.Uint16(r[2:]), le.Uint32(r[4:])
		if n := fixedSize(typ); n > 0 && n <= 4 {
			out[id] = pcValue{typ, r[4 : 4+n]}
			continue
		}
		if val, ok := c.nodeValue(pages, subs, v); ok {
			out[id] = pcValue{typ, val}
		}
	}
	return out
}

// checkTableRows reads every row of a TC, checks the row index against the
// row matrix, and compares each cell with the object the row describes
// (2.4.4.5.1 "copied" columns, 2.6.3.x): a cell must equal the object's
// property, and a property the object has must not be missing from a
// column of the table.
func (c *checker) checkTableRows(what string, bidData, bidSub uint64, object func(rowID uint32) map[uint16]pcValue) int {
	le := binary.LittleEndian
	pages, root := c.heapOf(bidData, sigTC)
	if pages == nil {
		return -1
	}
	info := c.heapAlloc(pages, root)
	if len(info) < 22 || info[0] != sigTC || len(info) < 22+8*int(info[1]) {
		c.errorf("%s: TCINFO invalid", what)
		return -1
	}
	type col struct {
		tag         uint32
		ib, cb, bit int
	}
	var cols []col
	for i := range int(info[1]) {
		d := info[22+8*i:]
		cols = append(cols, col{le.Uint32(d), int(le.Uint16(d[4:])), int(d[6]), int(d[7])})
		if i > 0 && cols[i].tag <= cols[i-1].tag {
			c.errorf("%s: TCOLDESCs not sorted by tag", what)
		}
	}
	ceb, rowSize := int(le.Uint16(info[6:])), int(le.Uint16(info[8:]))
	if rowSize <= 0 || ceb+(len(cols)+7)/8 > rowSize {
		c.errorf("%s: row size %d, CEB at %d for %d columns", what, rowSize, ceb, len(cols))
		return -1
	}
	subs := c.subnodes(bidSub)
	var rows [][]byte
	if hnid := le.Uint32(info[14:]); hnid != 0 {
		var blocks [][]byte
		if hnid&0x1F == 0 {
			blocks = [][]byte{c.heapAlloc(pages, hnid)}
		} else {
			for _, s := range subs {
				if uint32(s.nid) == hnid {
					blocks = c.dataBlocks(s.bidData, 0)
				}
			}
			for i, b := range blocks {
				if i < len(blocks)-1 && len(b) != maxBlockData {
					c.errorf("%s: row matrix block %d of %d bytes is not full", what, i, len(b))
				}
			}
		}
		for _, b := range blocks {
			for o := 0; o+rowSize <= len(b); o += rowSize {
				rows = append(rows, b[o:o+rowSize])
			}
		}
	}
	index := c.bthRecords(pages, le.Uint32(info[10:]))
	for _, r := range index {
		id, i := le.Uint32(r), int(le.Uint32(r[4:]))
		if i >= len(rows) {
			c.errorf("%s: row index points at row %d of %d", what, i, len(rows))
			continue
		}
		row := rows[i]
		if le.Uint32(row) != id {
			c.errorf("%s: row %d has row ID %#x, index says %#x", what, i, le.Uint32(row), id)
			continue
		}
		obj := object(id)
		if obj == nil {
			c.errorf("%s: row %#x describes no object", what, id)
			continue
		}
		for _, cl := range cols {
			if cl.tag == tagRowID || cl.tag == tagRowVer {
				continue
			}
			id16, typ := uint16(cl.tag>>16), uint16(cl.tag)
			pv, has := obj[id16]
			if row[ceb+cl.bit/8]&(0x80>>(cl.bit%8)) == 0 {
				if has && pv.typ == typ {
					c.errorf("%s: row %#x lacks column %#x that the object has", what, id, cl.tag)
				}
				continue
			}
			cell := row[cl.ib : cl.ib+cl.cb]
			var val []byte
			if n := fixedSize(typ); n > 0 {
				val = cell[:n]
			} else {
				v, ok := c.nodeValue(pages, subs, le.Uint32(cell))
				if !ok {
					continue
				}
				val = v
			}
			if c.lenient && (cl.tag == tagMessageStatus || cl.tag == tagMessageSize || cl.tag == 0x30130102) {
				continue // Outlook's rows do not copy these exactly
			}
			if !has || pv.typ != typ || !bytesEqual(pv.val, val) {
				c.errorf("%s: row %#x column %#x does not match the object", what, id, cl.tag)
			}
		}
	}
	if len(index) != len(rows) {
		c.errorf("%s: %d index records for %d rows", what, len(index), len(rows))
	}
	return len(rows)
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }
