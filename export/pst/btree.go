// SPDX-License-Identifier: Apache-2.0

package pst

// NBT and BBT pages ([MS-PST] 2.2.2.7.7), bulk-loaded at close.

import (
	"encoding/binary"
)

// bref is a BID and a file offset.
type bref struct{ bid, ib uint64 }

// writeBTree bulk-loads a B-tree of leaf entries (already sorted by key) and
// returns the root page. keyOf gives the key of leaf entry i; leaf writes
// entry i into b.
func (d *ndb) writeBTree(ptype byte, n int, cbLeaf int, keyOf func(i int) uint64, leaf func(i int, b []byte)) (bref, error) {
	leafMax := 488 / cbLeaf
	type child struct {
		key uint64
		ref bref
	}
	var level []child
	writePage := func(ents int, cbEnt int, cLevel byte, fill func(p []byte)) (bref, error) {
		bid := d.nextPage
		d.nextPage++
		ib, p, err := d.alloc(pageSize, pageSize)
		if err != nil {
			return bref{}, err
		}
		fill(p)
		p[488] = byte(ents)
		p[489] = byte(488 / cbEnt)
		p[490] = byte(cbEnt)
		p[491] = cLevel
		writePageTrailer(p, ptype, sig(ib, bid), bid)
		return bref{bid, ib}, nil
	}
	for start := 0; start < n || (n == 0 && start == 0); start += leafMax {
		end := min(n, start+leafMax)
		r, err := writePage(end-start, cbLeaf, 0, func(p []byte) {
			for i := start; i < end; i++ {
				leaf(i, p[(i-start)*cbLeaf:(i-start+1)*cbLeaf])
			}
		})
		if err != nil {
			return bref{}, err
		}
		var k uint64
		if n > 0 {
			k = keyOf(start)
		}
		level = append(level, child{k, r})
		if n == 0 {
			break
		}
	}
	var cLevel byte
	for len(level) > 1 {
		cLevel++
		var next []child
		for start := 0; start < len(level); start += 20 {
			end := min(len(level), start+20)
			grp := level[start:end]
			r, err := writePage(len(grp), 24, cLevel, func(p []byte) {
				for i, c := range grp {
					binary.LittleEndian.PutUint64(p[i*24:], c.key)
					binary.LittleEndian.PutUint64(p[i*24+8:], c.ref.bid)
					binary.LittleEndian.PutUint64(p[i*24+16:], c.ref.ib)
				}
			})
			if err != nil {
				return bref{}, err
			}
			next = append(next, child{grp[0].key, r})
		}
		level = next
	}
	return level[0].ref, nil
}
