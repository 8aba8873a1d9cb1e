// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
)

// catalogView is what a catalog says, as list, get and verify see it.
type catalogView struct {
	Messages []store.MessageInfo
	Records  map[sealmail.MessageID][]store.Location
	Segments []store.SegmentInfo
	Stats    store.Stats
	Holds    []string
	Members  map[string][]sealmail.MessageID
}

func viewCatalog(t *testing.T, dir string) catalogView {
	t.Helper()
	s, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v := catalogView{Records: map[sealmail.MessageID][]store.Location{}}
	s.List(0, func(m *store.MessageInfo) (bool, error) {
		v.Messages = append(v.Messages, *m)
		if m.State == store.StateLive {
			_, recs, err := s.Records(m.ID)
			if err != nil {
				t.Errorf("Records(%d): %v", m.ID, err)
			}
			for _, r := range recs {
				v.Records[m.ID] = append(v.Records[m.ID], r.Location)
			}
		}
		return true, nil
	})
	segs, _ := s.Segments()
	for _, si := range segs {
		si.Sealed = time.Time{} // recover takes the audit entry's time
		v.Segments = append(v.Segments, si)
	}
	v.Stats, _ = s.Stats()
	b, _ := s.Holds()
	var hs policy.Holds
	if len(b) > 0 {
		if err := hs.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
	}
	v.Members = map[string][]sealmail.MessageID{}
	for _, h := range hs.All() {
		v.Holds = append(v.Holds, fmt.Sprintf("%s %q active=%v", h.Name, h.Query, h.Active()))
		if h.Active() {
			hm, err := s.HoldMembers(h.Name, func(id sealmail.MessageID) error { v.Members[h.Name] = append(v.Members[h.Name], id); return nil })
			if err != nil {
				t.Fatal(err)
			}
			v.Holds = append(v.Holds, fmt.Sprintf("%s through %d", h.Name, hm.Through))
		}
	}
	return v
}

// TestRecoverRebuildsCatalog: delete the catalog, or corrupt it, and
// recover rebuilds it from the segments and the audit log: messages with
// their receipts, retention, deletions (compacted or not), segments with
// their seals and compactions, holds with their members and counters are
// as before, and verify finds nothing.
func TestRecoverRebuildsCatalog(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2025, 3, 15, 10, 0, 0, 0, time.UTC)}
	pol := &policy.Policy{Default: policy.Rule{Name: "short", Keep: "30d"},
		Rules: []policy.Rule{{Name: "letters", Headers: map[string]string{"Subject": "letter"}, Keep: "6y"}}}
	id, _ := age.GenerateX25519Identity()
	dir := t.TempDir()
	opts := Options{Now: clk.now, Retention: pol, MinFreeBytes: -1, Store: store.Options{SealSize: 4 << 10}}
	a, err := Create(dir, []string{id.Recipient().String()}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithActor(context.Background(), "test")
	for i := range 12 {
		subj := fmt.Sprintf("note %d", i)
		if i%4 == 0 {
			subj = fmt.Sprintf("letter %d", i)
		}
		env := &sealmail.Envelope{MailFrom: "a@example.com", RcptTo: []string{"b@example.org"}, ClientIP: "192.0.2.1", Received: clk.now()}
		data := fmt.Appendf(nil, "Subject: %s\r\n\r\n%s\r\n", subj, make([]byte, 700+i))
		if _, err := a.Ingest(ctx, env, data); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 { // a second receipt for another recipient
			env.RcptTo = []string{"c@example.org"}
			if _, err := a.Ingest(ctx, env, data); err != nil {
				t.Fatal(err)
			}
		}
		clk.add(time.Hour)
	}
	// Holds with the members a reader would post: note 5 is message 6,
	// note 6 message 7.
	for _, h := range []struct {
		name, q string
		id      sealmail.MessageID
	}{{"case-1", `subject:"note 5"`, 6}, {"old", `subject:"note 6"`, 7}} {
		if _, err := a.CreateHold(ctx, h.name, h.q, "litigation"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.AddHoldMembers(ctx, h.name, []sealmail.MessageID{h.id}, 40); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.ReleaseHold(ctx, "old", "settled"); err != nil {
		t.Fatal(err)
	}
	clk.add(31 * 24 * time.Hour)
	rows, err := a.List(ctx, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v := PurgeVerdict{Holds: []string{"case-1"}}
	for _, r := range rows {
		v.Delete = append(v.Delete, VerdictItem{ID: r.ID, Receipts: r.Receipts, RetainUntil: r.RetainUntil})
	}
	rep, err := a.ExecutePurge(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) == 0 || rep.Reclaimed == 0 {
		t.Fatalf("purge = %+v: want deletions and a compaction to recover", rep)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	before := viewCatalog(t, dir)
	if before.Stats.Sealed == 0 || len(before.Holds) != 3 || fmt.Sprint(before.Members) != "map[case-1:[6]]" {
		t.Fatalf("setup: %+v", before)
	}

	catalog := filepath.Join(dir, "catalog.db")
	for _, damage := range []struct {
		name string
		do   func() error
	}{
		{"deleted", func() error { return os.Remove(catalog) }},
		{"corrupt", func() error { return os.WriteFile(catalog, make([]byte, 64<<10), 0o600) }},
		// A recover cut off by a crash before its rename: no catalog (or the
		// old one) and a torn catalog.db.recover, which the next run must
		// discard rather than trust.
		{"deleted after a torn rebuild", func() error {
			if err := os.Remove(catalog); err != nil {
				return err
			}
			return os.WriteFile(catalog+".recover", make([]byte, 12<<10), 0o600)
		}},
	} {
		if err := damage.do(); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, opts); err == nil && damage.name == "corrupt" {
			t.Fatal("a corrupt catalog opened")
		}
		res, err := Recover(ctx, dir, opts)
		if err != nil {
			t.Fatalf("%s catalog: Recover: %v", damage.name, err)
		}
		if len(res.Findings) != 0 {
			t.Errorf("%s catalog: Recover findings: %v", damage.name, res.Findings)
		}
		after := viewCatalog(t, dir)
		if !reflect.DeepEqual(after.Messages, before.Messages) {
			for i := range min(len(after.Messages), len(before.Messages)) {
				if !reflect.DeepEqual(after.Messages[i], before.Messages[i]) {
					t.Errorf("%s catalog: message %d\n recovered %+v\n    before %+v", damage.name, before.Messages[i].ID, after.Messages[i], before.Messages[i])
				}
			}
			t.Fatalf("%s catalog: %d messages recovered, %d before", damage.name, len(after.Messages), len(before.Messages))
		}
		for _, f := range []struct {
			what      string
			got, want any
		}{
			{"records", after.Records, before.Records}, {"segments", after.Segments, before.Segments},
			{"holds", after.Holds, before.Holds}, {"stats", after.Stats, before.Stats},
		} {
			if !reflect.DeepEqual(f.got, f.want) {
				t.Errorf("%s catalog: recovered %s\n %+v\nwant\n %+v", damage.name, f.what, f.got, f.want)
			}
		}
		a, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("%s catalog: open after recover: %v", damage.name, err)
		}
		if v, err := a.Verify(ctx, nil); err != nil || !v.OK() {
			t.Errorf("%s catalog: verify after recover: %v %v", damage.name, err, v.Problems)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		before = viewCatalog(t, dir) // the verify run is the only change
	}
}
