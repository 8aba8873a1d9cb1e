// SPDX-License-Identifier: Apache-2.0

package mimepart

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// DecodeTransfer undoes the Content-Transfer-Encoding cte of body (RFC 2045
// §6) leniently: base64 skips characters outside its alphabet (the
// URL-safe one included) and needs no padding, quoted-printable keeps an "="
// that starts no escape, and x-uuencode decodes the first file. Identity
// encodings (and their common misspellings) return body itself. ok is false
// when base64 held characters other than white space outside its alphabet,
// or when the encoding is unknown: RFC 2045 §6.4 makes such a body opaque,
// and it is returned as it is.
func DecodeTransfer(cte string, body []byte) (out []byte, ok bool) {
	cte = strings.ToLower(strings.TrimSpace(cte))
	if i := strings.IndexAny(cte, "; \t"); i >= 0 {
		cte = cte[:i]
	}
	switch cte {
	case "", "7bit", "8bit", "binary", "7-bit", "8-bit", "8bits", "plain", "none", "text":
		return body, true
	case "base64":
		return decodeBase64(body)
	case "quoted-printable":
		return decodeQP(body), true
	case "x-uuencode", "uuencode", "x-uue":
		return decodeUU(body), true
	}
	return body, false
}

// b64 maps a byte to its base64 value, or 0xff.
var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alpha); i++ {
		t[alpha[i]] = byte(i)
	}
	t['-'] = 62 // URL-safe alphabet, seen in the wild
	t['_'] = 63
	return t
}()

// decodeBase64 decodes base64 leniently, skipping characters outside the
// alphabet; an "=" ends the quantum (so concatenated encodings decode). ok
// is false when something other than white space was skipped.
func decodeBase64(in []byte) (out []byte, ok bool) {
	// Well-formed input (the standard decoder skips CR and LF) is the
	// common case.
	out = make([]byte, base64.StdEncoding.DecodedLen(len(in)))
	if n, err := base64.StdEncoding.Decode(out, in); err == nil {
		return out[:n], true
	}
	out = out[:0]
	ok = true
	var acc uint32
	bits := 0
	for _, c := range in {
		v := b64[c]
		if v == 0xff {
			if c == '=' {
				acc, bits = 0, 0
				continue
			}
			if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				ok = false
			}
			continue
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>uint(bits)))
			acc &= 1<<uint(bits) - 1
		}
	}
	return out, ok
}

// decodeQP decodes quoted-printable leniently (RFC 2045 §6.7): soft line
// breaks are removed, =XX becomes a byte, any other "=" is kept.
func decodeQP(in []byte) []byte {
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		// A soft line break, possibly with trailing white space.
		j := i + 1
		for j < len(in) && (in[j] == ' ' || in[j] == '\t') {
			j++
		}
		if j < len(in) && in[j] == '\n' {
			i = j
			continue
		}
		if j+1 < len(in) && in[j] == '\r' && in[j+1] == '\n' {
			i = j + 1
			continue
		}
		if j == len(in) {
			break
		}
		if i+2 < len(in) {
			a, ok1 := unhex(in[i+1])
			b, ok2 := unhex(in[i+2])
			if ok1 && ok2 {
				out = append(out, a<<4|b)
				i += 2
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// decodeUU decodes the first uuencoded file in body ("begin" … "end").
func decodeUU(body []byte) []byte {
	var out []byte
	in := false
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		line = bytes.TrimRight(line, "\r")
		if !in {
			in = bytes.HasPrefix(line, []byte("begin "))
			continue
		}
		if bytes.Equal(line, []byte("end")) || len(line) == 0 {
			break
		}
		n := int((line[0] - ' ') & 63)
		line = line[1:]
		var dec []byte
		for i := 0; i < len(line) && len(dec) < n; i += 4 {
			var c [4]byte
			for k := 0; k < 4; k++ {
				if i+k < len(line) {
					c[k] = (line[i+k] - ' ') & 63
				}
			}
			dec = append(dec, c[0]<<2|c[1]>>4, c[1]<<4|c[2]>>2, c[2]<<6|c[3])
		}
		if len(dec) > n {
			dec = dec[:n]
		}
		out = append(out, dec...)
	}
	return out
}
