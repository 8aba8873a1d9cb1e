// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"bytes"
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

// preallocBytes caps the buffer allocated up front from a declared SIZE,
// which the client chooses.
const preallocBytes = 4 << 20

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
	if !s.tc.beginTx() {
		return replyShuttingDown
	}
	var size int64
	if opts != nil {
		size = opts.Size
	}
	if err := s.srv.ing.Admit(s.ctx, size); err != nil {
		s.tc.endTx()
		s.srv.log.Warn("smtp message not admitted", "remote", s.remote, "size", size, "err", err)
		return replyFor(err)
	}
	s.inTx = true
	s.from = from
	s.size = size
	s.rcpts = nil
	s.srv.log.Debug("smtp mail from", "remote", s.remote, "from", from, "size", size)
	return nil
}

// Rcpt implements smtp.Session.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rcpts) >= s.srv.opts.MaxRecipients {
		return replyTooManyRcpts
	}
	if !s.srv.accept.match(to) {
		s.srv.log.Debug("smtp recipient refused", "remote", s.remote, "rcpt", to)
		return replyBadRcpt
	}
	s.rcpts = append(s.rcpts, to)
	s.srv.log.Debug("smtp rcpt to", "remote", s.remote, "rcpt", to)
	return nil
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

	data, err := s.readMessage(r, declared)
	if err != nil {
		s.srv.log.Info("smtp message content not received", "remote", s.remote, "err", err)
		return replyFor(err)
	}
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
	return replyQueued(id)
}

// readMessage reads the whole content into memory, at most MaxMessageBytes
// octets, renewing the read deadline to DataTimeout before every read of at
// most dataReadBytes. It does not drain r: go-smtp discards what is left of
// DATA or of the current BDAT chunk itself.
func (s *session) readMessage(r io.Reader, declared int64) ([]byte, error) {
	limit := s.srv.opts.MaxMessageBytes
	var buf bytes.Buffer
	if declared > 0 {
		buf.Grow(int(min(declared, limit, preallocBytes)) + bytes.MinRead)
	}
	dr := &deadlineReader{r: io.LimitReader(r, limit+1), tc: s.tc, timeout: s.srv.opts.DataTimeout}
	if _, err := buf.ReadFrom(dr); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, errMessageTooBig
	}
	return buf.Bytes(), nil
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
	s.from, s.size, s.rcpts = "", 0, nil
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
		// RFC 4616 §2: an authorization identity other than the user
		// would be a request to act as someone else; none is granted.
		ok := (identity == "" || identity == user) && s.srv.verify(user, password)
		if f := s.srv.opts.OnAuth; f != nil {
			f(user, s.remote, ok)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if ok {
			s.authUser = user
			s.srv.log.Info("smtp auth ok", "remote", s.remote)
			s.srv.log.Debug("smtp auth user", "remote", s.remote, "user", user)
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
