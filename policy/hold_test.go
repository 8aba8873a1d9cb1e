// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHoldLifecycle(t *testing.T) {
	t.Parallel()
	t0 := date(2026, 3, 1, 9, 0, time.UTC)
	var s Holds

	h, err := s.Create("case-4711", "from:@acme.example after:2024-01-01", "Acme v. Us, case 4711", "legal@example.com", t0)
	if err != nil {
		t.Fatalf("Create() = %v", err)
	}
	if !h.Active() || !h.Created.Equal(t0) || h.CreatedBy != "legal@example.com" {
		t.Errorf("Create() = %+v, want an active hold created %v", h, t0)
	}

	// Duplicate while active.
	if _, err := s.Create("case-4711", "*", "again", "legal@example.com", t0); err == nil {
		t.Errorf("Create(duplicate active name) = nil, want error")
	}
	// Release needs a reason and a releaser, and a sane time.
	if _, err := s.Release("case-4711", "legal@example.com", "", t0.Add(time.Hour)); err == nil {
		t.Errorf("Release(no reason) = nil, want error")
	}
	if _, err := s.Release("case-4711", " ", "settled", t0.Add(time.Hour)); err == nil {
		t.Errorf("Release(no releaser) = nil, want error")
	}
	if _, err := s.Release("case-4711", "legal@example.com", "settled", t0.Add(-time.Hour)); err == nil {
		t.Errorf("Release(before creation) = nil, want error")
	}
	if _, err := s.Release("case-9", "legal@example.com", "settled", t0.Add(time.Hour)); err == nil {
		t.Errorf("Release(unknown) = nil, want error")
	}
	if got := len(s.Active()); got != 1 {
		t.Fatalf("len(Active()) after refused releases = %d, want 1", got)
	}

	t1 := t0.Add(48 * time.Hour)
	r, err := s.Release("case-4711", "dpo@example.com", "settled 2026-03-03", t1)
	if err != nil {
		t.Fatalf("Release() = %v", err)
	}
	if r.Active() || !r.Released.Equal(t1) || r.ReleasedBy != "dpo@example.com" || r.ReleaseReason != "settled 2026-03-03" {
		t.Errorf("Release() = %+v, want released at %v", r, t1)
	}
	if _, err := s.Release("case-4711", "dpo@example.com", "twice", t1); err == nil {
		t.Errorf("Release(already released) = nil, want error")
	}
	if got := len(s.Active()); got != 0 {
		t.Errorf("len(Active()) after release = %d, want 0", got)
	}
	// Released holds stay on record.
	if all := s.All(); len(all) != 1 || all[0].Active() {
		t.Errorf("All() after release = %+v, want the released hold", all)
	}

	// Re-create after release.
	t2 := t1.Add(time.Hour)
	if _, err := s.Create("case-4711", "from:@acme.example", "appeal", "legal@example.com", t2); err != nil {
		t.Fatalf("Create(after release) = %v", err)
	}
	if all := s.All(); len(all) != 2 || all[0].Active() || !all[1].Active() {
		t.Errorf("All() = %+v, want released then active", all)
	}
	if g, ok := s.Get("case-4711"); !ok || !g.Active() || g.Reason != "appeal" {
		t.Errorf("Get(case-4711) = %+v, %v, want the active re-created hold", g, ok)
	}
	if _, ok := s.Get("nope"); ok {
		t.Errorf("Get(nope) found a hold")
	}

	// All returns a copy.
	all := s.All()
	all[0].Reason = "changed"
	if s.All()[0].Reason == "changed" {
		t.Errorf("All() exposes the internal slice")
	}
}

func TestHoldCreateValidation(t *testing.T) {
	t.Parallel()
	t0 := date(2026, 3, 1, 9, 0, time.UTC)
	tests := []struct {
		name, hold, query, reason, by string
		now                           time.Time
		wantIn                        string
	}{
		{"ok", "case-1", "*", "r", "me", t0, ""},
		{"empty name", "", "*", "r", "me", t0, "name"},
		{"bad name", "case 1", "*", "r", "me", t0, "name"},
		{"long name", strings.Repeat("a", 65), "*", "r", "me", t0, "name"},
		{"empty reason", "c", "*", "  ", "me", t0, "reason"},
		{"empty creator", "c", "*", "r", "", t0, "creator"},
		{"empty query", "c", " ", "r", "me", t0, "query"},
		{"bad query", "c", "from:(", "r", "me", t0, "query: "},
		{"bad query date", "c", "after:2024-13-01", "r", "me", t0, "query: "},
		{"zero time", "c", "*", "r", "me", time.Time{}, "time"},
	}
	for _, tt := range tests {
		var s Holds
		_, err := s.Create(tt.hold, tt.query, tt.reason, tt.by, tt.now)
		if tt.wantIn == "" {
			if err != nil {
				t.Errorf("%s: Create() = %v, want nil", tt.name, err)
			}
			continue
		}
		var he *HoldError
		if !errors.As(err, &he) || !strings.Contains(he.Msg, tt.wantIn) {
			t.Errorf("%s: Create() = %v, want *HoldError mentioning %q", tt.name, err, tt.wantIn)
		}
		if len(s.All()) != 0 {
			t.Errorf("%s: refused Create() added a hold", tt.name)
		}
	}
}

func TestHoldsJSONRoundTrip(t *testing.T) {
	t.Parallel()
	berlin := mustZone(t, "Europe/Berlin")
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 123456789, berlin)
	var s Holds
	mustCreate := func(name, q string, at time.Time) {
		t.Helper()
		if _, err := s.Create(name, q, "reason for "+name, "legal@example.com", at); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate("case-1", "from:@acme.example", t0)
	mustCreate("case-2", `subject:"quarterly report" OR to:cfo@example.com`, t0.Add(time.Minute))
	if _, err := s.Release("case-1", "dpo@example.com", "settled", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	mustCreate("case-1", "*", t0.Add(2*time.Hour))

	b, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `{"version":1,"holds":[{"name":"case-1",`) {
		t.Errorf("Marshal() = %s, want a version 1 document", b)
	}
	var back Holds
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal(%s) = %v", b, err)
	}
	if !reflect.DeepEqual(back.All(), s.All()) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back.All(), s.All())
	}
	b2, _ := json.Marshal(&back)
	if string(b2) != string(b) {
		t.Errorf("re-encoding differs:\n%s\n%s", b2, b)
	}
	// A value (not a pointer) encodes the same, and copies are snapshots.
	snap := s
	if bv, _ := json.Marshal(snap); string(bv) != string(b) {
		t.Errorf("Marshal(value) = %s, want %s", bv, b)
	}
	if _, err := s.Release("case-2", "dpo@example.com", "done", t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("case-3", "*", "r", "me", t0.Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if len(snap.Active()) != 2 || len(snap.All()) != 3 {
		t.Errorf("snapshot changed with the original: %+v", snap.All())
	}
	// Empty set.
	var empty Holds
	b, _ = json.Marshal(&empty)
	if string(b) != `{"version":1,"holds":[]}` {
		t.Errorf("Marshal(empty) = %s", b)
	}
	if err := json.Unmarshal(b, &back); err != nil || len(back.All()) != 0 {
		t.Errorf("Unmarshal(empty) = %v, %d holds", err, len(back.All()))
	}
}

func TestHoldsJSONReject(t *testing.T) {
	t.Parallel()
	const ok = `{"name":"c","query":"*","reason":"r","created_by":"me","created":"2026-03-01T09:00:00Z"}`
	tests := []struct {
		name, in string
		version  bool // want ErrUnsupportedVersion
	}{
		{"version 2", `{"version":2,"holds":[]}`, true},
		{"version 0", `{"version":0,"holds":[]}`, true},
		{"no version", `{"holds":[]}`, false},
		{"not an object", `[]`, false},
		{"unknown field", `{"version":1,"holds":[],"extra":1}`, false},
		{"unknown hold field", `{"version":1,"holds":[{"name":"c","query":"*","reason":"r","created_by":"me","created":"2026-03-01T09:00:00Z","x":1}]}`, false},
		{"two active with one name", `{"version":1,"holds":[` + ok + `,` + ok + `]}`, false},
		{"empty reason", `{"version":1,"holds":[{"name":"c","query":"*","reason":"","created_by":"me","created":"2026-03-01T09:00:00Z"}]}`, false},
		{"no creation time", `{"version":1,"holds":[{"name":"c","query":"*","reason":"r","created_by":"me"}]}`, false},
		{"released without reason", `{"version":1,"holds":[{"name":"c","query":"*","reason":"r","created_by":"me","created":"2026-03-01T09:00:00Z","released":"2026-03-02T09:00:00Z","released_by":"x"}]}`, false},
		{"released before created", `{"version":1,"holds":[{"name":"c","query":"*","reason":"r","created_by":"me","created":"2026-03-01T09:00:00Z","released":"2026-02-02T09:00:00Z","released_by":"x","release_reason":"y"}]}`, false},
		{"release fields on active", `{"version":1,"holds":[{"name":"c","query":"*","reason":"r","created_by":"me","created":"2026-03-01T09:00:00Z","released_by":"x"}]}`, false},
		{"trailing data", `{"version":1,"holds":[]} {}`, false},
	}
	for _, tt := range tests {
		var s Holds
		if _, err := s.Create("keep", "*", "r", "me", date(2026, 1, 1, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		err := s.UnmarshalJSON([]byte(tt.in))
		if err == nil {
			t.Errorf("%s: UnmarshalJSON(%s) = nil, want error", tt.name, tt.in)
			continue
		}
		if got := errors.Is(err, ErrUnsupportedVersion); got != tt.version {
			t.Errorf("%s: UnmarshalJSON() = %v; errors.Is(ErrUnsupportedVersion) = %v, want %v", tt.name, err, got, tt.version)
		}
		if len(s.All()) != 1 {
			t.Errorf("%s: failed UnmarshalJSON changed the set: %+v", tt.name, s.All())
		}
	}
}
