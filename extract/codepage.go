// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"unicode/utf16"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// codepages are the Windows code pages RTF and TNEF name (\ansicpgN,
// \fcharset, PR_INTERNET_CPID). An unknown one is read as windows-1252.
var codepages = map[int]encoding.Encoding{
	437: charmap.CodePage437, 850: charmap.CodePage850, 852: charmap.CodePage852, 866: charmap.CodePage866,
	874: charmap.Windows874, 932: japanese.ShiftJIS, 936: simplifiedchinese.GBK, 949: korean.EUCKR,
	950: traditionalchinese.Big5, 1250: charmap.Windows1250, 1251: charmap.Windows1251,
	1252: charmap.Windows1252, 1253: charmap.Windows1253, 1254: charmap.Windows1254,
	1255: charmap.Windows1255, 1256: charmap.Windows1256, 1257: charmap.Windows1257,
	1258: charmap.Windows1258, 10000: charmap.Macintosh, 20866: charmap.KOI8R, 21866: charmap.KOI8U, 28591: charmap.ISO8859_1,
	28592: charmap.ISO8859_2, 28595: charmap.ISO8859_5, 54936: simplifiedchinese.GB18030,
}

// decodeCodepage converts b from code page cp (65001 is UTF-8) to UTF-8.
func decodeCodepage(cp int, b []byte) string {
	if cp == 65001 {
		return string(b)
	}
	enc, ok := codepages[cp]
	if !ok {
		enc = charmap.Windows1252
	}
	s, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return string(b) // cleaned by job.write
	}
	return string(s)
}

// utf16Text decodes UTF-16 (little-endian unless be), an odd last byte
// dropped, up to the first NUL.
func utf16Text(b []byte, be bool) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := uint16(b[i]) | uint16(b[i+1])<<8
		if be {
			c = uint16(b[i])<<8 | uint16(b[i+1])
		}
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// charsetCodepage maps an RTF \fcharset value to a Windows code page.
var charsetCodepage = map[int]int{
	0: 1252, 77: 10000, 128: 932, 129: 949, 134: 936, 136: 950, 161: 1253, 162: 1254,
	163: 1258, 177: 1255, 178: 1256, 186: 1257, 204: 1251, 222: 874, 238: 1250, 255: 437,
}
