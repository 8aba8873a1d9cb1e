// SPDX-License-Identifier: Apache-2.0

package access

import (
	"crypto/sha256"
	"encoding/json"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"
)

// LockoutOptions sets throttling and lockout of failed sign-ins. Failures
// are counted per user name and per client address; each counter throttles
// on its own. The zero value means the defaults.
type LockoutOptions struct {
	// BaseDelay is the wait after the first failure in a row; it doubles
	// with each further failure (exponential backoff). Default 1 s.
	BaseDelay time.Duration
	// MaxDelay caps the backoff. Default 1 min.
	MaxDelay time.Duration
	// UserThreshold is the number of failures in a row after which a user
	// name is locked out for Period. Default 10.
	UserThreshold int
	// AddressThreshold is the same for a client address (an IPv4 address or
	// an IPv6 /64), higher because offices share one. Default 50.
	AddressThreshold int
	// Period is how long a lockout lasts, and how long after the last failure
	// a counter is forgotten. Default 15 min.
	Period time.Duration
}

func (o LockoutOptions) withDefaults() LockoutOptions {
	if o.BaseDelay <= 0 {
		o.BaseDelay = time.Second
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = time.Minute
	}
	if o.MaxDelay < o.BaseDelay {
		o.MaxDelay = o.BaseDelay
	}
	if o.UserThreshold <= 0 {
		o.UserThreshold = 10
	}
	if o.AddressThreshold <= 0 {
		o.AddressThreshold = 50
	}
	if o.Period <= 0 {
		o.Period = 15 * time.Minute
	}
	return o
}

// delay is the backoff after count failures in a row.
func (o LockoutOptions) delay(count int) time.Duration {
	d := o.BaseDelay
	for i := 1; i < count && d < o.MaxDelay; i++ {
		d *= 2
	}
	return min(d, o.MaxDelay)
}

// failureRecord is a failure counter as stored in the failures bucket.
type failureRecord struct {
	Count       int       `json:"count"`
	Last        time.Time `json:"last"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
}

// userFailureKey is the counter key of a user name: its SHA-256, because
// names that are not users are counted too, and people type passwords into
// the name field.
func userFailureKey(name string) []byte {
	h := sha256.Sum256([]byte(name))
	return append([]byte("u:"), h[:]...)
}

// addressFailureKey is the counter key of a client address: the IPv4
// address, or the /64 an IPv6 address is in (one host usually has a whole
// /64). An unparsable remote counts as itself.
func addressFailureKey(remote string) []byte {
	ip, err := netip.ParseAddr(remote)
	if err != nil {
		return []byte("a:" + remote)
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return []byte("a:" + p.String())
	}
	return []byte("a:" + ip.String())
}

func getFailure(tx *bolt.Tx, key []byte) failureRecord {
	var f failureRecord
	if v := tx.Bucket(bucketFailures).Get(key); v != nil {
		// A damaged counter is treated as none; it is rewritten on the next
		// failure.
		_ = json.Unmarshal(v, &f)
	}
	return f
}

func putFailure(tx *bolt.Tx, key []byte, f failureRecord) error {
	if f.Count <= 0 && f.LockedUntil.IsZero() {
		return tx.Bucket(bucketFailures).Delete(key)
	}
	v, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketFailures).Put(key, v)
}

// current returns f as it stands at now: a counter whose lockout ended, or
// whose last failure is a Period ago, starts over.
func (o LockoutOptions) current(f failureRecord, now time.Time) failureRecord {
	if !f.LockedUntil.IsZero() && !now.Before(f.LockedUntil) {
		return failureRecord{}
	}
	if f.LockedUntil.IsZero() && now.Sub(f.Last) >= o.Period {
		return failureRecord{}
	}
	return f
}

// refusal returns why an attempt against f at now must wait, if it must.
func (o LockoutOptions) refusal(f failureRecord, now time.Time) *ThrottledError {
	if now.Before(f.LockedUntil) {
		return &ThrottledError{RetryAfter: f.LockedUntil.Sub(now), Locked: true}
	}
	if f.Count > 0 {
		if next := f.Last.Add(o.delay(f.Count)); now.Before(next) {
			return &ThrottledError{RetryAfter: next.Sub(now)}
		}
	}
	return nil
}

// pruneFailures deletes counters that no longer count.
func (o LockoutOptions) pruneFailures(tx *bolt.Tx, now time.Time) error {
	b := tx.Bucket(bucketFailures)
	var stale [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var f failureRecord
		if json.Unmarshal(v, &f) != nil || o.current(f, now) == (failureRecord{}) {
			stale = append(stale, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
