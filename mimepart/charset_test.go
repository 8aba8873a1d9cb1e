// SPDX-License-Identifier: Apache-2.0

package mimepart

import (
	"testing"

	"golang.org/x/text/encoding/charmap"
)

func TestDecodeCharset(t *testing.T) {
	t.Parallel()
	tests := []struct {
		label string
		in    string
		want  string
		ok    bool
	}{
		{"", "Gr\xfc\xdfe", "Grüße", true},
		{"UTF-8", "Grüße", "Grüße", true},
		{"us-ascii", "\x80", "€", true},
		{"ISO-8859-1", "\x80", "€", true}, // WHATWG: windows-1252
		{"iso-8859-2", "\xa3\xf3d\xbc", "Łódź", true},
		{"gb2312", "\x81\x40", "丂", true}, // GBK, beyond GB2312
		{"cp932", "\x93\xfa", "日", true},
		{"ks_c_5601-1987", "\xbe\xc8", "안", true},
		{`"koi8-r"`, "\xf0", "П", true},
		{"unicode", "\xff\xfeA\x00", "A", true},
		{"unicode", "\xfe\xff\x00A", "A", true},
		{"unicode", "A\x00", "A", true},
		{"utf-16le", "A\x00", "A", true},
		{"utf-7", "Fr+APY-sche 1+-1", "Frösche 1+1", true},
		{"x-no-such", "abc\xe9", "abcé", false},
	}
	for _, tt := range tests {
		got, ok := DecodeCharset(tt.label, []byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("DecodeCharset(%q, %q) = %q, %v, want %q, %v", tt.label, tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestWindows1252 checks the fallback table against x/text's.
func TestWindows1252(t *testing.T) {
	t.Parallel()
	for b := 0x80; b < 0x100; b++ {
		want, err := charmap.Windows1252.NewDecoder().String(string([]byte{byte(b)}))
		if err != nil {
			t.Fatal(err)
		}
		if got := fallback([]byte{byte(b)}); got != want {
			t.Errorf("fallback(%#x) = %q, want %q", b, got, want)
		}
	}
}
