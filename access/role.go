// SPDX-License-Identifier: Apache-2.0

package access

import (
	"fmt"
	"strings"
)

// Role is what a user is for. Every user has exactly one.
type Role string

// The roles (docs/access.md, "Roles").
const (
	// RoleAdmin manages users, configuration and status and reads the audit
	// log; it never sees message content.
	RoleAdmin Role = "admin"
	// RoleAuditor searches, reads and exports, read-only, optionally limited
	// to a query scope and until an expiry date (the tax auditor of GoBD).
	RoleAuditor Role = "auditor"
	// RoleOfficer places and releases holds, exports, requests erasure and
	// applies the retention policy.
	RoleOfficer Role = "officer"
	// RoleUser reads only messages where one of the user's addresses is the
	// sender or a recipient in any receipt.
	RoleUser Role = "user"
)

// Roles lists every role in the order of the matrix's columns.
func Roles() []Role { return []Role{RoleAdmin, RoleAuditor, RoleOfficer, RoleUser} }

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles() {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("%w role %q (want admin, auditor, officer or user)", ErrInvalid, s)
}

// Permission is a class of endpoints. Every endpoint is registered with
// exactly one.
type Permission string

// The permissions, one per row of [Matrix].
const (
	// PermSession: sign out, list and revoke one's own sessions, see who one
	// is. Every role has it.
	PermSession Permission = "session"
	// PermUsers: list, add, disable, enable and reset users; see and revoke
	// anyone's sessions.
	PermUsers Permission = "users"
	// PermConfig: read and change the reader's configuration; maintain it
	// (reindex).
	PermConfig Permission = "config"
	// PermStatus: the reader's and the receiver's status.
	PermStatus Permission = "status"
	// PermAuditLog: read and verify the audit log.
	PermAuditLog Permission = "audit-log"
	// PermSearch: search and read messages (envelopes and original bytes).
	PermSearch Permission = "search"
	// PermExport: export messages.
	PermExport Permission = "export"
	// PermHold: place and release legal holds.
	PermHold Permission = "hold"
	// PermErasure: request erasure of messages.
	PermErasure Permission = "erasure"
	// PermPolicy: apply the retention policy (purge what it allows).
	PermPolicy Permission = "policy"
	// PermApprove: four eyes: request destructive acts, list the requests,
	// approve or deny another officer's ([FourEyes]).
	PermApprove Permission = "approve"
	// PermUnlock: give the reader the archive identity (it then indexes
	// and serves content) or take it away.
	PermUnlock Permission = "unlock"
)

// Grant is how far a role holds a permission.
type Grant uint8

const (
	// GrantNone: the role lacks the permission (403).
	GrantNone Grant = iota
	// GrantAll: the role holds the permission for everything.
	GrantAll
	// GrantScope: within the user's query scope, if one is set, and until the
	// user's expiry date (auditors).
	GrantScope
	// GrantOwn: only messages where one of the user's addresses is the sender
	// or a recipient in any receipt (users).
	GrantOwn
)

func (g Grant) String() string {
	switch g {
	case GrantAll:
		return "yes"
	case GrantScope:
		return "scope"
	case GrantOwn:
		return "own"
	}
	return "—"
}

// MatrixRow is one permission and what each role has of it.
type MatrixRow struct {
	Permission Permission
	// What the permission covers, for the documentation.
	What string
	// Admin, Auditor, Officer, User are the grants in [Roles] order.
	Admin, Auditor, Officer, User Grant
}

// Matrix is the permission matrix: the one table that says which role may do
// what. docs/access.md shows it as rendered by [MarkdownMatrix] (a test keeps
// them equal).
func Matrix() []MatrixRow {
	const (
		n = GrantNone
		y = GrantAll
		s = GrantScope
		o = GrantOwn
	)
	return []MatrixRow{
		// permission      what                                              admin auditor officer user
		{PermSession, "sign out, own sessions, who am I", y, y, y, y},
		{PermUsers, "list, add, disable, enable, reset users; anyone's sessions", y, n, n, n},
		{PermConfig, "reader configuration and maintenance (reindex)", y, n, n, n},
		{PermStatus, "reader and receiver status", y, n, n, n},
		{PermAuditLog, "read and verify the audit log", y, n, n, n},
		{PermSearch, "search, read envelopes and original messages", n, s, y, o},
		{PermExport, "export messages", n, s, y, n},
		{PermHold, "place and release legal holds", n, n, y, n},
		{PermErasure, "request erasure", n, n, y, n},
		{PermPolicy, "apply the retention policy", n, n, y, n},
		{PermApprove, "four eyes: request destructive acts, list requests, approve or deny another officer's", n, n, y, n},
		{PermUnlock, "unlock the reader with the archive identity", n, n, y, n},
	}
}

// Grant returns how far role r holds permission p.
func (r Role) Grant(p Permission) Grant {
	for _, row := range Matrix() {
		if row.Permission != p {
			continue
		}
		switch r {
		case RoleAdmin:
			return row.Admin
		case RoleAuditor:
			return row.Auditor
		case RoleOfficer:
			return row.Officer
		case RoleUser:
			return row.User
		}
	}
	return GrantNone
}

// MarkdownMatrix renders [Matrix] as the Markdown table in docs/access.md.
func MarkdownMatrix() string {
	var b strings.Builder
	b.WriteString("| permission | covers | admin | auditor | officer | user |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range Matrix() {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", r.Permission, r.What, r.Admin, r.Auditor, r.Officer, r.User)
	}
	return b.String()
}
