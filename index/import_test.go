// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"slices"
	"testing"

	"github.com/sealmail/sealmail"
)

// TestImportedOwnerIsInvolved: the owner of the mailbox an imported copy
// came from can find it (user-scoped access goes by "involved"), though
// no header names them (a Bcc copy, a list mail).
func TestImportedOwnerIsInvolved(t *testing.T) {
	x := openTemp(t)
	imported := sealmail.Envelope{Source: sealmail.SourceImport,
		Imported: &sealmail.Imported{Kind: "mbox", Source: "/old/inbox.mbox", Owner: "Owner@Corp.Example"}}
	docs := []Doc{
		{ID: 1, Raw: msg("list@lists.example", "members@lists.example", "newsletter", "", "news"), Envelopes: []sealmail.Envelope{imported}},
		{ID: 2, Raw: msg("list@lists.example", "members@lists.example", "journaled", "", "news")},
	}
	if err := x.Add(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, x, "involved:owner@corp.example"); !slices.Equal(got, []sealmail.MessageID{1}) {
		t.Errorf("involved:owner@corp.example = %v, want [1]", got)
	}
}
