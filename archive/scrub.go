// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/store"
	"github.com/sealmail/sealmail/vfs"
)

// ScrubOptions configures [Archive.Scrub].
type ScrubOptions struct {
	// Rate is how many bytes per second the scrubber reads at most.
	Rate int64
	// Every is how long after a full pass began the next one begins (a
	// pass that takes longer is followed at once). Default 7 days.
	Every time.Duration
	// StartAfter is the wait before the first pass (or the rest of one a
	// restart interrupted): the daemon's start has the disk first.
	StartAfter time.Duration
}

// ScrubPass is one pass of the scrubber over the sealed segments.
type ScrubPass struct {
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended,omitzero"`
	Segments int       `json:"segments"` // checked so far
	Total    int       `json:"total"`    // sealed segments when the pass began
	Bytes    int64     `json:"bytes"`
	// Next is the segment the pass checks next (to go on after a restart).
	Next store.SegmentSeq `json:"next"`
	// Problems names each damaged segment and what is wrong with it.
	Problems []string `json:"problems"`
}

// ScrubStatus is the scrubber's state, for status and metrics.
type ScrubStatus struct {
	Rate    int64      `json:"rate_bytes_per_second"` // 0: not running
	Last    *ScrubPass `json:"last,omitempty"`        // the last full pass
	Current *ScrubPass `json:"current,omitempty"`     // the pass under way
	// Since the daemon started: bytes and segments read, damaged segments
	// found.
	BytesTotal    int64 `json:"bytes_total"`
	SegmentsTotal int64 `json:"segments_total"`
	FindingsTotal int64 `json:"findings_total"`
}

// scrubber is the archive's scrubbing state.
type scrubber struct {
	mu     sync.Mutex
	status ScrubStatus
}

// ScrubStatusNow returns the scrubber's state.
func (a *Archive) ScrubStatusNow() ScrubStatus {
	a.scrub.mu.Lock()
	defer a.scrub.mu.Unlock()
	st := a.scrub.status
	st.Last, st.Current = clonePass(st.Last), clonePass(st.Current)
	return st
}

// problems returns the pass's problems; none for no pass.
func (p *ScrubPass) problems() []string {
	if p == nil {
		return nil
	}
	return p.Problems
}

func clonePass(p *ScrubPass) *ScrubPass {
	if p == nil {
		return nil
	}
	c := *p
	c.Problems = slices.Clone(p.Problems)
	return &c
}

func (a *Archive) scrubState() scrubState {
	st := a.ScrubStatusNow()
	return scrubState{Last: st.Last, Current: st.Current}
}

// Scrub re-verifies the sealed segments in the background until ctx ends:
// each pass reads every sealed segment again at most o.Rate bytes per
// second and checks its SHA-256 against the catalog's and its records'
// CRCs (a sealed segment never changes: any difference is damage). A pass
// goes on after a restart where it stopped (monitor.json). Its start and
// end are logged and audited (scrub), and each damaged segment is logged
// as an error and audited at once. It returns ctx's error.
func (a *Archive) Scrub(ctx context.Context, o ScrubOptions) error {
	if o.Rate <= 0 {
		return fmt.Errorf("scrub: rate %d bytes per second", o.Rate)
	}
	if o.Every <= 0 {
		o.Every = 7 * 24 * time.Hour
	}
	a.scrub.mu.Lock()
	a.scrub.status.Rate = o.Rate
	a.scrub.mu.Unlock()
	defer func() {
		a.scrub.mu.Lock()
		a.scrub.status.Rate = 0
		a.scrub.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(o.StartAfter):
	}
	for {
		st := a.ScrubStatusNow()
		wait := time.Duration(0)
		if st.Current == nil && st.Last != nil {
			wait = time.Until(st.Last.Started.Add(o.Every))
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		if err := a.scrubPass(ctx, o.Rate); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			a.log.Error("scrub: pass failed; trying again in an hour", "err", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Hour):
			}
		}
	}
}

// scrubPass runs (or goes on with) one pass.
func (a *Archive) scrubPass(ctx context.Context, rate int64) error {
	ctx = WithActor(ctx, "scrub")
	segs, err := a.store.Segments()
	if err != nil {
		return err
	}
	var sealed []store.SegmentInfo
	for _, si := range segs {
		if si.State == store.SegmentSealed {
			sealed = append(sealed, si)
		}
	}
	a.scrub.mu.Lock()
	p := a.scrub.status.Current
	if p == nil {
		p = &ScrubPass{Started: a.opts.Now().UTC(), Total: len(sealed), Problems: []string{}}
		a.scrub.status.Current = p
	}
	resumed := p.Segments > 0
	a.scrub.mu.Unlock()
	if !resumed {
		a.log.Info("scrub: pass started", "segments", len(sealed), "rate_bytes_per_second", rate)
		if err := a.logEvent(ctx, audit.TypeScrub, scrubFields{Phase: "start", Segments: len(sealed)}); err != nil {
			return err
		}
	}
	pace := vfs.NewPace(ctx, rate)
	for _, si := range sealed {
		a.scrub.mu.Lock()
		next := p.Next
		a.scrub.mu.Unlock()
		if si.Seq < next {
			continue
		}
		c, err := a.store.CheckSealed(ctx, si.Seq, pace.Reader)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			c = &store.SealedCheck{Segment: si.Seq, Problems: []string{err.Error()}}
		}
		a.scrub.mu.Lock()
		p.Segments++
		p.Bytes += c.Bytes
		p.Next = si.Seq + 1
		a.scrub.status.BytesTotal += c.Bytes
		a.scrub.status.SegmentsTotal++
		for _, pr := range c.Problems {
			p.Problems = append(p.Problems, fmt.Sprintf("segment %s: %s", si.Seq, pr))
		}
		if len(c.Problems) > 0 {
			a.scrub.status.FindingsTotal++
		}
		a.scrub.mu.Unlock()
		if len(c.Problems) > 0 {
			a.log.Error("scrub: a sealed segment is damaged; run `sealmail verify` and restore the file from a backup",
				"segment", si.Seq.String(), "problems", c.Problems)
			if err := a.logEvent(context.WithoutCancel(ctx), audit.TypeScrub, scrubFields{Phase: "finding", Segment: si.Seq.String(), Problems: c.Problems}); err != nil {
				return err
			}
		}
		if err := a.saveMonitor(); err != nil {
			a.log.Warn("scrub: save progress", "err", err)
		}
	}
	// The pass has ended: it is recorded even while the daemon stops.
	a.scrub.mu.Lock()
	p.Ended = a.opts.Now().UTC()
	end := clonePass(p)
	a.scrub.mu.Unlock()
	err = a.logEvent(context.WithoutCancel(ctx), audit.TypeScrub, scrubFields{Phase: "end", Segments: end.Segments, Bytes: end.Bytes,
		Started: end.Started.Format(time.RFC3339), Problems: end.Problems})
	if err != nil {
		return err // the pass is done again
	}
	a.log.Info("scrub: pass ended", "segments", end.Segments, "bytes", end.Bytes, "problems", len(end.Problems),
		"took", end.Ended.Sub(end.Started).Round(time.Second).String())
	a.scrub.mu.Lock()
	a.scrub.status.Last, a.scrub.status.Current = p, nil
	a.scrub.mu.Unlock()
	if err := a.saveMonitor(); err != nil {
		a.log.Warn("scrub: save the pass", "err", err)
	}
	return nil
}
