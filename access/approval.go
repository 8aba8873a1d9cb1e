// SPDX-License-Identifier: Apache-2.0

package access

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// ApprovalAction is a destructive act that may need a second officer's
// approval (four eyes).
type ApprovalAction string

// The actions under four eyes (DESIGN.md: "Destructive acts … need a second
// officer's approval").
const (
	// ApproveErase is an erasure of messages before their retention ends.
	ApproveErase ApprovalAction = "erase"
	// ApproveHoldRelease is the release of a legal hold.
	ApproveHoldRelease ApprovalAction = "hold.release"
	// ApproveRetentionShorten is a change of the retention policy that
	// shortens how long some mail is kept.
	ApproveRetentionShorten ApprovalAction = "retention.shorten"
)

// ApprovalActions lists the actions under four eyes.
func ApprovalActions() []ApprovalAction {
	return []ApprovalAction{ApproveErase, ApproveHoldRelease, ApproveRetentionShorten}
}

// permission is what a requester of a needs besides [PermApprove].
func (a ApprovalAction) permission() Permission {
	switch a {
	case ApproveErase:
		return PermErasure
	case ApproveHoldRelease:
		return PermHold
	}
	return PermPolicy
}

func parseApprovalAction(s string) (ApprovalAction, error) {
	for _, a := range ApprovalActions() {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("%w approval action %q (want erase, hold.release or retention.shorten)", ErrInvalid, s)
}

// ApprovalState is where a four-eyes request stands. The transitions:
// requested → approved | denied | expired, approved → executed | failed.
type ApprovalState string

// The states.
const (
	StateRequested ApprovalState = "requested"
	StateApproved  ApprovalState = "approved"
	StateDenied    ApprovalState = "denied"
	StateExpired   ApprovalState = "expired"
	StateExecuted  ApprovalState = "executed"
	StateFailed    ApprovalState = "failed"
)

// ApprovalStates lists the states.
func ApprovalStates() []ApprovalState {
	return []ApprovalState{StateRequested, StateApproved, StateDenied, StateExpired, StateExecuted, StateFailed}
}

// Limits of a request.
const (
	// MaxApprovalPayload bounds an action's parameters (JSON).
	MaxApprovalPayload = 32 << 10
	// maxComment bounds a reason or comment, in bytes.
	maxComment = 1024
)

// RootPrincipal is the name under which the local root command line
// requests and approves ([RootActor]). It is one principal: root cannot
// approve a request root made.
const RootPrincipal = "root"

// RootActor is the local root command line (over the reader's socket) as
// the actor of a four-eyes request or decision; remote says who ran it
// ("cli:root(uid 0)").
func RootActor(remote string) Actor { return Actor{User: RootPrincipal, Remote: remote} }

// isRoot reports whether a is the local root principal (no role: not a
// signed-in user).
func (a Actor) isRoot() bool { return a.User == RootPrincipal && a.Role == "" }

// Approval is a four-eyes request and what became of it.
type Approval struct {
	ID     uint64         `json:"id"`
	Action ApprovalAction `json:"action"`
	State  ApprovalState  `json:"state"`
	// Requester is the officer's name (or "root"), RequesterRole their role
	// (empty for root).
	Requester     string `json:"requester"`
	RequesterRole Role   `json:"requester_role,omitempty"`
	Reason        string `json:"reason"`
	// Payload is the action's parameters, opaque here: the reader core
	// makes and interprets it (which messages, which hold, which rule).
	Payload   json.RawMessage `json:"payload"`
	Requested time.Time       `json:"requested"`
	// Expires is when a request not decided becomes expired.
	Expires time.Time `json:"expires"`
	// Decider approved or denied it, at Decided, with DecisionComment.
	Decider         string    `json:"decider,omitempty"`
	DeciderRole     Role      `json:"decider_role,omitempty"`
	Decided         time.Time `json:"decided,omitzero"`
	DecisionComment string    `json:"decision_comment,omitempty"`
	// Finished is when execution ended (executed or failed); Error says why
	// it failed.
	Finished time.Time `json:"finished,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// facts is a for an audit event.
func (a *Approval) facts(comment string) *ApprovalFacts {
	sum := sha256.Sum256(a.Payload)
	return &ApprovalFacts{ID: a.ID, Action: a.Action, State: a.State, Requester: a.Requester, Comment: comment,
		PayloadSHA256: hex.EncodeToString(sum[:]), Error: a.Error}
}

// view is a as it stands at now: a request past its expiry is expired even
// before that is recorded.
func (a Approval) view(now time.Time) Approval {
	if a.State == StateRequested && !now.Before(a.Expires) {
		a.State = StateExpired
	}
	return a
}

// FourEyesOptions says which actions need a second officer's approval and
// for how long a request stands. The zero value is the default: every
// action needs approval; requests expire after 72 hours.
type FourEyesOptions struct {
	// Off lists the actions that need no approval on this reader.
	Off []ApprovalAction
	// Expiry is how long a request may be approved. Default 72 h.
	Expiry time.Duration
}

func (o FourEyesOptions) withDefaults() FourEyesOptions {
	if o.Expiry <= 0 {
		o.Expiry = 72 * time.Hour
	}
	return o
}

// Errors of four eyes.
var (
	// ErrNoApproval reports an approval id that is not in the state.
	ErrNoApproval = errors.New("access: no such approval request")
	// ErrApprovalDecided refuses a decision on a request that is no longer
	// requested (approved, denied, expired, executed or failed already), or
	// the marking of one that is not approved.
	ErrApprovalDecided = errors.New("access: approval request is not open")
	// ErrSameOfficer refuses the approval of one's own request.
	ErrSameOfficer = errors.New("access: a request needs another officer's approval, not its requester's")
	// ErrNotOfficer refuses a request or decision by anyone but an officer
	// or the local root principal.
	ErrNotOfficer = errors.New("access: only officers (or root) request and decide four-eyes requests")
)

// FourEyes is the four-eyes approval of destructive acts: requests stored in
// access.db, decided by a second officer, each transition audited inside
// its transaction. Get it with [State.FourEyes].
type FourEyes struct{ s *State }

// FourEyes returns the state's four-eyes requests.
func (s *State) FourEyes() *FourEyes { return &FourEyes{s: s} }

// Required reports whether action needs a second officer's approval on
// this reader. When it does not, the reader core executes it at once.
func (f *FourEyes) Required(action ApprovalAction) bool {
	return !slices.Contains(f.s.opts.FourEyes.Off, action)
}

// checkComment checks a reason or comment: UTF-8, at most 1024 bytes, no
// control characters but tab and newline; required if need.
func checkComment(what, c string, need bool) error {
	switch {
	case need && c == "":
		return fmt.Errorf("%w: a %s is required", ErrInvalid, what)
	case len(c) > maxComment:
		return fmt.Errorf("%w %s: longer than %d bytes", ErrInvalid, what, maxComment)
	case !utf8.ValidString(c):
		return fmt.Errorf("%w %s: not UTF-8", ErrInvalid, what)
	}
	for _, r := range c {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0x7f {
			return fmt.Errorf("%w %s: control character %U", ErrInvalid, what, r)
		}
	}
	return nil
}

// checkPayload checks that p is one JSON object of at most
// [MaxApprovalPayload] bytes and returns it compacted.
func checkPayload(p json.RawMessage) (json.RawMessage, error) {
	if len(p) > MaxApprovalPayload {
		return nil, fmt.Errorf("%w payload: %d bytes, at most %d", ErrInvalid, len(p), MaxApprovalPayload)
	}
	var obj map[string]json.RawMessage
	if err := decodeStrict(p, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("%w payload: want one JSON object", ErrInvalid)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, p); err != nil {
		return nil, fmt.Errorf("%w payload: %w", ErrInvalid, err)
	}
	return b.Bytes(), nil
}

// mayDecide checks that by is an officer or root.
func mayDecide(by Actor) error {
	if by.Role != RoleOfficer && !by.isRoot() {
		return ErrNotOfficer
	}
	return nil
}

// Request records a request by by to carry out action with payload, for
// reason. It fails with [ErrInvalid] for an action that needs no approval
// on this reader ([FourEyes.Required]).
func (f *FourEyes) Request(ctx context.Context, by Actor, action ApprovalAction, reason string, payload json.RawMessage) (Approval, error) {
	s := f.s
	if err := mayDecide(by); err != nil {
		return Approval{}, err
	}
	if _, err := parseApprovalAction(string(action)); err != nil {
		return Approval{}, err
	}
	if !f.Required(action) {
		return Approval{}, fmt.Errorf("%w: %s needs no approval on this reader", ErrInvalid, action)
	}
	if err := checkComment("reason", reason, true); err != nil {
		return Approval{}, err
	}
	payload, err := checkPayload(payload)
	if err != nil {
		return Approval{}, err
	}
	var a Approval
	err = s.db.Update(func(tx *bolt.Tx) error {
		now := s.now()
		if err := s.expireApprovals(ctx, tx, now); err != nil {
			return err
		}
		id, err := tx.Bucket(bucketApprovals).NextSequence()
		if err != nil {
			return err
		}
		a = Approval{ID: id, Action: action, State: StateRequested, Requester: by.User, RequesterRole: by.Role,
			Reason: reason, Payload: payload, Requested: now, Expires: now.Add(s.opts.FourEyes.Expiry)}
		if err := putApproval(tx, &a); err != nil {
			return err
		}
		return s.audit(ctx, tx, Event{Action: ActionApprovalRequest, Outcome: OutcomeOK, User: by.User, Role: by.Role,
			Remote: by.Remote, Approval: a.facts(reason)})
	})
	if err != nil {
		return Approval{}, fmt.Errorf("access: request %s: %w", action, err)
	}
	return a, nil
}

// Approve approves request id by by, who must be an officer (or root) other
// than its requester. If [StateOptions].Execute is set, it then executes
// the request and records the outcome ([FourEyes.MarkExecuted]); the
// returned approval is executed or failed. An execution error is in the
// approval, not returned.
func (f *FourEyes) Approve(ctx context.Context, by Actor, id uint64, comment string) (Approval, error) {
	a, err := f.decide(ctx, by, id, comment, StateApproved)
	if err != nil || f.s.opts.Execute == nil {
		return a, err
	}
	// A destructive act, once begun, is not abandoned because the approving
	// client went away.
	ctx = context.WithoutCancel(ctx)
	return f.MarkExecuted(ctx, id, f.s.opts.Execute(ctx, a))
}

// Deny denies request id by by (an officer or root, not the requester: one
// withdraws a request by letting it expire), for reason.
func (f *FourEyes) Deny(ctx context.Context, by Actor, id uint64, reason string) (Approval, error) {
	return f.decide(ctx, by, id, reason, StateDenied)
}

func (f *FourEyes) decide(ctx context.Context, by Actor, id uint64, comment string, to ApprovalState) (Approval, error) {
	s := f.s
	op := "approve"
	if to == StateDenied {
		op = "deny"
	}
	if err := mayDecide(by); err != nil {
		return Approval{}, err
	}
	if err := checkComment("comment", comment, to == StateDenied); err != nil {
		return Approval{}, err
	}
	var a Approval
	expired := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		now := s.now()
		if err := s.expireApprovals(ctx, tx, now); err != nil {
			return err
		}
		var err error
		if a, err = getApproval(tx, id); err != nil {
			return err
		}
		if a.State == StateExpired {
			expired = true
			return nil
		}
		if a.State != StateRequested {
			return fmt.Errorf("%w: it is %s", ErrApprovalDecided, a.State)
		}
		if a.Requester == by.User {
			return ErrSameOfficer
		}
		a.State, a.Decider, a.DeciderRole, a.Decided, a.DecisionComment = to, by.User, by.Role, now, comment
		if err := putApproval(tx, &a); err != nil {
			return err
		}
		action := ActionApprovalApprove
		if to == StateDenied {
			action = ActionApprovalDeny
		}
		return s.audit(ctx, tx, Event{Action: action, Outcome: OutcomeOK, User: by.User, Role: by.Role,
			Remote: by.Remote, Target: a.Requester, Approval: a.facts(comment)})
	})
	if err == nil && expired {
		err = fmt.Errorf("%w: it expired at %s", ErrApprovalDecided, a.Expires.Format(time.RFC3339))
	}
	if err != nil {
		return Approval{}, fmt.Errorf("access: %s request %d: %w", op, id, err)
	}
	return a, nil
}

// MarkExecuted records the outcome of executing approved request id:
// executed if execErr is nil, else failed with its text. The reader core
// calls it when it executes requests itself (no Execute callback, or
// requests left approved by a crash).
func (f *FourEyes) MarkExecuted(ctx context.Context, id uint64, execErr error) (Approval, error) {
	s := f.s
	var a Approval
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if a, err = getApproval(tx, id); err != nil {
			return err
		}
		if a.State != StateApproved {
			return fmt.Errorf("%w: it is %s, not approved", ErrApprovalDecided, a.State)
		}
		ev := Event{Action: ActionApprovalExecute, Outcome: OutcomeOK, User: a.Decider, Role: a.DeciderRole, Target: a.Requester}
		a.State, a.Finished = StateExecuted, s.now()
		if execErr != nil {
			a.State, a.Error, ev.Outcome = StateFailed, truncate(execErr.Error(), maxComment), OutcomeFail
		}
		if err := putApproval(tx, &a); err != nil {
			return err
		}
		ev.Approval = a.facts("")
		return s.audit(ctx, tx, ev)
	})
	if err != nil {
		return Approval{}, fmt.Errorf("access: mark request %d executed: %w", id, err)
	}
	return a, nil
}

// Get returns request id as it stands now.
func (f *FourEyes) Get(ctx context.Context, id uint64) (Approval, error) {
	var a Approval
	err := f.s.db.View(func(tx *bolt.Tx) error {
		var err error
		a, err = getApproval(tx, id)
		return err
	})
	if err != nil {
		return Approval{}, fmt.Errorf("access: approval request %d: %w", id, err)
	}
	return a.view(f.s.now()), nil
}

// List returns the requests in state (all if empty), newest first, as they
// stand now (a request past its expiry is listed as expired).
func (f *FourEyes) List(ctx context.Context, state ApprovalState) ([]Approval, error) {
	if state != "" && !slices.Contains(ApprovalStates(), state) {
		return nil, fmt.Errorf("%w approval state %q", ErrInvalid, state)
	}
	now := f.s.now()
	var out []Approval
	err := f.s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketApprovals).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			a, err := decodeApproval(v)
			if err != nil {
				return fmt.Errorf("approval %x: %w", k, err)
			}
			if a = a.view(now); state == "" || a.State == state {
				out = append(out, a)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("access: list approval requests: %w", err)
	}
	return out, nil
}

// expireApprovals records as expired, and audits, every request past its
// expiry. Every write of requests runs it first, so that an expiry is
// recorded before anything else happens to the requests.
func (s *State) expireApprovals(ctx context.Context, tx *bolt.Tx, now time.Time) error {
	b := tx.Bucket(bucketApprovals)
	var due []Approval
	err := b.ForEach(func(k, v []byte) error {
		a, err := decodeApproval(v)
		if err != nil {
			return fmt.Errorf("approval %x: %w", k, err)
		}
		if a.State == StateRequested && !now.Before(a.Expires) {
			due = append(due, a)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, a := range due {
		a.State = StateExpired
		if err := putApproval(tx, &a); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, Event{Action: ActionApprovalExpire, Outcome: OutcomeOK, Target: a.Requester, Approval: a.facts("")}); err != nil {
			return err
		}
	}
	return nil
}

func approvalKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func getApproval(tx *bolt.Tx, id uint64) (Approval, error) {
	v := tx.Bucket(bucketApprovals).Get(approvalKey(id))
	if v == nil {
		return Approval{}, ErrNoApproval
	}
	return decodeApproval(v)
}

// decodeApproval reads a stored request, checking its action and state.
func decodeApproval(v []byte) (Approval, error) {
	var a Approval
	if err := json.Unmarshal(v, &a); err != nil {
		return Approval{}, fmt.Errorf("decode approval record: %w", err)
	}
	if _, err := parseApprovalAction(string(a.Action)); err != nil {
		return Approval{}, fmt.Errorf("decode approval record: %w", err)
	}
	if !slices.Contains(ApprovalStates(), a.State) {
		return Approval{}, fmt.Errorf("decode approval record: %w state %q", ErrInvalid, a.State)
	}
	return a, nil
}

func putApproval(tx *bolt.Tx, a *Approval) error {
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketApprovals).Put(approvalKey(a.ID), v)
}

// truncate cuts s to at most n bytes at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
