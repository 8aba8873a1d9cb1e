// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/archive"
)

// Four eyes: erasure, hold release and shortening retention need a second
// officer's approval unless the reader's configuration switches it off
// ([access.four_eyes]; on by default for all three). Where it is needed,
// the operation only files a request (access.FourEyes.Request) whose
// payload says what was asked. When another officer (or root, who is one
// principal) approves it, access calls [Reader.Execute], which carries
// the act out as things stand then, not as they stood:
//
//   - an erasure erases only approved messages that the query still
//     matches, with as many receipts as when it was asked, that the index
//     holds settled and that no hold covers (the receiver checks holds and
//     retention again); the rest is refused with the reason;
//   - a hold release releases only the hold of that name created when the
//     one asked about was (not one placed again under the name);
//   - a shortening of retention is made only under the same retention
//     rules (the receiver compares their SHA-256), re-evaluated for every
//     message then.

// needsApproval reports whether action needs a second officer's approval
// on this reader. Without an access state no request can be filed: the
// act is refused.
func (r *Reader) needsApproval(action access.ApprovalAction) (bool, error) {
	if r.opts.Access == nil {
		return true, invalid("%s needs a second officer's approval, and this reader keeps no approvals", action)
	}
	return r.opts.Access.FourEyes().Required(action), nil
}

// request files a four-eyes request by c.
func (r *Reader) request(ctx context.Context, c Caller, action access.ApprovalAction, reason string, payload any) (*access.Approval, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	a, err := r.opts.Access.FourEyes().Request(ctx, c.actor(), action, reason, b)
	if err != nil {
		return nil, approvalError(err)
	}
	r.log.Info("four-eyes request filed", "approval", a.ID, "action", action, "by", c.Name)
	return &a, nil
}

// approvalError gives access's four-eyes errors their codes.
func approvalError(err error) error {
	switch {
	case errors.Is(err, access.ErrInvalid), errors.Is(err, access.ErrApprovalDecided):
		return invalid("%v", err)
	case errors.Is(err, access.ErrNoApproval):
		return &archive.Error{Code: archive.CodeNotFound, Message: err.Error()}
	case errors.Is(err, access.ErrSameOfficer), errors.Is(err, access.ErrNotOfficer):
		return denied("%v", err)
	}
	return err
}

// ErasePayload is what an erasure request asks for (its payload).
type ErasePayload struct {
	Query             string `json:"query"`
	OverrideRetention bool   `json:"override_retention"`
	// Messages are the messages to erase, each [id, receipts]: how many
	// receipts it had when asked. The query matched them, the index held
	// them settled, and the receiver would have erased them.
	Messages [][2]uint64 `json:"messages"`
	// Refused counts the messages the query matched that could not be
	// erased when asked (held, retained, not indexed yet).
	Refused int `json:"refused"`
}

// HoldReleasePayload is what a hold release request asks for.
type HoldReleasePayload struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"` // which hold of that name
}

// ShortenPayload is what a request to shorten retention asks for.
type ShortenPayload struct {
	// RulesSHA256 names the retention rules in force when asked: only
	// under them may the changes be made.
	RulesSHA256 string `json:"rules_sha256"`
	// Count is how many messages would have had their retention shortened
	// then; Changes are the first maxShownChanges of them.
	Count   int                    `json:"count"`
	Changes []archive.PolicyChange `json:"changes"`
}

// maxShownChanges bounds the changes a shortening request lists.
const maxShownChanges = 100

// Asked is what a four-eyes request asks for, decoded from its payload:
// the field of its action is set.
type Asked struct {
	Erase       *ErasePayload       `json:"erase,omitempty"`
	HoldRelease *HoldReleasePayload `json:"hold_release,omitempty"`
	Shorten     *ShortenPayload     `json:"shorten,omitempty"`
}

// AskedOf decodes what request a asks for, for showing it.
func AskedOf(a access.Approval) (Asked, error) {
	var out Asked
	var err error
	switch a.Action {
	case access.ApproveErase:
		out.Erase = &ErasePayload{}
		err = decodePayload(a, out.Erase)
	case access.ApproveHoldRelease:
		out.HoldRelease = &HoldReleasePayload{}
		err = decodePayload(a, out.HoldRelease)
	case access.ApproveRetentionShorten:
		out.Shorten = &ShortenPayload{}
		err = decodePayload(a, out.Shorten)
	default:
		err = invalid("approval %d: unknown action %q", a.ID, a.Action)
	}
	return out, err
}

// decodePayload reads a request's payload strictly.
func decodePayload(a access.Approval, v any) error {
	dec := json.NewDecoder(bytes.NewReader(a.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("approval %d: payload of %s: %v", a.ID, a.Action, err)
	}
	return nil
}

// requester is who asked for a, as the caller of its execution: the
// officer, or root's command line.
func requester(a access.Approval) Caller {
	if a.RequesterRole == "" {
		return Caller{Name: access.RootPrincipal, Local: true}
	}
	return Caller{Name: personName(a.Requester, a.RequesterRole), User: a.Requester, Role: a.RequesterRole}
}

// decider names who approved a, as the audit log names people.
func decider(a access.Approval) string {
	if a.DeciderRole == "" {
		return access.RootPrincipal
	}
	return personName(a.Decider, a.DeciderRole)
}

// resultKey carries, in the context of an approval, where [Reader.Execute]
// puts what the execution did, for [Reader.Approve]'s caller.
type resultKey struct{}

// Execute carries out an approved four-eyes request (access.Options.Execute;
// access records the outcome). It runs as the requester, naming the
// approver, and re-evaluates the request as things stand now (see the
// package's four-eyes notes); an error fails the request.
func (r *Reader) Execute(ctx context.Context, a access.Approval) error {
	res, err := r.execute(ctx, a)
	if slot, ok := ctx.Value(resultKey{}).(*json.RawMessage); ok && res != nil {
		if b, merr := json.Marshal(res); merr == nil {
			*slot = b
		}
	}
	if err != nil {
		r.log.Warn("four-eyes request failed", "approval", a.ID, "action", a.Action, "err", err)
		return err
	}
	r.log.Info("four-eyes request executed", "approval", a.ID, "action", a.Action, "approved_by", decider(a))
	return nil
}

func (r *Reader) execute(ctx context.Context, a access.Approval) (any, error) {
	c := requester(a)
	by := decider(a)
	asked, err := AskedOf(a)
	if err != nil {
		return nil, err
	}
	switch {
	case asked.Erase != nil:
		p := asked.Erase
		approved := make(map[uint64]uint64, len(p.Messages))
		for _, m := range p.Messages {
			approved[m[0]] = m[1]
		}
		rep, _, err := r.erase(ctx, c, EraseOptions{Query: p.Query, Reason: a.Reason, OverrideRetention: p.OverrideRetention,
			Request: strconv.FormatUint(a.ID, 10), Approvals: []string{by}}, approved)
		return rep, err
	case asked.HoldRelease != nil:
		p := asked.HoldRelease
		return r.releaseHold(ctx, c, p.Name, p.Created, fmt.Sprintf("%s [four eyes: request %d, approved by %s]", a.Reason, a.ID, by))
	default:
		p := asked.Shorten
		if p.RulesSHA256 == "" {
			return nil, invalid("approval %d: no retention rules named", a.ID)
		}
		return r.applyPolicy(ctx, c, PolicyOptions{}, p.RulesSHA256, p.RulesSHA256)
	}
}

// resumeApproved executes the requests approved before this reader
// started whose execution a stop or a crash cut off (they are still
// "approved"). It reports whether it could look.
func (r *Reader) resumeApproved(ctx context.Context) bool {
	fe := r.opts.Access.FourEyes()
	list, err := fe.List(ctx, access.StateApproved)
	if err != nil {
		r.log.Warn("four eyes: list approved requests", "err", err)
		return false
	}
	// A destructive act, once begun, is not cut off by the reader's stop.
	ctx = context.WithoutCancel(ctx)
	for _, a := range list {
		if !a.Decided.Before(r.started) {
			continue // approved since the start: its approver's call executes it
		}
		r.log.Warn("four eyes: executing a request approved before the reader stopped", "approval", a.ID, "action", a.Action)
		if _, err := fe.MarkExecuted(ctx, a.ID, r.Execute(ctx, a)); err != nil {
			r.log.Error("four eyes: record the execution", "approval", a.ID, "err", err)
			return false
		}
	}
	return true
}

// ApprovalReport is a four-eyes request after a decision and, when it was
// executed, what the execution did (an [EraseReport], a [HoldReport] or a
// [PolicyReport]).
type ApprovalReport struct {
	access.Approval
	Result json.RawMessage `json:"result,omitempty"`
}

// fourEyesFor checks that c may take part in four eyes here.
func (r *Reader) fourEyesFor(c Caller) (*access.FourEyes, error) {
	if err := c.may(access.PermApprove, r.opts.Now()); err != nil {
		return nil, err
	}
	if r.opts.Access == nil {
		return nil, invalid("this reader keeps no approvals")
	}
	return r.opts.Access.FourEyes(), nil
}

// Approvals lists the four-eyes requests in state (all if empty), newest
// first, as they stand now.
func (r *Reader) Approvals(ctx context.Context, c Caller, state access.ApprovalState) ([]access.Approval, error) {
	fe, err := r.fourEyesFor(c)
	if err != nil {
		return nil, err
	}
	list, err := fe.List(ctx, state)
	if err != nil {
		return nil, approvalError(err)
	}
	if list == nil {
		list = []access.Approval{}
	}
	return list, nil
}

// Approval returns request id as it stands now.
func (r *Reader) Approval(ctx context.Context, c Caller, id uint64) (*access.Approval, error) {
	fe, err := r.fourEyesFor(c)
	if err != nil {
		return nil, err
	}
	a, err := fe.Get(ctx, id)
	if err != nil {
		return nil, approvalError(err)
	}
	return &a, nil
}

// Approve approves request id as c, who must not be its requester, and
// executes it ([Reader.Execute]): the report says whether it was executed
// or failed, and what it did.
func (r *Reader) Approve(ctx context.Context, c Caller, id uint64, comment string) (*ApprovalReport, error) {
	fe, err := r.fourEyesFor(c)
	if err != nil {
		return nil, err
	}
	var res json.RawMessage
	a, err := fe.Approve(context.WithValue(ctx, resultKey{}, &res), c.actor(), id, comment)
	if err != nil {
		return nil, approvalError(err)
	}
	return &ApprovalReport{Approval: a, Result: res}, nil
}

// Deny denies request id as c (not its requester), for the reason given.
func (r *Reader) Deny(ctx context.Context, c Caller, id uint64, reason string) (*access.Approval, error) {
	fe, err := r.fourEyesFor(c)
	if err != nil {
		return nil, err
	}
	a, err := fe.Deny(ctx, c.actor(), id, reason)
	if err != nil {
		return nil, approvalError(err)
	}
	return &a, nil
}
