// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/store"
	"github.com/sealmail/sealmail/store/storetest"
)

// TestAuditAheadOfSegment: the ingest audit entry is synced in parallel with
// the segment, so a power cut can keep the entry and lose the record (issue
// #11, defect 4). At the next start the archive records the entry as lost
// (never acknowledged), gives its id to nobody else, and verify, once the
// segment has grown past the lost record's offset, reports nothing.
func TestAuditAheadOfSegment(t *testing.T) {
	t.Parallel()
	ident, _ := age.GenerateX25519Identity()
	dir := t.TempDir()
	t.Cleanup(func() { storetest.CheckDir(t, dir) })
	ctx := WithActor(context.Background(), "test")
	a, err := Create(dir, []string{ident.Recipient().String()}, Options{MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	env := &sealmail.Envelope{MailFrom: "a@example.com", RcptTo: []string{"b@example.org"}, ClientIP: "192.0.2.1"}
	for i := range 2 {
		if _, err := a.Ingest(ctx, env, []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i))); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := a.store.Stats()
	segs, _ := a.store.Segments()
	a.Close()

	// What a crash leaves: the audit entry of message 3, not its record.
	log, err := audit.Open(auditDir(dir), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lost := store.Committed{Kind: store.KindMessage, ID: st.LastID + 1, Receipt: 1, Size: 20,
		Location: store.Location{Segment: segs[0].Seq, Offset: segs[0].Size, Length: 900}, RecordSHA256: [32]byte{1, 2, 3}}
	if _, err := log.Append(ctx, audit.Event{Type: audit.TypeIngest, Actor: "smtpd", Fields: ingestOf(lost)}); err != nil {
		t.Fatal(err)
	}
	log.Close()

	a, err = Open(dir, Options{MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := range 5 {
		id, err := a.Ingest(ctx, env, []byte(fmt.Sprintf("Subject: after %d\r\n\r\n%s\r\n", i, strings.Repeat("x", 400))))
		if err != nil {
			t.Fatal(err)
		}
		if id == lost.ID {
			t.Fatalf("id %d, named by the audit log for a lost record, was given again", id)
		}
	}
	rep, err := a.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("verify after the reconciled crash: %q", rep.Problems)
	}
}
