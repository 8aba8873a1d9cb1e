// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"encoding/binary"
)

// lzfuDict is the initial dictionary of compressed RTF (MS-OXRTFCP §3.1.3.1).
const lzfuDict = `{\rtf1\ansi\mac\deff0\deftab720{\fonttbl;}{\f0\fnil \froman \fswiss \fmodern \fscript \fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\colortbl\red0\green0\blue0` + "\r\n" + `\par \pard\plain\f0\fs20\b\i\u\tab\tx`

const (
	lzfuCompressed   = 0x75465a4c // "LZFu"
	lzfuUncompressed = 0x414c454d // "MELA"
)

// decompressRTF decompresses PR_RTF_COMPRESSED (MS-OXRTFCP §2.1.3.1): a
// header (compressed size, raw size, type, CRC) and LZ77 runs over a
// 4096-byte ring. At most max bytes are produced (more is errLimit); the
// CRC is not checked, a damaged stream yields what decodes.
func decompressRTF(b []byte, max int64) ([]byte, error) {
	if len(b) < 16 {
		return nil, errTNEF
	}
	rawSize := int64(binary.LittleEndian.Uint32(b[4:]))
	typ := binary.LittleEndian.Uint32(b[8:])
	body := b[16:]
	if typ == lzfuUncompressed {
		if int64(len(body)) > rawSize {
			body = body[:rawSize]
		}
		if int64(len(body)) > max {
			return body[:max], errLimit
		}
		return body, nil
	}
	if typ != lzfuCompressed {
		return nil, errTNEF
	}
	var dict [4096]byte
	copy(dict[:], lzfuDict)
	w := len(lzfuDict)
	out := make([]byte, 0, min(rawSize, max, 4*int64(len(body))+1024))
	limit := min(rawSize, max)
	for i := 0; i < len(body); {
		flags := body[i]
		i++
		for bit := 0; bit < 8 && i < len(body); bit++ {
			if int64(len(out)) >= limit {
				if limit < rawSize {
					return out, errLimit
				}
				return out, nil
			}
			if flags&(1<<bit) == 0 {
				c := body[i]
				i++
				out = append(out, c)
				dict[w] = c
				w = (w + 1) % len(dict)
				continue
			}
			if i+2 > len(body) {
				return out, errTNEF
			}
			ref := int(binary.BigEndian.Uint16(body[i:]))
			i += 2
			off, n := ref>>4, ref&0xf+2
			if off == w {
				return out, nil // the end marker
			}
			for k := 0; k < n; k++ {
				c := dict[(off+k)%len(dict)]
				out = append(out, c)
				dict[w] = c
				w = (w + 1) % len(dict)
			}
		}
	}
	return out, nil
}
