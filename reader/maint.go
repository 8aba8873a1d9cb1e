// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"fmt"
	"os"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/audit"
)

// ReindexReport says where a reindex stands: the index covers the audit
// log through Coverage.IndexedSeq and will have caught up with what was
// archived when it was asked once that reaches Target.
type ReindexReport struct {
	All      bool     `json:"all"`
	Target   uint64   `json:"target"`
	Coverage Coverage `json:"coverage"`
}

// Reindex reports how far the index is behind (the tail catches up by
// itself); with all it first throws the index away and rebuilds it from
// the audit log's first entry, checking everything again. Holds are then
// evaluated from nothing: purge keeps everything until they are again.
// Root on the host and admins may (permission config: it maintains the
// reader and shows no content).
func (r *Reader) Reindex(ctx context.Context, c Caller, all bool) (*ReindexReport, error) {
	if err := c.may(access.PermConfig, r.opts.Now()); err != nil {
		return nil, err
	}
	if err := r.requireUnlocked(); err != nil {
		return nil, err
	}
	if all {
		// Audited first: no rebuild the log does not show.
		if _, err := r.rcv.RecordEvent(api.OnBehalfOf(ctx, c.Name), audit.TypeReaderReindex, struct {
			All        bool   `json:"all"`
			IndexedSeq uint64 `json:"indexed_seq"`
		}{true, r.Coverage().IndexedSeq}); err != nil {
			return nil, err
		}
		if err := r.rebuild(ctx); err != nil {
			return nil, err
		}
	}
	page, err := r.look(ctx, r.Coverage().IndexedSeq, 1)
	if err != nil {
		return nil, err
	}
	r.poke()
	return &ReindexReport{All: all, Target: page.Horizon, Coverage: r.Coverage()}, nil
}

// rebuild replaces the index with an empty one.
func (r *Reader) rebuild(ctx context.Context) error {
	r.tailMu.Lock()
	defer r.tailMu.Unlock()
	r.xmu.Lock()
	defer r.xmu.Unlock()
	if err := r.x.Close(); err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	if err := os.RemoveAll(r.indexDir()); err != nil {
		return fmt.Errorf("reindex: remove the index: %w", err)
	}
	if err := r.openIndex(ctx); err != nil {
		return err
	}
	if err := r.refreshHolds(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	r.docs = 0
	r.mu.Unlock()
	r.publish()
	r.log.Info("index removed: rebuilding it from the audit log's first entry")
	return nil
}

// PolicyOptions says how to apply the retention policy.
type PolicyOptions struct {
	// DryRun reports what would change without changing anything.
	DryRun bool `json:"dry_run"`
	// Reason is the reason of the four-eyes request for shortening
	// changes (why the rules changed); default a count of them.
	Reason string `json:"reason,omitempty"`
}

// PolicyReport is what applying the retention policy changed (or would),
// the shortening changes withheld, and the four-eyes request filed for
// them.
type PolicyReport struct {
	archive.PolicyReport
	// RulesSHA256 names the receiver's retention rules the report is of.
	RulesSHA256 string           `json:"rules_sha256"`
	Approval    *access.Approval `json:"approval,omitempty"`
}

// ApplyPolicy applies the retention policy ([Reader.ApplyPolicyWith]
// without a dry run).
func (r *Reader) ApplyPolicy(ctx context.Context, c Caller) (*archive.PolicyReport, error) {
	rep, err := r.ApplyPolicyWith(ctx, c, PolicyOptions{})
	if err != nil {
		return nil, err
	}
	return &rep.PolicyReport, nil
}

// ApplyPolicyWith re-evaluates the receiver's retention rules for every
// live message: it decrypts each and hands the receiver what the rules
// look at (headers and envelopes); every change is audited there. A
// change that shortens a retention ([archive.PolicyChange.Shortens]) is
// made only if shortening needs no second officer; otherwise it is
// withheld and one four-eyes request asks for all of them, under the
// rules in force now.
func (r *Reader) ApplyPolicyWith(ctx context.Context, c Caller, o PolicyOptions) (*PolicyReport, error) {
	if err := c.may(access.PermPolicy, r.opts.Now()); err != nil {
		return nil, err
	}
	if r.identities() == nil {
		return nil, ErrLocked
	}
	need, err := r.needsApproval(access.ApproveRetentionShorten)
	if err != nil && !o.DryRun {
		return nil, err
	}
	st, err := r.rcv.Status(api.OnBehalfOf(ctx, c.Name))
	if err != nil {
		return nil, err
	}
	shorten := st.RetentionSHA256
	if need {
		shorten = ""
	}
	rep, err := r.applyPolicy(ctx, c, o, shorten, st.RetentionSHA256)
	if err != nil || o.DryRun || len(rep.Withheld) == 0 {
		return rep, err
	}
	p := ShortenPayload{RulesSHA256: rep.RulesSHA256, Count: len(rep.Withheld), Changes: rep.Withheld[:min(len(rep.Withheld), maxShownChanges)]}
	reason := o.Reason
	if reason == "" {
		reason = fmt.Sprintf("policy apply: shorten the retention of %d messages to what the rules in force give", len(rep.Withheld))
	}
	if rep.Approval, err = r.request(ctx, c, access.ApproveRetentionShorten, reason, p); err != nil {
		return nil, err
	}
	return rep, nil
}

// applyPolicy applies the rules (those named rules), making shortening
// changes only under the rules named by shorten (empty: none).
func (r *Reader) applyPolicy(ctx context.Context, c Caller, o PolicyOptions, shorten, rules string) (*PolicyReport, error) {
	ids := r.identities()
	if ids == nil {
		return nil, ErrLocked
	}
	rep, err := archive.ReapplyPolicy(api.OnBehalfOf(ctx, c.Name), r.rcv, ids, archive.PolicyApply{DryRun: o.DryRun, ShortenRules: shorten})
	if err != nil {
		return nil, err
	}
	return &PolicyReport{PolicyReport: *rep, RulesSHA256: rules}, nil
}
