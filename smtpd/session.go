// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sealmail/sealmail"
)

// dataReadBytes is the most message content read per Read call; the data
// deadline is renewed before each one.
const dataReadBytes = 32 << 10

// replyNestedMail: RFC 5321 §4.1.4, MAIL inside a transaction.
var replyNestedMail = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Nested MAIL command"}

// session is one SMTP session: from EHLO (or from STARTTLS) to the end of
// the connection. go-smtp calls its methods from the connection's goroutine,
// except Data during BDAT, which runs on a goroutine of its own while the
// connection goroutine may call Reset or Logout; mu guards the transaction
// state against that.
type session struct {
	srv *Server
	tc  *trackedConn
	// ctx is derived from the server's context and cancelled by Logout
	// (STYLE.md: the one struct that stores a context, because go-smtp's
	// Session has none).
	ctx    context.Context
	cancel context.CancelFunc

	remote     string // ip:port, for logs and OnAuth
	clientIP   string
	helo       string
	tlsVersion string // "" for plaintext
	receivedBy string

	mu           sync.Mutex
	authUser     string
	authFailures int
	inTx         bool
	from         string
	size         int64
	rcpts        []string
	charge       charge // the transaction's share of Options.MaxInFlightBytes
}

// Mail implements smtp.Session.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	o := &s.srv.opts
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.inTx:
		return replyNestedMail
	case o.RequireTLS && s.tlsVersion == "":
		return replyTLSRequired
	case o.RequireAuth && s.authUser == "":
		return replyAuthRequired
	case opts != nil && opts.Size > o.MaxMessageBytes:
		// go-smtp already refuses this; kept so the rule holds on its own.
		return replyTooBig
	}
	var size int64
	if opts != nil {
		size = opts.Size
	}
	// Charge the budget for the declared size up front, so that a
	// transaction that cannot fit is refused before its content is sent.
	s.charge = charge{b: &s.srv.budget}
	if !s.charge.grow(max(size, initialCharge) + bytesMinRead) {
		// Info, not Warn: under load this is every retry of every sender.
		s.srv.log.Info("smtp message not admitted: in-flight budget spent", "remote", s.remote, "size", size, "in_flight", s.srv.budget.inUse())
		return replyBusy
	}
	if !s.tc.beginTx() {
		s.charge.release()
		return replyShuttingDown
	}
	if err := s.srv.ing.Admit(s.ctx, size); err != nil {
		s.charge.release()
		s.tc.endTx()
		s.srv.log.Warn("smtp message not admitted", "remote", s.remote, "size", size, "err", err)
		return replyFor(err)
	}
	s.inTx = true
	s.from = from
	s.size = size
	s.rcpts = nil
	s.srv.log.Debug("smtp mail from", "remote", s.remote, "from", logAddr(from), "size", size)
	return nil
}

// logAddr cuts an envelope address for debug logs.
func logAddr(a string) string {
	const max = 320 // RFC 5321 §4.5.3.1: local part 64 + "@" + domain 255
	if len(a) > max {
		return a[:max] + "…"
	}
	return a
}

// Rcpt implements smtp.Session.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rcpts) >= s.srv.opts.MaxRecipients {
		return s.refusedRcpt(replyTooManyRcpts)
	}
	if !s.srv.accept.match(to) {
		s.srv.log.Debug("smtp recipient refused", "remote", s.remote, "rcpt", logAddr(to))
		return s.refusedRcpt(replyBadRcpt)
	}
	s.rcpts = append(s.rcpts, to)
	s.srv.log.Debug("smtp rcpt to", "remote", s.remote, "rcpt", logAddr(to))
	return nil
}

// refusedRcpt counts a refused RCPT against the idle command budget.
func (s *session) refusedRcpt(reply *smtp.SMTPError) *smtp.SMTPError {
	if s.tc.spendIdle() {
		return reply
	}
	s.srv.log.Warn("smtp connection closed: idle command budget spent", "remote", s.remote, "max", s.srv.opts.MaxIdleCommands)
	s.tc.closeQuietly()
	return replyIdleCommands
}

// Data implements smtp.Session. r yields the message content: after
// dot-unstuffing for DATA, the concatenated chunks for BDAT. The reply is
// always an *smtp.SMTPError, 250 on success, so that go-smtp never invents
// one (it would answer 554 to a plain error).
func (s *session) Data(r io.Reader) error {
	s.mu.Lock()
	env := &sealmail.Envelope{
		MailFrom:   s.from,
		RcptTo:     append([]string(nil), s.rcpts...),
		ClientIP:   s.clientIP,
		HELO:       s.helo,
		TLS:        s.tlsVersion,
		AuthUser:   s.authUser,
		ReceivedBy: s.receivedBy,
	}
	declared := s.size
	s.mu.Unlock()

	// The buffer is garbage once Ingest returns; Reset releases too.
	defer func() {
		s.mu.Lock()
		s.charge.release()
		s.mu.Unlock()
	}()
	data, err := s.readMessage(r, declared)
	if err != nil {
		s.srv.log.Info("smtp message content not received", "remote", s.remote, "err", err)
		return replyFor(err)
	}
	defer s.srv.bufs.put(data) // Ingest keeps none of it
	env.Received = time.Now().UTC()
	id, err := s.srv.ing.Ingest(s.ctx, env, data)
	if err == nil && id == 0 {
		err = errors.New("smtpd: ingest returned message id 0")
	}
	if err != nil {
		s.srv.log.Warn("smtp ingest failed", "remote", s.remote, "size", len(data), "err", err)
		return replyFor(err)
	}
	s.srv.log.Info("smtp message accepted", "remote", s.remote, "id", id, "size", len(data))
	s.tc.messageAccepted()
	return replyQueued(id)
}

// readMessage reads the whole content into memory, at most MaxMessageBytes
// octets, renewing the read deadline to DataTimeout before every read of at
// most dataReadBytes. The buffer starts at the declared SIZE (charged at
// MAIL) and grows by half when content exceeds it, each growth charged to
// the in-flight budget first: errBudget when it does not fit. It does not
// drain r: go-smtp discards what is left of DATA or of the current BDAT
// chunk itself.
func (s *session) readMessage(r io.Reader, declared int64) ([]byte, error) {
	limit := s.srv.opts.MaxMessageBytes
	capacity := int64(initialCharge)
	if declared > 0 {
		capacity = min(declared, limit)
	}
	capacity += bytesMinRead
	// A reused buffer may be larger than needed: it is charged whole, and
	// where that does not fit, a buffer of the size needed is.
	buf := s.srv.bufs.get(capacity)
	if int64(cap(buf)) > capacity && !s.tryCharge(int64(cap(buf)), false) {
		s.srv.bufs.put(buf)
		buf = make([]byte, 0, capacity)
	}
	if !s.growCharge(int64(cap(buf))) {
		return nil, errBudget
	}
	dr := &deadlineReader{r: io.LimitReader(r, limit+1), tc: s.tc, timeout: s.srv.opts.DataTimeout}
	for {
		if len(buf) == cap(buf) {
			next := min(int64(cap(buf))+int64(cap(buf))/2, limit+1+bytesMinRead)
			// The old buffer is live while it is copied: charge both.
			if !s.growCharge(int64(cap(buf)) + next) {
				return nil, errBudget
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			s.srv.bufs.put(buf)
			buf = nb
			s.shrinkCharge(next)
		}
		n, err := dr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(buf)) > limit {
		return nil, errMessageTooBig
	}
	return buf, nil
}

// shrinkCharge lowers the transaction's charge to octets of buffer.
func (s *session) shrinkCharge(octets int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.charge.b != nil {
		s.charge.shrink(octets)
	}
}

// growCharge makes the transaction's charge cover octets of buffer.
func (s *session) growCharge(octets int64) bool { return s.tryCharge(octets, true) }

// tryCharge is growCharge that logs a refusal only if told to.
func (s *session) tryCharge(octets int64, logRefusal bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.charge.b == nil {
		// Reset ran (BDAT: RSET or the connection ended meanwhile).
		return false
	}
	if !s.charge.grow(octets) {
		if !logRefusal {
			return false
		}
		s.srv.log.Warn("smtp message content refused: in-flight budget spent", "remote", s.remote, "octets", octets, "in_flight", s.srv.budget.inUse())
		return false
	}
	return true
}

// deadlineReader renews the connection's read deadline before each read and
// reads at most dataReadBytes at a time, so that DataTimeout bounds the wait
// for progress rather than the whole transfer.
type deadlineReader struct {
	r       io.Reader
	tc      *trackedConn
	timeout time.Duration
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if len(p) > dataReadBytes {
		p = p[:dataReadBytes]
	}
	_ = d.tc.SetReadDeadline(time.Now().Add(d.timeout)) // fails only on a closed conn, which Read reports
	return d.r.Read(p)
}

// Reset implements smtp.Session. go-smtp calls it after every DATA or BDAT
// LAST reply, on RSET, on a repeated EHLO and on STARTTLS.
func (s *session) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endTxLocked()
}

func (s *session) endTxLocked() {
	if s.inTx {
		s.inTx = false
		s.tc.endTx()
	}
	s.charge.release()
	s.from, s.size, s.rcpts, s.charge = "", 0, nil, charge{}
}

// Logout implements smtp.Session.
func (s *session) Logout() error {
	s.mu.Lock()
	s.endTxLocked()
	s.mu.Unlock()
	s.cancel()
	return nil
}

// AuthMechanisms implements smtp.AuthSession. go-smtp asks only on
// encrypted connections (AllowInsecureAuth is off).
func (s *session) AuthMechanisms() []string {
	if len(s.srv.opts.Auth) == 0 {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth implements smtp.AuthSession.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if len(s.srv.opts.Auth) == 0 || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, password string) error {
		th := s.srv.throttle
		ip, name := s.clientIP, auditUser(user)
		if ok, report := th.allow(ip, name, !s.tc.trusted); !ok {
			// No bcrypt: a throttled guesser costs nothing, and the
			// attempts are summarised instead of audited one by one.
			if report > 0 {
				s.srv.log.Warn("smtp auth attempts refused by throttling", "ip", ip, "refused", report)
				if f := s.srv.opts.OnAuthThrottled; f != nil {
					f(ip, report)
				}
			}
			return replyAuthThrottled
		}
		// RFC 4616 §2: an authorization identity other than the user
		// would be a request to act as someone else; none is granted.
		ok := (identity == "" || identity == user) && s.srv.verify(user, password)
		if ok {
			th.succeeded(ip)
		} else {
			th.failed(ip, name)
		}
		if f := s.srv.opts.OnAuth; f != nil {
			f(name, s.remote, ok)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if ok {
			s.authUser = user
			s.srv.log.Info("smtp auth ok", "remote", s.remote)
			s.srv.log.Debug("smtp auth user", "remote", s.remote, "user", name)
			return nil
		}
		s.authFailures++
		s.srv.log.Info("smtp auth failed", "remote", s.remote, "failures", s.authFailures)
		if s.authFailures >= maxAuthFailures {
			// The reply is written by go-smtp; the connection then ends at
			// its next read.
			s.tc.closeQuietly()
			return replyAuthTooMany
		}
		return replyAuthFailed
	}), nil
}
