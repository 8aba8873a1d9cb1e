// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestAuditEntry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ev    Event
		typ   string
		actor string
	}{
		{Event{Action: ActionLogin, User: "alice", Role: RoleOfficer}, "access.login", "alice (officer)"},
		{Event{Action: ActionApprovalApprove, User: "root", Remote: "cli:root(uid 0)"}, "access.approval.approve", "root"},
		{Event{Action: ActionUserAdd, Remote: "cli:root(uid 0)", Target: "jane"}, "access.user.add", "cli:root(uid 0)"},
		{Event{Action: ActionLockout, Remote: "192.0.2.1"}, "access.lockout", ""},
	} {
		e := tc.ev.AuditEntry()
		if e.Type != tc.typ || e.Actor != tc.actor {
			t.Errorf("AuditEntry(%+v) = %q %q, want %q %q", tc.ev, e.Type, e.Actor, tc.typ, tc.actor)
		}
		if !slices.Contains(AuditTypes(), e.Type) {
			t.Errorf("AuditTypes() lacks %s", e.Type)
		}
	}
	// The fields are the event's JSON, with no secrets (there is no field
	// for them) and typed names.
	b, err := json.Marshal(Event{Action: ActionLogin, Outcome: OutcomeFail, Remote: "192.0.2.1", Reason: ReasonTOTP, RetryAfter: 2e9})
	if err != nil || !strings.Contains(string(b), `"reason":"totp"`) || !strings.Contains(string(b), `"retry_after_ns":2000000000`) || strings.Contains(string(b), `"user"`) {
		t.Errorf("Event JSON = %s, %v", b, err)
	}
	for _, a := range Actions() {
		if len(auditTypePrefix+string(a)) > 64 || strings.Trim(string(a), "abcdefghijklmnopqrstuvwxyz.-_") != "" {
			t.Errorf("action %q is not a valid audit type", a)
		}
	}
}

// TestOutboxForward: events kept in the outbox are sent in order; a
// failing send stops the forwarding and keeps the rest.
func TestOutboxForward(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{AuditOutbox: true})
	ctx := context.Background()
	f.add(t, "a", RoleOfficer)
	f.add(t, "b", RoleOfficer)
	if err := f.st.DisableUser(ctx, cli, "a"); err != nil {
		t.Fatal(err)
	}
	if ev := f.rec.take(); len(ev) != 0 {
		t.Errorf("with AuditOutbox the Audit callback got %v", ev)
	}
	var sent []string
	calls := 0
	send := func(_ context.Context, ev Event) error {
		if calls++; calls == 2 {
			return errors.New("receiver down")
		}
		sent = append(sent, string(ev.Action)+" "+ev.Target)
		return nil
	}
	n, err := f.st.ForwardOutbox(ctx, send)
	if n != 1 || err == nil || !strings.Contains(err.Error(), "receiver down") {
		t.Errorf("ForwardOutbox = %d, %v; want 1 and the send error", n, err)
	}
	if left, _ := f.st.OutboxLen(ctx); left != 2 {
		t.Errorf("outbox after a failed send: %d, want 2", left)
	}
	if n, err = f.st.ForwardOutbox(ctx, send); n != 2 || err != nil {
		t.Errorf("ForwardOutbox again = %d, %v", n, err)
	}
	if want := []string{"user.add a", "user.add b", "user.disable a"}; !slices.Equal(sent, want) {
		t.Errorf("sent %v, want %v", sent, want)
	}
}
