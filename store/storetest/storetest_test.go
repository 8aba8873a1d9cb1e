// SPDX-License-Identifier: Apache-2.0

package storetest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealmail/sealmail/store"
	"github.com/sealmail/sealmail/store/storetest"
)

// recorder is a testing.TB that records errors instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) { r.errs = append(r.errs, format) }
func (r *recorder) Helper()                           {}

// TestCheckFindsDamage: Check is silent on a sound store and reports a
// sealed segment someone changed.
func TestCheckFindsDamage(t *testing.T) {
	t.Parallel()
	s, _ := storetest.New(t, store.Options{SealSize: 1})
	ctx := context.Background()
	for _, body := range []string{"one", "two"} {
		if _, err := s.Append(ctx, &store.Message{Original: []byte(body), Received: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	r := &recorder{TB: t}
	storetest.Check(r, s)
	if len(r.errs) != 0 {
		t.Fatalf("Check on a sound store reported %q", r.errs)
	}
	segs, _ := s.Segments()
	var sealed string
	for _, si := range segs {
		if si.State == store.SegmentSealed && si.Records > 0 {
			sealed = filepath.Join(s.Dir(), "segments", si.Seq.String()+".seg")
		}
	}
	if sealed == "" {
		t.Fatalf("no sealed segment with records in %+v", segs)
	}
	b, _ := os.ReadFile(sealed)
	b[len(b)-1] ^= 1
	os.Chmod(sealed, 0o644)
	if err := os.WriteFile(sealed, b, 0o444); err != nil {
		t.Fatal(err)
	}
	os.Chmod(sealed, 0o444)
	storetest.Check(r, s)
	if len(r.errs) == 0 {
		t.Error("Check did not report a changed sealed segment")
	}
	// Put it back, so that New's own check at cleanup passes.
	b[len(b)-1] ^= 1
	os.Chmod(sealed, 0o644)
	os.WriteFile(sealed, b, 0o444)
	os.Chmod(sealed, 0o444)
}
