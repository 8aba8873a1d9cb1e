// SPDX-License-Identifier: Apache-2.0

package mimepart

import (
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // RFC 3339, "" for no date
	}{
		{"Tue, 1 Jan 2013 12:00:00 +0200", "2013-01-01T12:00:00+02:00"},
		{"  1 Jan 2013 12:00:00 +0200 (CEST) ", "2013-01-01T12:00:00+02:00"},
		{"Tue, 1 Jan 2013 12:00:00 +0200 (CEST) junk", "2013-01-01T12:00:00+02:00"},
		{"Tue, 1 Jan 2013 12:00 +0200", "2013-01-01T12:00:00+02:00"},
		{"Tue Jan 1 12:00:00 2013", "2013-01-01T12:00:00Z"},
		{"2013-01-01 12:00:00 +0200", "2013-01-01T12:00:00+02:00"},
		{"2013-01-01T12:00:00Z", "2013-01-01T12:00:00Z"},
		{"yesterday", ""},
		{"", ""},
	}
	for _, tt := range tests {
		d, ok := ParseDate(tt.in)
		got := ""
		if ok {
			got = d.Format(time.RFC3339)
		}
		if got != tt.want {
			t.Errorf("ParseDate(%q) = %q, %v, want %q", tt.in, got, ok, tt.want)
		}
	}
}
