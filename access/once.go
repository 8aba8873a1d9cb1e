// SPDX-License-Identifier: Apache-2.0

package access

import (
	"sync"
	"time"
)

// maxPending bounds each [onceStore]: at most this many challenges, OIDC
// flows or half-done sign-ins wait at once, so that starting them cannot
// exhaust memory.
const maxPending = 10000

// onceStore holds short-lived secrets of ceremonies in memory (WebAuthn
// challenges, OIDC flows): each is good once and until it expires; a
// restart forgets them.
type onceStore[T any] struct {
	mu sync.Mutex
	m  map[string]onceEntry[T]
}

type onceEntry[T any] struct {
	v       T
	expires time.Time
}

// put keeps v under key for ttl. It fails with [ErrBusy] when
// [maxPending] entries are live.
func (c *onceStore[T]) put(key string, v T, now time.Time, ttl time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]onceEntry[T]{}
	}
	if len(c.m) >= maxPending {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxPending {
			return ErrBusy
		}
	}
	c.m[key] = onceEntry[T]{v: v, expires: now.Add(ttl)}
	return nil
}

// take returns and forgets the entry under key, if it is still good.
func (c *onceStore[T]) take(key string, now time.Time) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	delete(c.m, key)
	if !ok || !now.Before(e.expires) {
		var zero T
		return zero, false
	}
	return e.v, true
}
