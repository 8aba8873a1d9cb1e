// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// archive is a small real executor: a set of message ids, from which an
// approved erasure removes those its payload names. It fails on an id it
// does not hold (as the reader core fails on a stale verdict).
type archive struct {
	mu   sync.Mutex
	ids  map[int]bool
	runs int
}

func newArchive(ids ...int) *archive {
	a := &archive{ids: map[int]bool{}}
	for _, id := range ids {
		a.ids[id] = true
	}
	return a
}

func (a *archive) Execute(_ context.Context, ap Approval) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.runs++
	if ap.Action != ApproveErase || ap.State != StateApproved {
		return fmt.Errorf("executor: %s in state %s", ap.Action, ap.State)
	}
	var p struct{ IDs []int }
	if err := json.Unmarshal(ap.Payload, &p); err != nil {
		return err
	}
	for _, id := range p.IDs {
		if !a.ids[id] {
			return fmt.Errorf("message %d is not in the archive", id)
		}
	}
	for _, id := range p.IDs {
		delete(a.ids, id)
	}
	return nil
}

func (a *archive) has(id int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ids[id]
}

var (
	alice = Actor{User: "alice", Role: RoleOfficer, Remote: "192.0.2.1"}
	bob   = Actor{User: "bob", Role: RoleOfficer, Remote: "192.0.2.2"}
	root  = RootActor("cli:root(uid 0)")
)

func TestFourEyesApproveExecutes(t *testing.T) {
	t.Parallel()
	arc := newArchive(1, 2, 3)
	f := newFixture(t, StateOptions{Execute: arc.Execute})
	fe := f.st.FourEyes()
	ctx := context.Background()

	req, err := fe.Request(ctx, alice, ApproveErase, "GDPR Art. 17 request #42", json.RawMessage(`{ "ids": [1, 2] }`))
	if err != nil {
		t.Fatal(err)
	}
	if req.State != StateRequested || req.Requester != "alice" || string(req.Payload) != `{"ids":[1,2]}` ||
		!req.Expires.Equal(req.Requested.Add(72*time.Hour)) {
		t.Errorf("Request = %+v", req)
	}
	if !arc.has(1) || arc.runs != 0 {
		t.Fatal("executed before approval")
	}
	// The requester cannot approve it, nor can an admin or root-less actor.
	if _, err := fe.Approve(ctx, alice, req.ID, ""); !errors.Is(err, ErrSameOfficer) {
		t.Errorf("Approve by the requester = %v, want ErrSameOfficer", err)
	}
	for _, by := range []Actor{{User: "adm", Role: RoleAdmin}, {User: "aud", Role: RoleAuditor}, {User: "u", Role: RoleUser}, {Remote: "cli:x"}} {
		if _, err := fe.Approve(ctx, by, req.ID, ""); !errors.Is(err, ErrNotOfficer) {
			t.Errorf("Approve by %+v = %v, want ErrNotOfficer", by, err)
		}
	}
	f.rec.take()
	got, err := fe.Approve(ctx, bob, req.ID, "checked the ticket")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateExecuted || got.Decider != "bob" || got.DecisionComment != "checked the ticket" || got.Finished.IsZero() {
		t.Errorf("Approve = %+v, want executed by bob", got)
	}
	if arc.has(1) || arc.has(2) || !arc.has(3) || arc.runs != 1 {
		t.Errorf("archive after execution: %v (runs %d)", arc.ids, arc.runs)
	}
	// Decided once: a second approval or a denial is refused, and the
	// executor does not run again.
	if _, err := fe.Approve(ctx, Actor{User: "carol", Role: RoleOfficer}, req.ID, ""); !errors.Is(err, ErrApprovalDecided) {
		t.Errorf("second Approve = %v, want ErrApprovalDecided", err)
	}
	if _, err := fe.Deny(ctx, Actor{User: "carol", Role: RoleOfficer}, req.ID, "no"); !errors.Is(err, ErrApprovalDecided) {
		t.Errorf("Deny after approval = %v, want ErrApprovalDecided", err)
	}
	if arc.runs != 1 {
		t.Errorf("executor ran %d times", arc.runs)
	}
	ev := f.rec.take()
	var seen []string
	for _, e := range ev {
		seen = append(seen, fmt.Sprintf("%s/%s/%s/%s", e.Action, e.Outcome, e.User, e.Approval.State))
		if e.Approval == nil || e.Approval.ID != req.ID || e.Approval.Requester != "alice" || len(e.Approval.PayloadSHA256) != 64 {
			t.Errorf("event %+v: approval facts %+v", e, e.Approval)
		}
	}
	want := []string{"approval.approve/ok/bob/approved", "approval.execute/ok/bob/executed"}
	if !slices.Equal(seen, want) {
		t.Errorf("events = %v, want %v", seen, want)
	}
	a, err := fe.Get(ctx, req.ID)
	if err != nil || a.State != StateExecuted {
		t.Errorf("Get = %+v, %v", a, err)
	}
}

func TestFourEyesFailedExecution(t *testing.T) {
	t.Parallel()
	arc := newArchive(1)
	f := newFixture(t, StateOptions{Execute: arc.Execute})
	fe := f.st.FourEyes()
	ctx := context.Background()
	req, err := fe.Request(ctx, alice, ApproveErase, "erase", json.RawMessage(`{"ids":[1,9]}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := fe.Approve(ctx, bob, req.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateFailed || !strings.Contains(got.Error, "message 9 is not in the archive") {
		t.Errorf("Approve = %+v, want failed with the executor's error", got)
	}
	if !arc.has(1) {
		t.Error("a failed execution erased")
	}
	ev := f.rec.take()
	last := ev[len(ev)-1]
	if last.Action != ActionApprovalExecute || last.Outcome != OutcomeFail || !strings.Contains(last.Approval.Error, "message 9") {
		t.Errorf("last event = %+v %+v", last, last.Approval)
	}
	if _, err := fe.MarkExecuted(ctx, req.ID, nil); !errors.Is(err, ErrApprovalDecided) {
		t.Errorf("MarkExecuted of a failed request = %v, want ErrApprovalDecided", err)
	}
}

func TestFourEyesRootAndDeny(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{})
	fe := f.st.FourEyes()
	ctx := context.Background()

	// root is one principal: its own request needs someone else.
	r1, err := fe.Request(ctx, root, ApproveHoldRelease, "case closed", json.RawMessage(`{"hold":"acme"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r1.Requester != "root" || r1.RequesterRole != "" {
		t.Errorf("root's request = %+v", r1)
	}
	if _, err := fe.Approve(ctx, RootActor("cli:root(uid 0)"), r1.ID, ""); !errors.Is(err, ErrSameOfficer) {
		t.Errorf("root approving root's request = %v, want ErrSameOfficer", err)
	}
	// Without Execute, an approved request stays approved for the caller
	// to execute and mark.
	a, err := fe.Approve(ctx, alice, r1.ID, "")
	if err != nil || a.State != StateApproved {
		t.Fatalf("Approve = %+v, %v", a, err)
	}
	if list, err := fe.List(ctx, StateApproved); err != nil || len(list) != 1 || list[0].ID != r1.ID {
		t.Errorf("List(approved) = %+v, %v", list, err)
	}
	if a, err = fe.MarkExecuted(ctx, r1.ID, errors.New("receiver refused")); err != nil || a.State != StateFailed || a.Error != "receiver refused" {
		t.Errorf("MarkExecuted(err) = %+v, %v", a, err)
	}

	// root approves an officer's request; a denial needs a reason.
	r2, err := fe.Request(ctx, alice, ApproveRetentionShorten, "policy v7", json.RawMessage(`{"rule":"invoices","from":"10y","to":"6y"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fe.Deny(ctx, bob, r2.ID, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Deny without a reason = %v, want ErrInvalid", err)
	}
	d, err := fe.Deny(ctx, root, r2.ID, "GoBD: invoices are kept 8 years")
	if err != nil || d.State != StateDenied || d.Decider != "root" {
		t.Errorf("Deny = %+v, %v", d, err)
	}
	if _, err := fe.Approve(ctx, bob, r2.ID, ""); !errors.Is(err, ErrApprovalDecided) {
		t.Errorf("Approve after denial = %v, want ErrApprovalDecided", err)
	}
	if _, err := fe.Get(ctx, 999); !errors.Is(err, ErrNoApproval) {
		t.Errorf("Get(999) = %v, want ErrNoApproval", err)
	}
	all, err := fe.List(ctx, "")
	if err != nil || len(all) != 2 || all[0].ID != r2.ID {
		t.Errorf("List() = %+v, %v; want 2, newest first", all, err)
	}
}

func TestFourEyesExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{FourEyes: FourEyesOptions{Expiry: time.Hour}})
	fe := f.st.FourEyes()
	ctx := context.Background()
	req, err := fe.Request(ctx, alice, ApproveErase, "erase", json.RawMessage(`{"ids":[1]}`))
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Add(time.Hour)
	// Read: listed as expired at once.
	if a, err := fe.Get(ctx, req.ID); err != nil || a.State != StateExpired {
		t.Errorf("Get after expiry = %+v, %v", a, err)
	}
	if l, err := fe.List(ctx, StateRequested); err != nil || len(l) != 0 {
		t.Errorf("List(requested) after expiry = %+v, %v", l, err)
	}
	f.rec.take()
	// An approval records the expiry (audited) and is refused.
	if _, err := fe.Approve(ctx, bob, req.ID, ""); !errors.Is(err, ErrApprovalDecided) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Approve after expiry = %v, want ErrApprovalDecided (expired)", err)
	}
	ev := f.rec.take()
	if len(ev) != 1 || ev[0].Action != ActionApprovalExpire || ev[0].Approval.State != StateExpired {
		t.Errorf("events = %+v, want one approval.expire", ev)
	}
}

func TestFourEyesOptionsAndLimits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, StateOptions{FourEyes: FourEyesOptions{Off: []ApprovalAction{ApproveHoldRelease}}})
	fe := f.st.FourEyes()
	ctx := context.Background()
	if fe.Required(ApproveHoldRelease) || !fe.Required(ApproveErase) || !fe.Required(ApproveRetentionShorten) {
		t.Errorf("Required: hold.release %v erase %v retention.shorten %v", fe.Required(ApproveHoldRelease),
			fe.Required(ApproveErase), fe.Required(ApproveRetentionShorten))
	}
	for name, tc := range map[string]struct {
		action  ApprovalAction
		reason  string
		payload string
	}{
		"off action":     {ApproveHoldRelease, "r", `{}`},
		"unknown action": {"purge", "r", `{}`},
		"no reason":      {ApproveErase, "", `{}`},
		"control char":   {ApproveErase, "a\x00b", `{}`},
		"long reason":    {ApproveErase, strings.Repeat("x", maxComment+1), `{}`},
		"array payload":  {ApproveErase, "r", `[1]`},
		"null payload":   {ApproveErase, "r", `null`},
		"two objects":    {ApproveErase, "r", `{} {}`},
		"big payload":    {ApproveErase, "r", `{"x":"` + strings.Repeat("a", MaxApprovalPayload) + `"}`},
	} {
		if _, err := fe.Request(ctx, alice, tc.action, tc.reason, json.RawMessage(tc.payload)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Request = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := fe.Request(ctx, Actor{User: "adm", Role: RoleAdmin}, ApproveErase, "r", json.RawMessage(`{}`)); !errors.Is(err, ErrNotOfficer) {
		t.Errorf("Request by an admin = %v, want ErrNotOfficer", err)
	}
	if l, _ := fe.List(ctx, ""); len(l) != 0 {
		t.Errorf("refused requests were stored: %+v", l)
	}
	if _, err := fe.List(ctx, "pending"); !errors.Is(err, ErrInvalid) {
		t.Errorf("List(pending) = %v, want ErrInvalid", err)
	}
	// Audited inside the transaction: if the audit fails, nothing is stored.
	f.rec.mu.Lock()
	f.rec.fail = errors.New("receiver down")
	f.rec.mu.Unlock()
	if _, err := fe.Request(ctx, alice, ApproveErase, "r", json.RawMessage(`{}`)); err == nil {
		t.Error("Request with a failing audit succeeded")
	}
	if l, _ := fe.List(ctx, ""); len(l) != 0 {
		t.Errorf("a request whose audit failed was stored: %+v", l)
	}
}

func TestHTTPSApprovals(t *testing.T) {
	t.Parallel()
	arc := newArchive(7)
	s := newServer(t, Options{Execute: arc.Execute})
	s.start(t)
	ca, cb := s.add(t, "alice", RoleOfficer), s.add(t, "bob", RoleOfficer)
	adm, aud := s.add(t, "adm", RoleAdmin), s.add(t, "aud", RoleAuditor)
	ta, tb, tadm, taud := s.signIn(t, ca), s.signIn(t, cb), s.signIn(t, adm), s.signIn(t, aud)

	body := ApprovalRequestBody{Action: ApproveErase, Reason: "Art. 17", Payload: json.RawMessage(`{"ids":[7]}`)}
	for _, tok := range []string{tadm, taud} {
		if resp, _ := s.call(t, "POST", "/api/v1/approvals", tok, body, nil); resp.StatusCode != 403 {
			t.Errorf("request by a non-officer: %s, want 403", resp.Status)
		}
		if resp, _ := s.call(t, "GET", "/api/v1/approvals", tok, nil, nil); resp.StatusCode != 403 {
			t.Errorf("list by a non-officer: %s, want 403", resp.Status)
		}
	}
	if resp, _ := s.call(t, "GET", "/api/v1/approvals", "", nil, nil); resp.StatusCode != 401 {
		t.Errorf("list without a session: %s, want 401", resp.Status)
	}
	resp, data := s.call(t, "POST", "/api/v1/approvals", ta, body, nil)
	var a Approval
	if resp.StatusCode != 201 || json.Unmarshal(data, &a) != nil || a.State != StateRequested {
		t.Fatalf("request: %s %s", resp.Status, data)
	}
	bad := body
	bad.Action = "purge"
	if resp, data := s.call(t, "POST", "/api/v1/approvals", ta, bad, nil); resp.StatusCode != 400 {
		t.Errorf("unknown action: %s %s, want 400", resp.Status, data)
	}

	resp, data = s.call(t, "GET", "/api/v1/approvals?state=requested", tb, nil, nil)
	var list ApprovalsReply
	if resp.StatusCode != 200 || json.Unmarshal(data, &list) != nil || len(list.Approvals) != 1 || list.Approvals[0].ID != a.ID {
		t.Fatalf("list: %s %s", resp.Status, data)
	}
	if resp, data := s.call(t, "GET", "/api/v1/approvals?state=bogus", tb, nil, nil); resp.StatusCode != 400 {
		t.Errorf("list ?state=bogus: %s %s, want 400", resp.Status, data)
	}
	path := fmt.Sprintf("/api/v1/approvals/%d", a.ID)
	if resp, data := s.call(t, "POST", path+"/approve", ta, DecisionBody{}, nil); resp.StatusCode != 403 {
		t.Errorf("self-approval: %s %s, want 403", resp.Status, data)
	}
	if resp, _ := s.call(t, "POST", path+"/approve", tadm, DecisionBody{}, nil); resp.StatusCode != 403 {
		t.Errorf("approval by an admin: %s, want 403", resp.Status)
	}
	if resp, _ := s.call(t, "POST", "/api/v1/approvals/x/approve", tb, nil, nil); resp.StatusCode != 404 {
		t.Errorf("approve /x: %s, want 404", resp.Status)
	}
	if resp, _ := s.call(t, "POST", "/api/v1/approvals/999/deny", tb, DecisionBody{Comment: "no"}, nil); resp.StatusCode != 404 {
		t.Errorf("deny /999: %s, want 404", resp.Status)
	}
	resp, data = s.call(t, "POST", path+"/approve", tb, nil, nil) // empty body: no comment
	if resp.StatusCode != 200 || json.Unmarshal(data, &a) != nil || a.State != StateExecuted || a.Decider != "bob" {
		t.Fatalf("approve: %s %s", resp.Status, data)
	}
	if arc.has(7) {
		t.Error("message 7 not erased after approval")
	}
	if resp, _ := s.call(t, "POST", path+"/deny", tb, DecisionBody{Comment: "late"}, nil); resp.StatusCode != 409 {
		t.Errorf("deny after execution: %s, want 409", resp.Status)
	}
	resp, data = s.call(t, "GET", path, tb, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(data), `"state":"executed"`) {
		t.Errorf("get: %s %s", resp.Status, data)
	}
}
