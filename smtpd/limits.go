// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// guardListener admits connections: it refuses clients outside
// Options.AllowedNetworks and beyond Options.MaxConnections before go-smtp
// sees them, and wraps the rest in a [trackedConn] (under TLS for an
// implicit-TLS listener).
type guardListener struct {
	net.Listener
	srv         *Server
	implicitTLS bool
	addr        string
	closeOnce   sync.Once
	closeErr    error
}

// Accept returns the next admitted connection.
func (g *guardListener) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, refusal := g.srv.admit(c, g.addr)
		if tc == nil {
			if refusal == "" {
				// Shutting down.
				c.Close()
				return nil, net.ErrClosed
			}
			g.srv.refuse(c, refusal, g.implicitTLS)
			continue
		}
		if g.implicitTLS {
			return tls.Server(tc, g.srv.tlsConfig), nil
		}
		return tc, nil
	}
}

// Close closes the listener once; go-smtp and Shutdown both call it.
func (g *guardListener) Close() error {
	g.closeOnce.Do(func() {
		g.closeErr = g.Listener.Close()
		g.srv.mu.Lock()
		delete(g.srv.listeners, g)
		g.srv.mu.Unlock()
	})
	return g.closeErr
}

// admit registers c, or returns the reply it is refused with ("" when the
// server is shutting down).
func (s *Server) admit(c net.Conn, listenAddr string) (*trackedConn, string) {
	if !s.allowed(c.RemoteAddr()) {
		s.log.Info("smtp connection refused: network not allowed", "remote", c.RemoteAddr().String())
		return nil, replyNetworkRefused
	}
	ip := addrIP(c.RemoteAddr())
	trusted := s.trusted(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return nil, ""
	}
	// Untrusted clients share MaxConnections minus the reserved slots;
	// trusted ones (journaling sources) may use every slot.
	limit := s.opts.MaxConnections
	if !trusted {
		limit -= s.opts.ReservedConnections
	}
	if len(s.conns) >= limit {
		s.log.Warn("smtp connection refused: too many connections", "remote", c.RemoteAddr().String(), "max", limit, "trusted", trusted)
		return nil, replyTooManyConns
	}
	if !trusted && s.opts.MaxConnectionsPerIP > 0 && s.perIP[ip] >= s.opts.MaxConnectionsPerIP {
		s.log.Warn("smtp connection refused: too many connections from one address", "remote", c.RemoteAddr().String(), "max", s.opts.MaxConnectionsPerIP)
		return nil, replyTooManyConnsIP
	}
	tc := &trackedConn{Conn: c, srv: s, listenAddr: listenAddr, ip: ip, trusted: trusted,
		sessionEnd: time.Now().Add(s.opts.MaxSessionTime)}
	s.conns[tc] = struct{}{}
	s.perIP[ip]++
	return tc, ""
}

// connCount returns the number of connections counted now.
func (s *Server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// addrIP is the client address of a TCP peer (unmapped), or the zero Addr.
func addrIP(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// trusted reports whether ip is in Options.TrustedNetworks.
func (s *Server) trusted(ip netip.Addr) bool {
	for _, p := range s.opts.TrustedNetworks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// onCommand is go-smtp's OnCommand hook: it spends the idle command budget
// (Options.MaxIdleCommands). RCPT, DATA and BDAT carry a transaction and
// are not counted here (refused RCPTs are, by the session); QUIT always
// works.
func (s *Server) onCommand(c *smtp.Conn, cmd string) *smtp.SMTPError {
	switch cmd {
	case "RCPT", "DATA", "BDAT", "QUIT":
		return nil
	}
	tc := trackedOf(c.Conn())
	if tc == nil || tc.spendIdle() {
		return nil
	}
	s.log.Warn("smtp connection closed: idle command budget spent", "remote", tc.RemoteAddr().String(), "max", s.opts.MaxIdleCommands)
	return replyIdleCommands
}

// trackedOf returns the trackedConn beneath nc (a TLS connection or the
// trackedConn itself), or nil.
func trackedOf(nc net.Conn) *trackedConn {
	if t, ok := nc.(*tls.Conn); ok {
		nc = t.NetConn()
	}
	tc, _ := nc.(*trackedConn)
	return tc
}

// allowed reports whether a client address is in Options.AllowedNetworks.
func (s *Server) allowed(a net.Addr) bool {
	if len(s.opts.AllowedNetworks) == 0 {
		return true
	}
	ip := addrIP(a)
	for _, p := range s.opts.AllowedNetworks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// refuse writes reply to c and closes it, on a goroutine of its own so that
// a slow client cannot stall Accept. At most MaxConnections refusals run at
// once; beyond that connections are closed without a reply.
func (s *Server) refuse(c net.Conn, reply string, implicitTLS bool) {
	s.mu.Lock()
	if s.refusing >= s.opts.MaxConnections || s.shutting.Load() {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.refusing++
	s.refusals.Add(1)
	s.mu.Unlock()
	go func() {
		defer func() {
			s.mu.Lock()
			s.refusing--
			s.mu.Unlock()
			s.refusals.Done()
		}()
		defer c.Close()
		c.SetDeadline(time.Now().Add(refusalTimeout))
		var w io.Writer = c
		if implicitTLS {
			tc := tls.Server(c, s.tlsConfig)
			defer tc.Close()
			w = tc
		}
		if s.opts.OnReply != nil && len(reply) >= 3 {
			if code, err := strconv.Atoi(reply[:3]); err == nil {
				s.opts.OnReply(code)
			}
		}
		_, _ = io.WriteString(w, reply) // best effort: the connection is refused either way
	}()
}

// trackedConn is a client connection as go-smtp sees it (beneath TLS when
// TLS is used). It counts towards MaxConnections until closed and lets
// Shutdown end the connection once it is idle.
type trackedConn struct {
	net.Conn
	srv        *Server
	listenAddr string
	ip         netip.Addr
	trusted    bool      // in Options.TrustedNetworks
	sessionEnd time.Time // Options.MaxSessionTime after accept
	forgetOnce sync.Once
	idle       atomic.Int64 // commands counted against MaxIdleCommands

	mu   sync.Mutex
	inTx bool
	// closing makes every Read fail with closeErr: a timeout, on which
	// go-smtp answers 421 and closes, or io.EOF after the session has
	// written its own 421.
	closing  atomic.Bool
	closeErr error
}

// errShutdown is the timeout error a closing connection reads.
type errShutdown struct{}

func (errShutdown) Error() string   { return "smtpd: server shutting down" }
func (errShutdown) Timeout() bool   { return true }
func (errShutdown) Temporary() bool { return true }

// Read reads from the connection unless it is closing.
func (c *trackedConn) Read(b []byte) (int, error) {
	if c.closing.Load() {
		return 0, c.closeErr
	}
	n, err := c.Conn.Read(b)
	if err != nil && c.closing.Load() {
		return n, c.closeErr
	}
	return n, err
}

// SetReadDeadline sets the read deadline unless the connection is closing,
// whose deadline stays in the past.
func (c *trackedConn) SetReadDeadline(t time.Time) error {
	if c.closing.Load() {
		return nil
	}
	// Options.MaxSessionTime caps every wait (zero t means none).
	if t.IsZero() || t.After(c.sessionEnd) {
		t = c.sessionEnd
	}
	err := c.Conn.SetReadDeadline(t)
	if c.closing.Load() {
		// Lost a race with startClosing: restore its deadline.
		c.Conn.SetReadDeadline(time.Unix(1, 0))
	}
	return err
}

// SetDeadline sets both deadlines, keeping a closing connection's read
// deadline in the past.
func (c *trackedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// Close closes the connection and stops counting it.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.forgetOnce.Do(func() {
		c.srv.mu.Lock()
		delete(c.srv.conns, c)
		if c.srv.perIP[c.ip]--; c.srv.perIP[c.ip] <= 0 {
			delete(c.srv.perIP, c.ip)
		}
		c.srv.mu.Unlock()
	})
	return err
}

// spendIdle counts one command against Options.MaxIdleCommands and reports
// whether the budget still holds.
func (c *trackedConn) spendIdle() bool {
	return c.idle.Add(1) <= int64(c.srv.opts.MaxIdleCommands)
}

// messageAccepted refills the idle command budget.
func (c *trackedConn) messageAccepted() { c.idle.Store(0) }

// startClosing makes the blocked and every later Read fail with err.
func (c *trackedConn) startClosing(err error) {
	c.mu.Lock()
	if c.closing.Load() {
		c.mu.Unlock()
		return
	}
	c.closeErr = err
	c.closing.Store(true)
	c.mu.Unlock()
	c.Conn.SetReadDeadline(time.Unix(1, 0))
}

// closeQuietly ends the connection at its next read without a further reply.
func (c *trackedConn) closeQuietly() { c.startClosing(io.EOF) }

// beginTx marks a transaction in flight; it fails once Shutdown has begun.
func (c *trackedConn) beginTx() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv.shutting.Load() {
		return false
	}
	c.inTx = true
	return true
}

// endTx marks the transaction finished; during Shutdown the now idle
// connection is closed.
func (c *trackedConn) endTx() {
	c.mu.Lock()
	c.inTx = false
	c.mu.Unlock()
	if c.srv.shutting.Load() {
		c.closeIfIdle()
	}
}

// closeIfIdle closes the connection with 421 unless a transaction is in
// flight; Shutdown calls it after setting shutting, endTx after a
// transaction.
func (c *trackedConn) closeIfIdle() {
	c.mu.Lock()
	idle := !c.inTx
	c.mu.Unlock()
	if idle {
		c.startClosing(errShutdown{})
	}
}

// recipientSet matches recipients against Options.AcceptRecipients.
type recipientSet struct {
	any       bool
	addresses map[string]bool
	domains   map[string]bool
}

func newRecipientSet(patterns []string) recipientSet {
	rs := recipientSet{addresses: map[string]bool{}, domains: map[string]bool{}}
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		switch {
		case p == "":
		case strings.HasPrefix(p, "@"):
			rs.domains[p[1:]] = true
		default:
			rs.addresses[p] = true
		}
	}
	rs.any = len(rs.addresses) == 0 && len(rs.domains) == 0
	return rs
}

// match reports whether the recipient address is accepted.
func (rs recipientSet) match(addr string) bool {
	if rs.any {
		return true
	}
	addr = strings.ToLower(addr)
	if rs.addresses[addr] {
		return true
	}
	i := strings.LastIndexByte(addr, '@')
	return i >= 0 && rs.domains[addr[i+1:]]
}

// Stats are the server's live figures, for metrics.
type Stats struct {
	Connections   int   // open SMTP connections
	InFlightBytes int64 // bytes charged to the in-flight budget now
}

// Stats returns the server's live figures.
func (s *Server) Stats() Stats {
	s.budget.mu.Lock()
	used := s.budget.used
	s.budget.mu.Unlock()
	return Stats{Connections: s.connCount(), InFlightBytes: used}
}
