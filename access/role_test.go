// SPDX-License-Identifier: Apache-2.0

package access

import (
	"os"
	"strings"
	"testing"
)

func TestRoleGrants(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role Role
		perm Permission
		want Grant
	}{
		{RoleAdmin, PermUsers, GrantAll},
		{RoleAdmin, PermAuditLog, GrantAll},
		{RoleAdmin, PermSearch, GrantNone}, // an admin reads no content
		{RoleAdmin, PermExport, GrantNone},
		{RoleAuditor, PermSearch, GrantScope},
		{RoleAuditor, PermExport, GrantScope},
		{RoleAuditor, PermHold, GrantNone}, // read-only
		{RoleAuditor, PermUsers, GrantNone},
		{RoleOfficer, PermHold, GrantAll},
		{RoleOfficer, PermErasure, GrantAll},
		{RoleOfficer, PermPolicy, GrantAll},
		{RoleOfficer, PermUsers, GrantNone},
		{RoleOfficer, PermUnlock, GrantAll},
		{RoleAdmin, PermUnlock, GrantNone},
		{RoleUser, PermSearch, GrantOwn},
		{RoleUser, PermExport, GrantNone},
		{RoleUser, PermSession, GrantAll},
		{"root", PermSession, GrantNone},
		{RoleAdmin, "unknown", GrantNone},
	} {
		if got := tc.role.Grant(tc.perm); got != tc.want {
			t.Errorf("%s.Grant(%s) = %s, want %s", tc.role, tc.perm, got, tc.want)
		}
	}
	for _, r := range Roles() {
		if got, err := ParseRole(string(r)); got != r || err != nil {
			t.Errorf("ParseRole(%s) = %s, %v", r, got, err)
		}
	}
}

// TestMatrixDocumented: docs/access.md shows the permission matrix exactly as
// the code has it.
func TestMatrixDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/access.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), MarkdownMatrix()) {
		t.Errorf("docs/access.md does not contain the permission matrix; put this table in it:\n%s", MarkdownMatrix())
	}
}
