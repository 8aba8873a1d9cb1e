// SPDX-License-Identifier: Apache-2.0

package pst

import "hash/crc32"

// crc computes the [MS-PST] 5.3 CRC: the reflected CRC-32 table with an
// initial value of 0 and no final XOR (this differs from zlib's CRC-32).
func crc(p []byte) uint32 {
	return ^crc32.Update(^uint32(0), crc32.IEEETable, p)
}

// sig computes the [MS-PST] 5.5 block/page signature from the file offset
// and the BID.
func sig(ib, bid uint64) uint16 {
	x := ib ^ bid
	return uint16((x >> 16) ^ x)
}
