// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"fmt"
	"time"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/index"
	"github.com/sealmail/sealmail/index/query"
)

// Caller is who asks the reader for something: a person signed in over
// HTTPS, with their role and limits, or root on the host through the
// reader's socket, who may do everything.
type Caller struct {
	// Name is what the audit log names: "alice (officer)", or the socket
	// peer ("socket:root(uid 0, pid 42)").
	Name string
	// Local is root's command line through reader.sock.
	Local     bool
	Role      access.Role
	Addresses []string
	Scope     string    // an auditor's query scope, "" for none
	Expires   time.Time // an auditor's expiry, zero for none
	// User is a person's user name; Remote their client address (for
	// the four-eyes requests they make).
	User, Remote string
}

// FromPrincipal is the caller of an HTTPS request.
func FromPrincipal(p access.Principal) Caller {
	return Caller{Name: personName(p.User, p.Role), User: p.User, Role: p.Role, Addresses: p.Addresses, Scope: p.Scope, Expires: p.Expires}
}

// Local is root's command line, named as the reader's socket saw it.
func Local(peer string) Caller { return Caller{Name: peer, Local: true} }

// personName is how the audit log names a user: "alice (officer)".
func personName(user string, role access.Role) string { return fmt.Sprintf("%s (%s)", user, role) }

// actor is the caller as the actor of a four-eyes request or decision:
// root's command line is the one principal root.
func (c Caller) actor() access.Actor {
	if c.Local {
		return access.RootActor(c.Name)
	}
	return access.Actor{User: c.User, Role: c.Role, Remote: c.Remote}
}

// grant returns how far the caller holds p.
func (c Caller) grant(p access.Permission) access.Grant {
	if c.Local {
		return access.GrantAll
	}
	return c.Role.Grant(p)
}

// may refuses the caller unless they hold p at all.
func (c Caller) may(p access.Permission, now time.Time) error {
	if c.grant(p) == access.GrantNone {
		return denied("%s may not do this (permission %s)", c.Name, p)
	}
	if !c.Expires.IsZero() && !now.Before(c.Expires) {
		return denied("%s's access ended on %s", c.Name, c.Expires.Format(time.DateOnly))
	}
	return nil
}

// scoped returns q narrowed to what the caller may see under permission
// p: an auditor's scope, a user's own messages (one of their addresses
// involved); ok is false when nothing can match (a user without
// addresses).
func (c Caller) scoped(p access.Permission, q index.Query) (index.Query, bool, error) {
	var limit query.Node
	switch c.grant(p) {
	case access.GrantAll:
		return q, true, nil
	case access.GrantScope:
		if c.Scope == "" {
			return q, true, nil
		}
		n, err := query.Parse(c.Scope)
		if err != nil {
			return q, false, fmt.Errorf("the scope of %s does not parse: %w", c.Name, err)
		}
		limit = n
	case access.GrantOwn:
		var own []query.Node
		for _, a := range c.Addresses {
			own = append(own, &query.Term{Field: query.FieldInvolved, Value: a})
		}
		switch len(own) {
		case 0:
			return q, false, nil
		case 1:
			limit = own[0]
		default:
			limit = &query.Or{Nodes: own}
		}
	default:
		return q, false, denied("%s may not do this (permission %s)", c.Name, p)
	}
	if q.Node == nil {
		q.Node = limit
	} else {
		q.Node = &query.And{Nodes: []query.Node{q.Node, limit}}
	}
	return q, true, nil
}
