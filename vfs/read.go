// SPDX-License-Identifier: Apache-2.0

package vfs

import (
	"context"
	"io"
	"time"
)

// ContextReader returns r that fails with ctx's error once ctx has ended,
// so that a long copy stops between reads.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return &ctxReader{ctx: ctx, r: r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// Pace spreads reads over time: the bytes read through its readers, since
// it was made, average at most rate per second. A read waits (or fails
// with ctx's error) until its bytes are due. Its readers are used one at a
// time, not concurrently.
type Pace struct {
	ctx   context.Context
	rate  int64
	start time.Time
	read  int64
}

// NewPace returns a pace of rate bytes per second (rate > 0).
func NewPace(ctx context.Context, rate int64) *Pace {
	return &Pace{ctx: ctx, rate: rate, start: time.Now()}
}

// Reader returns r read at p's pace.
func (p *Pace) Reader(r io.Reader) io.Reader { return &pacedReader{p: p, r: r} }

type pacedReader struct {
	p *Pace
	r io.Reader
}

func (pr *pacedReader) Read(b []byte) (int, error) {
	p := pr.p
	// At most a tenth of a second's worth at a time, after the bytes read
	// so far are due.
	b = b[:min(len(b), max(int(p.rate/10), 4096))]
	if due := p.start.Add(time.Duration(float64(p.read) / float64(p.rate) * float64(time.Second))); time.Until(due) > 0 {
		t := time.NewTimer(time.Until(due))
		select {
		case <-p.ctx.Done():
			t.Stop()
			return 0, p.ctx.Err()
		case <-t.C:
		}
	}
	n, err := pr.r.Read(b)
	p.read += int64(n)
	return n, err
}
