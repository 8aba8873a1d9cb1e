// SPDX-License-Identifier: Apache-2.0

package offsite

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func sampleState() *State {
	s := NewState("a1", "s3://b/p/")
	s.put(Object{Key: "segments/00000001.seg", VersionID: "v1", Size: 10, SHA256: orZeros(""), RetainUntil: time.Unix(1700000000, 0).UTC(),
		IDs: []IDRange{{1, 4}, {7, 7}}})
	return s
}

// TestStateRoundTrip: a state decodes to itself; a changed byte, another
// version and a bad field are refused.
func TestStateRoundTrip(t *testing.T) {
	t.Parallel()
	b, err := sampleState().encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeState(b)
	if err != nil || len(got.Objects) != 1 || got.Objects[0].IDs[1] != (IDRange{7, 7}) {
		t.Fatalf("DecodeState(encode(s)) = %+v, %v", got, err)
	}
	bad := bytes.Replace(b, []byte(`"v1"`), []byte(`"v2"`), 1)
	if _, err := DecodeState(bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a changed byte: %v, want ErrCorrupt", err)
	}
	s := sampleState()
	s.Version = 2
	b2, _ := s.encode()
	if _, err := DecodeState(b2); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("version 2: %v, want ErrUnsupportedVersion", err)
	}
	s = sampleState()
	s.Objects[0].IDs = []IDRange{{5, 2}}
	b3, _ := s.encode()
	if _, err := DecodeState(b3); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a backwards id range: %v, want ErrCorrupt", err)
	}
}

// FuzzDecodeState: the decoder never panics, and what it accepts encodes
// to bytes it accepts again as the same state.
func FuzzDecodeState(f *testing.F) {
	b, _ := sampleState().encode()
	f.Add(b)
	f.Add([]byte("sha256 00\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := DecodeState(in)
		if err != nil {
			return
		}
		out, err := s.encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeState(out)
		if err != nil || len(again.Objects) != len(s.Objects) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
