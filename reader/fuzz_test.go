// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"encoding/json"
	"testing"

	"github.com/sealmail/sealmail/access"
)

// FuzzApprovalPayload: a four-eyes request's payload comes from access.db
// and may be made by hand (POST /api/v1/approvals): whatever it holds, its
// decoding never panics, and what decodes encodes and decodes again to the
// same value.
func FuzzApprovalPayload(f *testing.F) {
	for _, seed := range []string{
		`{"query":"\"jane doe\"","override_retention":true,"messages":[[1,1],[7,2]],"refused":3}`,
		`{"name":"case","created":"2025-03-15T10:00:00Z"}`,
		`{"rules_sha256":"ab","count":2,"changes":[{"id":1,"from":"","to":"2031-01-01T00:00:00Z"}]}`,
		`{"messages":[[18446744073709551615,0]]}`, `{"messages":[[1]]}`, `{"x":1}`, `[]`, `{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range []struct {
			action access.ApprovalAction
			v      func() any
		}{
			{access.ApproveErase, func() any { return &ErasePayload{} }},
			{access.ApproveHoldRelease, func() any { return &HoldReleasePayload{} }},
			{access.ApproveRetentionShorten, func() any { return &ShortenPayload{} }},
		} {
			v := c.v()
			if decodePayload(access.Approval{ID: 1, Action: c.action, Payload: b}, v) != nil {
				continue
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s: encode %+v: %v", c.action, v, err)
			}
			w := c.v()
			if err := decodePayload(access.Approval{ID: 1, Action: c.action, Payload: again}, w); err != nil {
				t.Fatalf("%s: %s does not decode again: %v", c.action, again, err)
			}
			if b2, _ := json.Marshal(w); string(b2) != string(again) {
				t.Fatalf("%s: round trip %s -> %s", c.action, again, b2)
			}
		}
	})
}
