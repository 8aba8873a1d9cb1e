// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"context"
	"errors"
	"testing"
)

// Fields may be a struct with JSON tags (the schema of its event type);
// what does not encode as a JSON object is refused, and the entry read
// back decodes into the same struct.
func TestStructFields(t *testing.T) {
	t.Parallel()
	dir, l := newLog(t, Options{})
	type seal struct {
		Segment string `json:"segment"`
		Size    uint64 `json:"size"`
	}
	ctx := context.Background()
	want := seal{Segment: "00000007", Size: 1 << 63}
	if _, err := l.Append(ctx, Event{Type: TypeSegmentSeal, Fields: want}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, Event{Type: TypeSegmentSeal, Fields: (*seal)(nil)}); err != nil {
		t.Errorf("Append(nil struct pointer) = %v, want no facts", err)
	}
	for _, bad := range []any{"text", []int{1}, 7} {
		if _, err := l.Append(ctx, Event{Type: TypeSegmentSeal, Fields: bad}); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("Append(Fields %T) = %v, want ErrInvalidEvent", bad, err)
		}
	}
	var got []seal
	var raw []string
	err := Read(ctx, dir, Filter{Types: []string{TypeSegmentSeal}}, func(e Entry) error {
		var s seal
		if err := e.DecodeFields(&s); err != nil {
			return err
		}
		got = append(got, s)
		raw = append(raw, string(e.rawFields))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != want || got[1] != (seal{}) || raw[1] != "{}" {
		t.Errorf("read back %+v (raw %q), want %+v then no facts", got, raw, want)
	}
}
