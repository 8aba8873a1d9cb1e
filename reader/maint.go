// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"fmt"
	"os"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
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
// Only root on the host may.
func (r *Reader) Reindex(ctx context.Context, c Caller, all bool) (*ReindexReport, error) {
	if !c.Local {
		return nil, denied("reindex: only root on the host (sealmail reindex)")
	}
	if err := r.requireUnlocked(); err != nil {
		return nil, err
	}
	if all {
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

// ApplyPolicy re-evaluates the receiver's retention rules for every live
// message: it decrypts each and hands the receiver what the rules look at
// (headers and envelopes); every change is audited there.
func (r *Reader) ApplyPolicy(ctx context.Context, c Caller) (*archive.PolicyReport, error) {
	if err := c.may(access.PermPolicy, r.opts.Now()); err != nil {
		return nil, err
	}
	ids := r.identities()
	if ids == nil {
		return nil, ErrLocked
	}
	return archive.ReapplyPolicy(api.OnBehalfOf(ctx, c.Name), r.rcv, ids)
}
