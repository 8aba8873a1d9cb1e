// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// TNEF (MS-OXTNEF): the winmail.dat of Outlook. A stream is a signature,
// a key, then attributes: level (1 message, 2 attachment), id (type in the
// high word), length, data, checksum.
const (
	tnefLevelMessage    = 1
	tnefLevelAttachment = 2

	attBody          = 0x800c // message text (MS-OXTNEF §2.1.3.3.8)
	attAttachData    = 0x800f // attachment bytes
	attAttachTitle   = 0x8010 // attachment file name (8.3)
	attAttachRend    = 0x9002 // starts an attachment
	attMsgProps      = 0x9003 // the message's MAPI properties
	attAttachment    = 0x9005 // the attachment's MAPI properties
	prBody           = 0x1000
	prRTFCompressed  = 0x1009
	prBodyHTML       = 0x1013
	prAttachDataBin  = 0x3701 // PT_BINARY, or PT_OBJECT for an embedded message
	prAttachFilename = 0x3704
	prAttachLongName = 0x3707
	prInternetCPID   = 0x3fde

	ptShort    = 0x0002
	ptLong     = 0x0003
	ptFloat    = 0x0004
	ptDouble   = 0x0005
	ptCurrency = 0x0006
	ptAppTime  = 0x0007
	ptError    = 0x000a
	ptBoolean  = 0x000b
	ptObject   = 0x000d
	ptI8       = 0x0014
	ptString8  = 0x001e
	ptUnicode  = 0x001f
	ptSysTime  = 0x0040
	ptCLSID    = 0x0048
	ptBinary   = 0x0102
	ptMulti    = 0x1000
)

var errTNEF = errors.New("extract: malformed TNEF")

// tnefAttachment is one attachment of a TNEF stream.
type tnefAttachment struct {
	name string
	data []byte
}

// tnefMessage is what a TNEF stream says that has text.
type tnefMessage struct {
	body        string // attBody or PR_BODY
	html        []byte // PR_BODY_HTML
	rtf         []byte // PR_RTF_COMPRESSED, still compressed
	cpid        int    // PR_INTERNET_CPID: the code page of 8-bit strings
	attachments []tnefAttachment
}

// parseTNEF reads a TNEF stream. It never reads beyond b and allocates no
// more than len(b); a malformed stream returns what was read before the
// fault, and errTNEF.
func parseTNEF(b []byte) (*tnefMessage, error) {
	m := &tnefMessage{cpid: 1252}
	if len(b) < 6 || binary.LittleEndian.Uint32(b) != 0x223e9f78 {
		return m, errTNEF
	}
	p := b[6:] // signature and the legacy key
	var cur *tnefAttachment
	for len(p) > 0 {
		if len(p) < 9 {
			return m, errTNEF
		}
		level := p[0]
		id := binary.LittleEndian.Uint32(p[1:]) & 0xffff
		n := binary.LittleEndian.Uint32(p[5:])
		if uint64(n)+11 > uint64(len(p)) {
			return m, errTNEF
		}
		data := p[9 : 9+n]
		p = p[9+n+2:] // data and the checksum, which is not checked: a wrong one loses nothing
		switch {
		case level == tnefLevelMessage && id == attBody:
			m.body = trimNUL(string(data))
		case level == tnefLevelMessage && id == attMsgProps:
			if err := mapiProps(data, func(id, typ uint16, v []byte) {
				switch id {
				case prBody:
					m.body = propString(typ, v, m.cpid)
				case prBodyHTML:
					m.html = v
				case prRTFCompressed:
					m.rtf = v
				case prInternetCPID:
					if len(v) >= 4 {
						m.cpid = int(binary.LittleEndian.Uint32(v))
					}
				}
			}); err != nil {
				return m, err
			}
		case level == tnefLevelAttachment && id == attAttachRend:
			m.attachments = append(m.attachments, tnefAttachment{})
			cur = &m.attachments[len(m.attachments)-1]
		case level == tnefLevelAttachment && cur != nil && id == attAttachTitle:
			if cur.name == "" {
				cur.name = trimNUL(decodeCodepage(m.cpid, data))
			}
		case level == tnefLevelAttachment && cur != nil && id == attAttachData:
			cur.data = data
		case level == tnefLevelAttachment && cur != nil && id == attAttachment:
			if err := mapiProps(data, func(id, typ uint16, v []byte) {
				switch id {
				case prAttachLongName:
					cur.name = propString(typ, v, m.cpid)
				case prAttachFilename:
					if cur.name == "" {
						cur.name = propString(typ, v, m.cpid)
					}
				case prAttachDataBin:
					if typ == ptObject && len(v) >= 16 {
						v = v[16:] // the interface id; an embedded message is itself a TNEF stream
					}
					if cur.data == nil {
						cur.data = v
					}
				}
			}); err != nil {
				return m, err
			}
		}
	}
	return m, nil
}

func trimNUL(s string) string {
	for len(s) > 0 && s[len(s)-1] == 0 {
		s = s[:len(s)-1]
	}
	return s
}

func propString(typ uint16, v []byte, cpid int) string {
	if typ == ptUnicode {
		return utf16Text(v, false)
	}
	return trimNUL(decodeCodepage(cpid, v))
}

// mapiProps calls fn with each property of an encoded MAPI property list
// (MS-OXTNEF §2.1.3.4): its id, type and, for single values, the value.
func mapiProps(b []byte, fn func(id, typ uint16, v []byte)) error {
	r := &tnefReader{b: b}
	count := r.u32()
	for i := uint32(0); i < count && r.err == nil; i++ {
		typ := r.u16()
		id := r.u16()
		if id >= 0x8000 { // a named property: GUID, kind, then an id or a name
			r.skip(16)
			if r.u32() == 1 {
				r.skip(pad4(int(r.u32())))
			} else {
				r.skip(4)
			}
		}
		values := uint32(1)
		base := typ &^ ptMulti
		if typ&ptMulti != 0 || base == ptString8 || base == ptUnicode || base == ptBinary || base == ptObject {
			values = r.u32() // variable-length types always carry a count
		}
		for k := uint32(0); k < values && r.err == nil; k++ {
			var v []byte
			switch base {
			case ptShort, ptLong, ptFloat, ptError, ptBoolean:
				v = r.bytes(4)
			case ptDouble, ptCurrency, ptAppTime, ptI8, ptSysTime:
				v = r.bytes(8)
			case ptCLSID:
				v = r.bytes(16)
			case ptString8, ptUnicode, ptBinary, ptObject:
				n := int(r.u32())
				v = r.bytes(n)
				r.skip(pad4(n) - n)
			default:
				return errTNEF // an unknown type: its size is unknown
			}
			if r.err == nil && typ&ptMulti == 0 {
				fn(id, base, v)
			}
		}
	}
	return r.err
}

func pad4(n int) int { return (n + 3) &^ 3 }

// tnefReader reads little-endian values; after the first overrun every
// read returns zero and err is set.
type tnefReader struct {
	b   []byte
	err error
}

func (r *tnefReader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errTNEF
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *tnefReader) skip(n int) { r.bytes(n) }

func (r *tnefReader) u16() uint16 {
	if v := r.bytes(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

func (r *tnefReader) u32() uint32 {
	if v := r.bytes(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

// tnef writes the text of a TNEF stream: the message body (plain, else
// from compressed RTF, else HTML), then each attachment's name and text.
func (j *job) tnef(data []byte, depth int) {
	if depth >= j.lim.MaxDepth {
		j.fail(ReasonLimit)
		return
	}
	m, err := parseTNEF(data)
	if err != nil {
		j.fail(ReasonMalformed)
	}
	switch {
	case m.body != "":
		j.line(m.body)
	case m.rtf != nil:
		raw, err := decompressRTF(m.rtf, j.lim.MaxUnpackedBytes-j.unpacked)
		j.unpacked += int64(len(raw))
		if err != nil {
			j.problem(err)
		}
		j.rtf(raw)
		j.write("\n")
	case m.html != nil:
		html := string(m.html)
		if !utf8.Valid(m.html) {
			html = decodeCodepage(m.cpid, m.html)
		}
		j.line(HTMLText(html))
	}
	for _, a := range m.attachments {
		if j.stopped() {
			return
		}
		j.entries++
		if j.entries > j.lim.MaxEntries {
			j.fail(ReasonLimit)
			return
		}
		j.line(a.name)
		j.file(a.data, "", a.name, depth+1)
	}
}
