// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"fmt"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
)

// TestHoldSeesLaterReceipts (defect 2 of issue #11): a hold on a recipient
// who is only in the second receipt of a message (the same original
// journaled again for carol) protects the message from purge; before, only
// the first receipt reached the index, the hold matched nothing and purge
// deleted held mail.
func TestHoldSeesLaterReceipts(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2025, 3, 15, 10, 0, 0, 0, time.UTC)}
	ret := &policy.Policy{Default: policy.Rule{Name: "day", Keep: "1d"}}
	id, _ := age.GenerateX25519Identity()
	a, err := Create(t.TempDir(), []string{id.Recipient().String()}, Options{Now: clk.now, Retention: ret, MinFreeBytes: -1,
		Store: store.Options{SealSize: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := WithActor(context.Background(), "test")
	data := []byte("Subject: board minutes\r\nFrom: ceo@example.com\r\n\r\nconfidential\r\n")
	other := []byte("Subject: lunch\r\nFrom: ceo@example.com\r\n\r\npizza\r\n")
	var ids []sealmail.MessageID
	for _, c := range []struct {
		rcpt string
		data []byte
	}{{"alice@example.org", data}, {"bob@example.org", other}, {"carol@example.org", data}} {
		env := &sealmail.Envelope{MailFrom: "ceo@example.com", RcptTo: []string{c.rcpt}, ClientIP: "192.0.2.1", Received: clk.now()}
		mid, err := a.Ingest(ctx, env, c.data)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, mid)
	}
	if ids[2] != ids[0] {
		t.Fatalf("the second copy got id %d, want receipt 2 of %d", ids[2], ids[0])
	}
	deadline := time.Now().Add(30 * time.Second)
	for st, _ := a.Status(ctx); st.IndexWatermark < 2; st, _ = a.Status(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("index did not catch up: watermark %d", st.IndexWatermark)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res, err := a.Search(ctx, "to:carol@example.org", SearchOptions{}); err != nil || res.Total != 1 || res.Hits[0].ID != ids[0] {
		t.Fatalf("search to:carol = %+v, %v; want message %d", res, err, ids[0])
	}
	if _, err := a.CreateHold(ctx, "carol", "to:carol@example.org", "litigation"); err != nil {
		t.Fatal(err)
	}
	clk.add(48 * time.Hour)
	rep, err := a.Purge(ctx, PurgeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.Deleted) != fmt.Sprint([]uint64{uint64(ids[1])}) || rep.Kept["held"] != 1 {
		t.Fatalf("purge = %+v; want only %d deleted and the held one kept", rep, ids[1])
	}
	if _, err := a.Get(ctx, ids[0]); err != nil {
		t.Fatalf("held message %d after purge: %v", ids[0], err)
	}
}
