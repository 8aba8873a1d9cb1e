// SPDX-License-Identifier: Apache-2.0

package mimepart

import "testing"

func TestDecodeWords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"plain", "plain", true},
		{"=?UTF-8?B?w6lww6l0w6k=?= =?ISO-8859-1?Q?caf=E9?=", "épétécafé", true},
		{"a =?utf-8?q?b?=  \r\n =?utf-8?q?c?= d", "a bc d", true},
		// A character split across two words (RFC 2047 §5 forbids it,
		// clients do it).
		{"=?utf-8?B?5pel5pys?= =?utf-8?B?6Kqe?=", "日本語", true},
		{"=?UTF-8?Q?caf=C3?= =?UTF-8?Q?=A9_au_lait?=", "café au lait", true},
		{"=?utf-8?B?w6k?=", "é", true}, // no padding
		{"=?iso-2022-jp?B?GyRCJUYlOSVIGyhC?=", "テスト", true},
		{"=?utf-8*en?Q?x?=", "x", true}, // RFC 2231 §5 language
		{"=?gb2312?B?1tA=?=", "中", true},
		{"=?utf-7?Q?+AGE-?=", "a", true},
		{"=?x-no-such?Q?abc?=", "abc", false},
		{"=?x-unknown?Q?abc?=", "abc", true},
		// Malformed words are kept.
		{"=?utf-8?X?abc?= =?utf-8?B?a b?= =?", "=?utf-8?X?abc?= =?utf-8?B?a b?= =?", true},
		// Undeclared 8-bit text: UTF-8 when valid, else windows-1252.
		{"Caf\xe9 \x80", "Café €", true},
		{"Café", "Café", true},
		// Raw 8-bit inside a Q word: UTF-8 when valid (a transcoding
		// gateway), else in the named charset.
		{"=?iso-8859-1?Q?Fr\xf6sche?=", "Frösche", true},
		{"=?iso-8859-1?Q?Fr\xc3\xb6sche?=", "Frösche", true},
	}
	for _, tt := range tests {
		got, ok := DecodeWords(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("DecodeWords(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
