// SPDX-License-Identifier: Apache-2.0

package sealmail_test

import (
	"strings"
	"testing"

	"github.com/sealmail/sealmail"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"512", 512, true}, {"512B", 512, true}, {"500K", 500 << 10, true}, {"500k", 500 << 10, true},
		{"10M", 10 << 20, true}, {"10MB", 10 << 20, true}, {"64MiB", 64 << 20, true}, {"1GiB", 1 << 30, true},
		{"1gib", 1 << 30, true}, {"2T", 2 << 40, true}, {"1000000T", 1000000 << 40, true},
		{"8388607T", 8388607 << 40, true}, // the largest count of T that fits
		{"", 0, false}, {"lots", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1.5M", 0, false}, {"M", 0, false},
		{"MiB", 0, false}, {"2 GB", 0, false}, {"5iB", 0, false}, {"1KK", 0, false},
		{"8388608T", 0, false},            // 2^63: overflows
		{"9223372036854775808", 0, false}, // 2^63
		{"99999999999999999999G", 0, false},
	} {
		got, err := sealmail.ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestFormatSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0"}, {1000, "1000"}, {1024, "1KiB"}, {64 << 20, "64MiB"}, {1 << 30, "1GiB"}, {3 << 40, "3TiB"}, {1<<30 + 1, "1073741825"}} {
		if got := sealmail.FormatSize(tc.n); got != tc.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "10M", "64MiB", "1gib", "8388607T", "8388608T", "2 GB", "KiB", "1.5M"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := sealmail.ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d: negative", s, n)
		}
		if strings.ContainsAny(s, " \t-+.") {
			t.Fatalf("ParseSize(%q) = %d: accepted a sign, space or point", s, n)
		}
		if m, err := sealmail.ParseSize(sealmail.FormatSize(n)); err != nil || m != n {
			t.Fatalf("ParseSize(FormatSize(%d)) = %d, %v", n, m, err)
		}
	})
}
