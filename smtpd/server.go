// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sealmail/sealmail"
)

// Ingester is what the server hands accepted messages to.
type Ingester interface {
	// Admit is called at MAIL FROM with the SIZE the client declared (0 if
	// none). An error wrapping sealmail.ErrStorageFull answers 452 4.3.1;
	// any other error 451 4.3.0.
	Admit(ctx context.Context, size int64) error
	// Ingest stores one message durably. It returns only after the message
	// is durable (fsync'd); then the server answers 250. Errors:
	// sealmail.ErrStorageFull → 452 4.3.1, else 451 4.3.0. data is the
	// server's buffer, reused for a later message: Ingest must not keep it
	// (or a slice of it) after it returns.
	Ingest(ctx context.Context, env *sealmail.Envelope, data []byte) (sealmail.MessageID, error)
}

// Defaults for the zero values of [Options].
const (
	DefaultMaxMessageBytes = 64 << 20
	DefaultMaxRecipients   = 1000
	DefaultMaxConnections  = 100
	DefaultCommandTimeout  = 5 * time.Minute
	DefaultDataTimeout     = 10 * time.Minute
	// DefaultMaxCommandLineBytes is RFC 5321 §4.5.3.1.4's 512 octets with
	// slack for long AUTH PLAIN responses and ESMTP parameters.
	DefaultMaxCommandLineBytes = 4 << 10
	DefaultMaxInFlightBytes    = 512 << 20
	DefaultMaxConnectionsPerIP = 10
	DefaultMaxSessionTime      = time.Hour
	DefaultMaxIdleCommands     = 100
	DefaultAuthFailuresPerIP   = 5
	DefaultAuthFailuresPerUser = 10
)

// MessageMemoryFactor is what a message costs in memory per octet while it
// is in flight: the received bytes, the journal report split, the
// compressed and the encrypted copy made by the Ingester. The in-flight
// budget charges this many bytes per octet of message buffer.
const MessageMemoryFactor = 4

// Options configures a [Server]. The zero value is safe: plaintext only, no
// AUTH, every client network and every recipient accepted, default limits.
type Options struct {
	// Hostname is announced in the greeting and the EHLO reply. Default:
	// os.Hostname(), or "localhost" if that fails.
	Hostname string

	// TLSConfig enables STARTTLS (RFC 3207) on [Server.Serve] listeners
	// and is required by [Server.ServeTLS]. The server uses a clone with
	// MinVersion raised to TLS 1.2 if it was lower. Nil: no STARTTLS.
	TLSConfig *tls.Config
	// RequireTLS refuses MAIL with 530 5.7.0 until the connection is
	// encrypted (by STARTTLS or an implicit-TLS listener).
	RequireTLS bool

	// MaxMessageBytes is the largest message accepted, in octets after
	// dot-unstuffing; it is advertised as SIZE (RFC 1870). Larger messages
	// are refused with 552 5.3.4, at MAIL if the client declares SIZE=,
	// otherwise at the end of DATA or at the BDAT chunk that exceeds it.
	// Each message is held in memory while it is made durable; what all
	// of them may take together is bounded by MaxInFlightBytes. Default
	// [DefaultMaxMessageBytes] (64 MiB).
	MaxMessageBytes int64
	// MaxCommandLineBytes bounds a command line (and an AUTH response
	// line), before TLS and after; message content is bounded by
	// MaxMessageBytes only. A longer line is answered "500 5.4.0" and the
	// connection closed. Default [DefaultMaxCommandLineBytes] (4 KiB).
	MaxCommandLineBytes int
	// MaxInFlightBytes is the memory budget of all messages in flight
	// together, each charged [MessageMemoryFactor] × its buffer size. A
	// transaction is charged its declared SIZE (or 64 KiB) at MAIL and
	// more as content arrives; MAIL past the budget, and content that
	// cannot get more, are answered 452 4.3.1 (the sender retries), so
	// that load can never exhaust memory. It is raised to hold at least
	// one message of MaxMessageBytes. Default [DefaultMaxInFlightBytes]
	// (512 MiB).
	MaxInFlightBytes int64
	// MaxRecipients is the most RCPT TO accepted per transaction; further
	// ones get 452 4.5.3 and the client sends them in another transaction
	// (RFC 5321 §4.5.3.1.10). Default [DefaultMaxRecipients].
	MaxRecipients int
	// MaxConnections is the most simultaneous client connections over all
	// listeners of the server. Excess connections get 421 4.7.0 and are
	// closed. Default [DefaultMaxConnections].
	MaxConnections int
	// ReservedConnections of the MaxConnections slots serve only clients
	// in TrustedNetworks, so that other clients holding every other slot
	// do not stop journaling. Default: a fifth of MaxConnections when
	// TrustedNetworks is set, else 0.
	ReservedConnections int
	// TrustedNetworks are the journaling sources: they may use the
	// reserved slots, are exempt from MaxConnectionsPerIP, and AUTH
	// failures from elsewhere do not throttle their users.
	TrustedNetworks []netip.Prefix
	// MaxConnectionsPerIP is the most simultaneous connections from one
	// client address outside TrustedNetworks; more get 421 4.7.0. Default
	// [DefaultMaxConnectionsPerIP]; negative: no limit.
	MaxConnectionsPerIP int
	// MaxSessionTime bounds a connection's life: every read deadline is
	// capped by it, so a client trickling bytes cannot keep a slot. An
	// idle connection then gets 421 4.4.2; content still arriving is
	// answered 451 4.3.0 (the sender retries). Default
	// [DefaultMaxSessionTime] (1 h).
	MaxSessionTime time.Duration
	// MaxIdleCommands is how many commands other than RCPT, DATA and BDAT
	// (NOOP, RSET, VRFY, EHLO, MAIL, unknown ones, …) plus refused RCPTs
	// a connection may send without a message being accepted; then it
	// gets 421 4.7.0 and is closed. Default [DefaultMaxIdleCommands].
	MaxIdleCommands int
	// CommandTimeout is how long the server waits for the next command
	// line and for a reply to be written; an idle client is then sent 421
	// and disconnected. Default [DefaultCommandTimeout] (RFC 5321
	// §4.5.3.2.7 asks for at least 5 minutes).
	CommandTimeout time.Duration
	// DataTimeout is how long the server waits for the next piece (at most
	// 32 KiB) of message content during DATA or BDAT. Default
	// [DefaultDataTimeout] (RFC 5321 §4.5.3.2.6 asks for 3 minutes at
	// least).
	DataTimeout time.Duration

	// AllowedNetworks lists the client networks that may connect (for
	// example the journaling Exchange servers). Empty: all. Others get
	// "421 4.7.1" and are closed right after connecting: a temporary
	// reply, so that a journaling source refused by a configuration
	// mistake keeps its mail queued instead of bouncing it.
	AllowedNetworks []netip.Prefix
	// AcceptRecipients lists the recipients accepted at RCPT TO, each an
	// address ("journal@archive.example") or a domain ("@archive.example"),
	// compared case-insensitively. Empty: any recipient. Others get 550
	// 5.1.1.
	AcceptRecipients []string

	// Auth maps AUTH PLAIN (RFC 4616) user names to their credential.
	// AUTH is offered only on encrypted connections; before TLS it is
	// refused. Wrong credentials get 535 5.7.8; after 3 failures on one
	// connection it is closed with 421. Nil or empty: no AUTH.
	Auth map[string]Credential
	// AuthFailuresPerIP and AuthFailuresPerUser are the failed AUTH
	// attempts allowed per client address and per user name before
	// further attempts are refused with 454 4.7.0 without checking the
	// password, for a backoff that starts at a minute and doubles with
	// each further failure (at most an hour). Failures are forgotten an
	// hour after the last one. Defaults [DefaultAuthFailuresPerIP],
	// [DefaultAuthFailuresPerUser].
	AuthFailuresPerIP   int
	AuthFailuresPerUser int
	// RequireAuth refuses MAIL with 530 5.7.0 until the client has
	// authenticated. With an empty Auth it refuses every MAIL.
	RequireAuth bool
	// OnAuth, if set, is called after every AUTH attempt whose password
	// was checked, with the user name given (cut to 256 bytes), the client
	// address (ip:port) and the outcome, so that the archive can audit
	// authentication. It must not block for long: it runs on the
	// connection's goroutine.
	OnAuth func(user, remote string, ok bool)
	// OnAuthThrottled, if set, summarises attempts refused by AUTH
	// throttling, which OnAuth does not see: per client address at most
	// once a minute while attempts go on, and at Shutdown.
	OnAuthThrottled func(ip string, refused int)

	// OnReply, if set, is called with the code of every reply the server
	// writes, connection refusals included, for metrics. It must not block.
	OnReply func(code int)

	// Logger receives diagnostics. Messages are logged at info with keys
	// remote, id and size; envelope addresses only at debug. Default:
	// discard.
	Logger *slog.Logger
}

// maxAuthFailures is the number of failed AUTH attempts after which a
// connection is closed.
const maxAuthFailures = 3

// refusalTimeout bounds writing a 421 to a refused connection.
const refusalTimeout = 5 * time.Second

// Server is an SMTP receiver that hands every accepted message to an
// [Ingester]. Build one with [New], run it with [Server.Serve] (plain with
// STARTTLS) and/or [Server.ServeTLS] (implicit TLS, RFC 8314), stop it with
// [Server.Shutdown].
type Server struct {
	ing       Ingester
	opts      Options
	tlsConfig *tls.Config
	log       *slog.Logger
	accept    recipientSet
	smtp      *smtp.Server

	// ctx is the parent of every session context; cancel aborts in-flight
	// Ingest calls when Shutdown's deadline expires.
	ctx    context.Context
	cancel context.CancelFunc

	shutting atomic.Bool
	mu       sync.Mutex // guards conns, listeners, refusing
	conns    map[*trackedConn]struct{}
	// listeners are the guards passed to go-smtp; Shutdown closes them too,
	// in case a Serve call raced with it.
	listeners map[*guardListener]struct{}
	refusing  int
	refusals  sync.WaitGroup

	dummyOnce sync.Once
	dummyHash []byte

	perIP    map[netip.Addr]int // connections per client address, under mu
	budget   budget
	bufs     bufferPool
	throttle *authThrottle
	certs    atomic.Pointer[tls.Certificate] // see [Server.SetCertificate]
}

var (
	_ smtp.Backend     = (*Server)(nil)
	_ smtp.AuthSession = (*session)(nil)
)

// New returns a server that hands accepted messages to ing. It does not
// listen; call [Server.Serve] or [Server.ServeTLS].
func New(ing Ingester, opts Options) *Server {
	if opts.Hostname == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			opts.Hostname = h
		} else {
			opts.Hostname = "localhost"
		}
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.MaxRecipients <= 0 {
		opts.MaxRecipients = DefaultMaxRecipients
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = DefaultCommandTimeout
	}
	if opts.DataTimeout <= 0 {
		opts.DataTimeout = DefaultDataTimeout
	}
	if opts.MaxCommandLineBytes <= 0 {
		opts.MaxCommandLineBytes = DefaultMaxCommandLineBytes
	}
	if opts.MaxInFlightBytes <= 0 {
		opts.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	raisedBudget := false
	if min := MessageMemoryFactor * (opts.MaxMessageBytes + bytesMinRead); opts.MaxInFlightBytes < min {
		opts.MaxInFlightBytes = min
		raisedBudget = true
	}
	if opts.ReservedConnections <= 0 && len(opts.TrustedNetworks) > 0 {
		opts.ReservedConnections = opts.MaxConnections / 5
	}
	if opts.ReservedConnections >= opts.MaxConnections {
		opts.ReservedConnections = opts.MaxConnections - 1
	}
	if opts.MaxConnectionsPerIP == 0 {
		opts.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	if opts.MaxSessionTime <= 0 {
		opts.MaxSessionTime = DefaultMaxSessionTime
	}
	if opts.MaxIdleCommands <= 0 {
		opts.MaxIdleCommands = DefaultMaxIdleCommands
	}
	if opts.AuthFailuresPerIP <= 0 {
		opts.AuthFailuresPerIP = DefaultAuthFailuresPerIP
	}
	if opts.AuthFailuresPerUser <= 0 {
		opts.AuthFailuresPerUser = DefaultAuthFailuresPerUser
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		ing:       ing,
		opts:      opts,
		tlsConfig: serverTLSConfig(opts.TLSConfig),
		log:       logger,
		accept:    newRecipientSet(opts.AcceptRecipients),
		ctx:       ctx,
		cancel:    cancel,
		conns:     make(map[*trackedConn]struct{}),
		listeners: make(map[*guardListener]struct{}),
		perIP:     make(map[netip.Addr]int),
		budget:    budget{max: opts.MaxInFlightBytes},
		throttle:  newAuthThrottle(opts.AuthFailuresPerIP, opts.AuthFailuresPerUser),
	}
	if s.tlsConfig != nil {
		s.initCertificates()
	}

	if raisedBudget {
		logger.Warn("smtp in-flight budget raised to hold one message of the maximum size", "max_in_flight", opts.MaxInFlightBytes, "max_message_bytes", opts.MaxMessageBytes)
	}
	if len(opts.Auth) > 0 && s.tlsConfig == nil {
		logger.Warn("smtp AUTH users configured without TLSConfig: AUTH is offered only after TLS, so never")
	}

	ss := smtp.NewServer(s)
	ss.Domain = opts.Hostname
	ss.TLSConfig = s.tlsConfig
	ss.MaxMessageBytes = opts.MaxMessageBytes
	// Recipients are counted by the session so that the reply comes from
	// replies.go.
	ss.MaxRecipients = 0
	// Command lines only (third_party/go-smtp/PATCHES.md): journaling
	// must never lose mail, so message lines are unlimited up to the
	// message size (RFC 5321 §4.5.3.1.6's 1000 octets is not enforced).
	ss.MaxLineLength = opts.MaxCommandLineBytes
	ss.OnCommand = s.onCommand
	ss.OnReply = opts.OnReply
	ss.ReadTimeout = opts.CommandTimeout
	ss.WriteTimeout = opts.CommandTimeout
	ss.EnableSMTPUTF8 = true
	ss.AllowInsecureAuth = false
	ss.ErrorLog = slogPrinter{logger}
	s.smtp = ss
	return s
}

// Serve accepts plaintext connections on l (STARTTLS is offered when
// Options.TLSConfig is set) and serves them until [Server.Shutdown]. It
// returns [ErrServerClosed] after Shutdown, or the error that stopped
// accepting. Do not pass a TLS listener: use [Server.ServeTLS] for
// implicit TLS.
func (s *Server) Serve(l net.Listener) error {
	return s.serve(l, false)
}

// ServeTLS accepts connections on l, a plain TCP listener, and speaks
// implicit TLS (RFC 8314, port 465) on them with Options.TLSConfig. It
// returns like [Server.Serve], and an error at once if the server has no
// TLS configuration.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.tlsConfig == nil {
		return errors.New("smtpd: serve tls: no TLS configuration")
	}
	return s.serve(l, true)
}

func (s *Server) serve(l net.Listener, implicitTLS bool) error {
	g := &guardListener{Listener: l, srv: s, implicitTLS: implicitTLS, addr: l.Addr().String()}
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[g] = struct{}{}
	s.mu.Unlock()

	s.log.Info("smtp listening", "addr", g.addr, "implicit_tls", implicitTLS)
	err := s.smtp.Serve(g)
	if s.shutting.Load() {
		return ErrServerClosed
	}
	if err == nil {
		err = net.ErrClosed
	}
	return fmt.Errorf("smtpd: serve %s: %w", g.addr, err)
}

// Shutdown stops the server gracefully: it stops accepting connections,
// refuses new transactions with 421 4.3.2, lets transactions in flight
// finish (a message whose content is being received gets its 250 once
// Ingest has made it durable), and closes every connection with 421 as soon
// as it is idle. If ctx ends first, Shutdown closes all connections, cancels
// the context of running Ingest calls and returns ctx.Err(). A second call
// returns [ErrServerClosed].
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.shutting.Store(true)
	listeners := make([]*guardListener, 0, len(s.listeners))
	for g := range s.listeners {
		listeners = append(listeners, g)
	}
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	// guardListener.Close takes s.mu: close outside it.
	var closeErr error
	for _, g := range listeners {
		if err := g.Close(); err != nil && !errors.Is(err, net.ErrClosed) && closeErr == nil {
			closeErr = err
		}
	}

	s.log.Info("smtp shutting down", "connections", len(conns))
	// go-smtp's Shutdown closes the listeners and waits for every
	// connection goroutine; it never closes connections itself.
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.smtp.Shutdown(context.Background())
		s.refusals.Wait()
	}()
	for _, c := range conns {
		c.closeIfIdle()
	}

	select {
	case <-done:
		s.cancel()
		s.flushThrottled()
		return closeErr
	case <-ctx.Done():
	}
	// Deadline: abort what is left. The goroutine above ends when the
	// last connection goroutine has returned.
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.Conn.Close()
	}
	s.mu.Unlock()
	s.log.Warn("smtp shutdown deadline reached, connections closed", "err", ctx.Err())
	s.flushThrottled()
	return ctx.Err()
}

// NewSession implements smtp.Backend. go-smtp calls it at the first EHLO
// or HELO, and again after STARTTLS.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	nc := c.Conn()
	sess := &session{
		srv:    s,
		remote: nc.RemoteAddr().String(),
		helo:   c.Hostname(),
	}
	if ap, err := netip.ParseAddrPort(sess.remote); err == nil {
		sess.clientIP = ap.Addr().Unmap().String()
	}
	if state, ok := c.TLSConnectionState(); ok {
		sess.tlsVersion = tls.VersionName(state.Version)
		nc = c.Conn().(*tls.Conn).NetConn()
	}
	tc, ok := nc.(*trackedConn)
	if !ok {
		// Every connection comes through a guardListener.
		panic(fmt.Sprintf("smtpd: connection of type %T not tracked", nc))
	}
	sess.tc = tc
	sess.receivedBy = tc.listenAddr
	sess.ctx, sess.cancel = context.WithCancel(s.ctx)
	s.log.Debug("smtp session", "remote", sess.remote, "helo", sess.helo, "tls", sess.tlsVersion)
	return sess, nil
}

// slogPrinter adapts go-smtp's error log to slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.log.Warn("smtp: " + fmt.Sprintf(format, v...))
}

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("smtp: " + fmt.Sprint(v...))
}
