// SPDX-License-Identifier: Apache-2.0

package smtpd

import "sync"

// bytesMinRead is the read-ahead room a message buffer keeps.
const bytesMinRead = 512

// initialCharge is what MAIL without SIZE= reserves of the budget, in
// message octets.
const initialCharge = 64 << 10

// maxPooledBuffer is the largest message buffer kept for reuse.
const maxPooledBuffer = 1 << 20

// bufferPool keeps message buffers between transactions, so that receiving
// a message of the usual size allocates (and zeroes) nothing. A buffer is
// reused only where it fits without being much larger than asked for
// (twice, or 256 KiB), so that a transaction's charge stays near its size.
type bufferPool struct{ p sync.Pool }

// get returns an empty buffer of capacity at least n.
func (bp *bufferPool) get(n int64) []byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		if c := int64(cap(*b)); c >= n && c <= max(2*n, 256<<10) {
			return (*b)[:0]
		}
		bp.p.Put(b)
	}
	return make([]byte, 0, n)
}

// put keeps b for reuse; nothing may use it afterwards.
func (bp *bufferPool) put(b []byte) {
	if cap(b) <= maxPooledBuffer {
		bp.p.Put(&b)
	}
}

// budget is the in-flight memory budget shared by all sessions
// (Options.MaxInFlightBytes). Amounts are in bytes of memory: message
// octets × [MessageMemoryFactor].
type budget struct {
	mu   sync.Mutex
	used int64
	max  int64
}

// take charges n bytes and reports whether they fitted; nothing is charged
// when they did not.
func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < 0 || b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

// give returns n bytes.
func (b *budget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.used < 0 {
		panic("smtpd: in-flight budget returned more than taken")
	}
}

// inUse returns the bytes charged now.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// charge is one transaction's share of the budget. It is not safe for
// concurrent use; the session guards it.
type charge struct {
	b *budget
	n int64 // memory bytes held
}

// grow makes the charge cover a buffer of octets message bytes.
func (c *charge) grow(octets int64) bool {
	want := MessageMemoryFactor * octets
	if want <= c.n {
		return true
	}
	if !c.b.take(want - c.n) {
		return false
	}
	c.n = want
	return true
}

// shrink lowers the charge to a buffer of octets message bytes, after a
// growth that charged the old and the new buffer together.
func (c *charge) shrink(octets int64) {
	if want := MessageMemoryFactor * octets; want < c.n {
		c.b.give(c.n - want)
		c.n = want
	}
}

// release returns the whole charge.
func (c *charge) release() {
	if c.n > 0 {
		c.b.give(c.n)
		c.n = 0
	}
}
