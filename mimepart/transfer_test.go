// SPDX-License-Identifier: Apache-2.0

package mimepart

import "testing"

func TestDecodeTransfer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cte, in, want string
		ok            bool
	}{
		{"", "as is=41", "as is=41", true},
		{"7BIT", "x", "x", true},
		{"8bit; junk", "x", "x", true},
		{"base64", "aGVs\r\nbG8=\r\n", "hello", true},
		{" Base64 ", "aGVsbG8", "hello", true},                 // no padding
		{"base64", "aGVsbG8gd29y!!bGQ=", "hello world", false}, // garbage skipped and reported
		{"base64", "aGk=aGk=", "hihi", true},                   // concatenated encodings
		{"base64", "-_8", "\xfb\xff", true},                    // URL-safe alphabet
		{"quoted-printable", "au=DFer=\r\nordentlich =3D ok=\n", "au\xdferordentlich = ok", true},
		{"quoted-printable", "a=zz b= \r\nc=", "a=zz bc", true},
		{"x-uuencode", "begin 644 a.txt\r\n+:&5L;&\\@=V]R;&0`\r\n`\r\nend\r\n", "hello world", true},
		{"x-custom", "raw", "raw", false},
	}
	for _, tt := range tests {
		got, ok := DecodeTransfer(tt.cte, []byte(tt.in))
		if string(got) != tt.want || ok != tt.ok {
			t.Errorf("DecodeTransfer(%q, %q) = %q, %v, want %q, %v", tt.cte, tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
