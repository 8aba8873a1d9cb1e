// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/sealmail/sealmail"
)

func TestRecipientSet(t *testing.T) {
	t.Parallel()
	rs := newRecipientSet([]string{" Journal@Archive.Example ", "@Journal.Example", ""})
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"journal@archive.example", true},
		{"JOURNAL@archive.EXAMPLE", true},
		{"other@archive.example", false},
		{"x@journal.example", true},
		{"x@sub.journal.example", false},
		{"x@journal.example.evil", false},
		{"journal.example", false},
		{"postmaster", false},
		{"", false},
	} {
		if got := rs.match(tc.addr); got != tc.want {
			t.Errorf("match(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	for _, patterns := range [][]string{nil, {}, {"", " "}} {
		if !newRecipientSet(patterns).match("anyone@anywhere") {
			t.Errorf("newRecipientSet(%q).match(anyone) = false, want true", patterns)
		}
	}
}

func TestReplyFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "<nil>"},
		{sealmail.ErrStorageFull, "452 4.3.1"},
		{fmt.Errorf("ingest: %w", fmt.Errorf("append: %w", sealmail.ErrStorageFull)), "452 4.3.1"},
		{errMessageTooBig, "552 5.3.4"},
		{smtp.ErrDataTooLarge, "552 5.3.4"},
		{replyBadRcpt, "550 5.1.1"},
		{errors.New("open /var/lib/sealmail/catalog.db: permission denied"), "451 4.3.0"},
		{io.ErrUnexpectedEOF, "451 4.3.0"},
		{smtp.ErrDataReset, "451 4.3.0"},
	} {
		got := "<nil>"
		if r := replyFor(tc.err); r != nil {
			got = fmt.Sprintf("%d %d.%d.%d", r.Code, r.EnhancedCode[0], r.EnhancedCode[1], r.EnhancedCode[2])
			if r.Code/100 == 5 && tc.want[0] != '5' {
				t.Errorf("replyFor(%v) is permanent", tc.err)
			}
		}
		if got != tc.want {
			t.Errorf("replyFor(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
