// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a fake clock: it starts 5 s into a TOTP step and moves only when
// told (plus tick per reading, so that consecutive events are ordered).
type clock struct {
	mu   sync.Mutex
	t    time.Time
	tick time.Duration
}

func newClock() *clock {
	t := time.Now().UTC().Truncate(totpPeriod * time.Second).Add(5 * time.Second)
	return &clock{t: t, tick: time.Microsecond}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.tick)
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder keeps audit events.
type recorder struct {
	mu     sync.Mutex
	events []Event
	fail   error
}

func (r *recorder) Audit(_ context.Context, ev Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, ev)
	return nil
}

// take returns and forgets the events so far.
func (r *recorder) take() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

// cheap makes password hashing fast for tests; the defaults are measured in
// TestPasswordDefaults.
var cheap = PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1}

// fastRetry keeps backoff out of the way of tests that are not about it
// (the clock ticks 1 µs per reading).
var fastRetry = LockoutOptions{BaseDelay: time.Nanosecond, MaxDelay: time.Nanosecond}

type fixture struct {
	st  *State
	clk *clock
	rec *recorder
	dir string
}

func newFixture(t *testing.T, opts StateOptions) *fixture {
	t.Helper()
	f := &fixture{clk: newClock(), rec: &recorder{}, dir: filepath.Join(t.TempDir(), "state")}
	opts.Now, opts.Audit = f.clk.Now, f.rec.Audit
	if opts.Password == (PasswordParams{}) {
		opts.Password = cheap
	}
	st, err := OpenState(f.dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	return f
}

var cli = Actor{Remote: "cli:test"}

func (f *fixture) add(t *testing.T, name string, role Role, addrs ...string) Credentials {
	t.Helper()
	c, err := f.st.AddUser(context.Background(), cli, NewUser{Name: name, Role: role, Addresses: addrs})
	if err != nil {
		t.Fatalf("AddUser(%s): %v", name, err)
	}
	return c
}

// code is the TOTP code for c now.
func (f *fixture) code(t *testing.T, c Credentials) string {
	t.Helper()
	code, err := TOTPCode(c.TOTPSecret, f.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func (f *fixture) login(t *testing.T, c Credentials, remote string) (NewSession, error) {
	t.Helper()
	return f.st.Login(context.Background(), LoginRequest{User: c.User.Name, Password: c.Password, TOTP: f.code(t, c), Remote: remote})
}

// noSecrets fails if any event mentions one of the secrets.
func noSecrets(t *testing.T, events []Event, secrets ...string) {
	t.Helper()
	for _, ev := range events {
		s := fmt.Sprintf("%+v", ev)
		for _, sec := range secrets {
			if sec != "" && strings.Contains(s, sec) {
				t.Errorf("event %s leaks a secret %q", s, sec)
			}
		}
	}
}
