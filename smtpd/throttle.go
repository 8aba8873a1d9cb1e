// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"strings"
	"sync"
	"time"
)

// Throttling of failed AUTH (Options.AuthFailuresPerIP/PerUser).
const (
	authBackoffBase = time.Minute
	authBackoffMax  = time.Hour
	// authForget: a key's failures are forgotten this long after its
	// last failure.
	authForget = time.Hour
	// authReportEvery: refused attempts of one address are summarised at
	// most this often.
	authReportEvery = time.Minute
	// authMaxKeys bounds the table; beyond it the stalest keys go.
	authMaxKeys = 10000
	// maxAuditUser is how much of a user name reaches logs and OnAuth.
	maxAuditUser = 256
)

// authThrottle counts AUTH failures per client address and per user name
// and refuses attempts during a backoff that doubles with each failure past
// the allowance. It is safe for concurrent use.
type authThrottle struct {
	perIP, perUser int
	now            func() time.Time

	mu    sync.Mutex
	ips   map[string]*authKey
	users map[string]*authKey
}

type authKey struct {
	failures   int
	last       time.Time // last failure
	until      time.Time // refused before this
	refused    int       // refused attempts not yet reported
	reportedAt time.Time
}

func newAuthThrottle(perIP, perUser int) *authThrottle {
	return &authThrottle{perIP: perIP, perUser: perUser, now: time.Now,
		ips: make(map[string]*authKey), users: make(map[string]*authKey)}
}

// allow reports whether an attempt by user from ip may check its password.
// checkUser is false for trusted clients, whose users are not throttled by
// failures from elsewhere. When refused, report > 0 asks the caller to
// summarise that many refused attempts from ip.
func (t *authThrottle) allow(ip, user string, checkUser bool) (ok bool, report int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	blocked := false
	if k := t.ips[ip]; k != nil && now.Before(k.until) {
		blocked = true
	}
	if k := t.users[user]; checkUser && k != nil && now.Before(k.until) {
		blocked = true
	}
	if !blocked {
		return true, 0
	}
	k := t.key(t.ips, ip, now)
	k.refused++
	if now.Sub(k.reportedAt) >= authReportEvery {
		report, k.refused, k.reportedAt = k.refused, 0, now
	}
	return false, report
}

// failed records a failure of user from ip.
func (t *authThrottle) failed(ip, user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.fail(t.key(t.ips, ip, now), t.perIP, now)
	t.fail(t.key(t.users, user, now), t.perUser, now)
}

// succeeded forgets the address's failures (not the user's: a guesser
// that also holds one valid account must not reset the others).
func (t *authThrottle) succeeded(ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if k := t.ips[ip]; k != nil && k.refused == 0 {
		delete(t.ips, ip)
	}
}

func (t *authThrottle) fail(k *authKey, allowance int, now time.Time) {
	k.failures++
	k.last = now
	if over := k.failures - allowance; over >= 0 {
		d := authBackoffBase << min(over, 6)
		k.until = now.Add(min(d, authBackoffMax))
	}
}

// key returns m's entry for name, creating it; stale entries are dropped
// first when the table is full.
func (t *authThrottle) key(m map[string]*authKey, name string, now time.Time) *authKey {
	if k := m[name]; k != nil {
		if now.Sub(k.last) > authForget && now.After(k.until) && k.refused == 0 {
			*k = authKey{}
		}
		return k
	}
	if len(m) >= authMaxKeys {
		for n, k := range m {
			if now.Sub(k.last) > authForget && now.After(k.until) && k.refused == 0 {
				delete(m, n)
			}
		}
		if len(m) >= authMaxKeys {
			// Still full of live keys: forget an arbitrary one rather
			// than grow without bound.
			for n := range m {
				delete(m, n)
				break
			}
		}
	}
	k := &authKey{}
	m[name] = k
	return k
}

// unreported returns and clears the refused counts not yet summarised.
func (t *authThrottle) unreported() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for ip, k := range t.ips {
		if k.refused > 0 {
			out[ip] = k.refused
			k.refused = 0
		}
	}
	return out
}

// flushThrottled reports the refused AUTH attempts not yet summarised.
func (s *Server) flushThrottled() {
	for ip, n := range s.throttle.unreported() {
		s.log.Warn("smtp auth attempts refused by throttling", "ip", ip, "refused", n)
		if f := s.opts.OnAuthThrottled; f != nil {
			f(ip, n)
		}
	}
}

// auditUser cuts a user name for logs and the audit trail.
func auditUser(user string) string {
	if len(user) > maxAuditUser {
		user = user[:maxAuditUser]
	}
	return strings.ToValidUTF8(user, "\uFFFD")
}
