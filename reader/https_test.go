// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
)

// TestOpenAPIDescribesEndpoints: docs/openapi.json describes every HTTPS
// endpoint the reader registers (and sign-in and four eyes, which access
// serves), and nothing else.
func TestOpenAPIDescribesEndpoints(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &spec); err != nil || !strings.HasPrefix(spec.OpenAPI, "3.") {
		t.Fatalf("docs/openapi.json: %v, version %q", err, spec.OpenAPI)
	}
	var described []string
	for p, ops := range spec.Paths {
		for m := range ops {
			described = append(described, strings.ToUpper(m)+" "+p)
		}
	}
	want := []string{"POST /session", "DELETE /session", "GET /me",
		"POST /approvals", "GET /approvals", "GET /approvals/{id}", "POST /approvals/{id}/approve", "POST /approvals/{id}/deny"}
	for _, e := range (&Reader{}).endpoints() {
		want = append(want, e.method+" "+e.path)
	}
	sort.Strings(described)
	sort.Strings(want)
	if strings.Join(described, "\n") != strings.Join(want, "\n") {
		t.Errorf("docs/openapi.json describes\n%s\nwant\n%s", strings.Join(described, "\n"), strings.Join(want, "\n"))
	}
}
