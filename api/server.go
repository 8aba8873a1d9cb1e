// SPDX-License-Identifier: Apache-2.0

package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/user"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
)

// SocketName is the control socket's file name in the archive directory.
const SocketName = "control.sock"

// Options configures a Server. The zero value is safe.
type Options struct {
	Logger *slog.Logger
	// ServiceUIDs are the service users (the reader service's,
	// control.allow_users) served besides root and the daemon's own user:
	// they may use the reader's endpoints only, and they (and the daemon's
	// own user) may name the person they act for ([OnBehalfOf]).
	ServiceUIDs []uint32
	// Pprof serves Go runtime profiles under /debug/pprof/ (each request
	// audited). Off: 404.
	Pprof bool
	// Offsite, if set, is the daemon's offsite copy, which the CLI may ask
	// it to sync or verify (offsite.go).
	Offsite *archive.OffsiteOptions
}

// Timeouts of the control socket's HTTP server. There is no write
// timeout: verify and export replies may take hours to compute.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 5 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// refusalAuditEvery: refusals of one uid are audited at most this often;
// the ones in between are counted into the next entry.
const refusalAuditEvery = time.Minute

// Server serves one archive on the control socket.
type Server struct {
	a    *archive.Archive
	opts Options
	log  *slog.Logger
	http *http.Server
	self uint32 // the daemon's uid

	mu       sync.Mutex
	refusals map[uint32]*refusalCount // by peer uid
}

type refusalCount struct {
	audited    time.Time
	suppressed int
}

type peerKey struct{}

// Peer is the verified identity of a control-socket client.
type Peer struct {
	UID, GID uint32
	PID      int32
}

// NewServer returns a server for a.
func NewServer(a *archive.Archive, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{a: a, opts: opts, log: opts.Logger, refusals: make(map[uint32]*refusalCount), self: uint32(os.Getuid())}
	mux := http.NewServeMux()
	// What the reader service needs: its peers may use these.
	reader := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, h) }
	// The rest: root and the daemon's own user only.
	own := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.notService(h)) }
	reader("GET /v1/status", s.status)
	reader("GET /v1/messages", s.list)
	reader("GET /v1/messages/{id}", s.get)
	reader("GET /v1/feed", s.feed)
	reader("GET /v1/audit/key", s.auditKey)
	reader("POST /v1/audit/events", s.recordEvent)
	reader("GET /v1/audit/entries", s.auditEntries)
	reader("GET /v1/holds", s.holds)
	reader("POST /v1/holds", s.createHold)
	reader("POST /v1/holds/{name}/release", s.releaseHold)
	reader("GET /v1/holds/{name}/members", s.holdMembers)
	reader("POST /v1/holds/{name}/members", s.addHoldMembers)
	reader("POST /v1/purge", s.purge)
	reader("POST /v1/erase", s.erase)
	reader("POST /v1/policy/apply", s.applyPolicy)
	own("POST /v1/verify", s.verify)
	own("POST /v1/audit/verify", s.verifyAudit)
	own("POST /v1/audit/checkpoint", s.checkpoint)
	own("POST /v1/import", s.importMessage)
	own("POST /v1/import/record", s.recordImport)
	s.backupRoutes(own)  // backup.go
	s.offsiteRoutes(own) // offsite.go
	// Go runtime profiles, for diagnosing a slow daemon (serve --pprof):
	// curl --unix-socket DIR/control.sock http://sealmail/debug/pprof/profile?seconds=10
	// A heap profile shows memory that held message content: audited.
	if opts.Pprof {
		mux.Handle("GET /debug/pprof/", s.audited(http.HandlerFunc(pprof.Index)))
		mux.Handle("GET /debug/pprof/profile", s.audited(http.HandlerFunc(pprof.Profile)))
	}
	s.http = &http.Server{
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		Handler:           s.checkPeer(mux),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if p, err := PeerOf(c); err == nil {
				ctx = context.WithValue(ctx, peerKey{}, p)
				return archive.WithActor(ctx, p.String())
			}
			return ctx
		},
		ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return s
}

// Listen creates a local socket at path, mode 0600 (the control socket, or
// the reader's), replacing a stale socket left by a process that died.
func Listen(path string) (net.Listener, error) { return ListenMode(path, 0o600) }

// ListenMode is [Listen] with the socket file's mode: 0660 lets a service
// user of the socket's group connect (the control socket's second socket
// for the reader, control.socket); peer credentials still decide who is
// served.
func ListenMode(path string, mode os.FileMode) (net.Listener, error) {
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("socket %s: another process is serving it", path)
	}
	os.Remove(path)
	old := unix.Umask(0o177)
	l, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	return l, nil
}

// Serve serves connections from l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the server, waiting for calls in progress until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

// String names the peer for the audit log: "socket:root(uid 0, pid 42)".
func (p Peer) String() string {
	name := "?"
	if u, err := user.LookupId(strconv.Itoa(int(p.UID))); err == nil {
		name = u.Username
	}
	return fmt.Sprintf("socket:%s(uid %d, pid %d)", name, p.UID, p.PID)
}

// PeerOf returns the credentials of a Unix socket connection's peer
// (SO_PEERCRED), as the kernel recorded them when it connected.
func PeerOf(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, err
	}
	if cerr != nil {
		return Peer{}, cerr
	}
	return Peer{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}, nil
}

// OnBehalfOfHeader names the person a service peer acts for.
const OnBehalfOfHeader = "Sealmail-On-Behalf-Of"

// service reports whether p is a service peer: a configured service user,
// or the daemon's own user (on a developer machine both processes share a
// uid).
func (s *Server) service(p Peer) bool {
	return p.UID == s.self || slices.Contains(s.opts.ServiceUIDs, p.UID)
}

func (s *Server) checkPeer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := r.Context().Value(peerKey{}).(Peer)
		if !ok || (p.UID != 0 && !s.service(p)) {
			s.log.Warn("control socket: refused peer", "uid", p.UID, "pid", p.PID)
			s.auditRefusal(r, p, ok)
			s.writeError(w, &archive.Error{Code: archive.CodePermission, Message: "permission denied: run as root, as the daemon's user or as a configured service user (control.allow_users)"})
			return
		}
		if who := r.Header.Get(OnBehalfOfHeader); who != "" {
			if !s.service(p) {
				s.writeError(w, &archive.Error{Code: archive.CodePermission, Message: "only a service user may act on behalf of someone (" + OnBehalfOfHeader + ")"})
				return
			}
			if err := checkPerson(who); err != nil {
				s.badRequest(w, err.Error())
				return
			}
			ctx := archive.WithVia(archive.WithActor(r.Context(), who), p.String())
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

// notService refuses configured service users: they may use the reader's
// endpoints only.
func (s *Server) notService(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(peerKey{}).(Peer)
		if p.UID != 0 && p.UID != s.self {
			s.writeError(w, &archive.Error{Code: archive.CodePermission, Message: "permission denied: a service user may use the reader's endpoints only"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkPerson accepts the name of a person an audit entry names as actor:
// at most 200 bytes of printable UTF-8 (audit's actor rule, with room).
func checkPerson(who string) error {
	if len(who) > 200 || !utf8.ValidString(who) {
		return fmt.Errorf("%s: want at most 200 bytes of UTF-8", OnBehalfOfHeader)
	}
	for _, c := range who {
		if !unicode.IsPrint(c) {
			return fmt.Errorf("%s: control characters", OnBehalfOfHeader)
		}
	}
	return nil
}

// auditRefusal records a refused peer in the audit log: the first refusal
// of a uid at once, then at most one entry per refusalAuditEvery carrying
// the count of refusals in between, so that a loop cannot flood the log.
func (s *Server) auditRefusal(r *http.Request, p Peer, known bool) {
	s.mu.Lock()
	rc := s.refusals[p.UID]
	if rc == nil {
		rc = &refusalCount{}
		s.refusals[p.UID] = rc
	}
	now := time.Now()
	if now.Sub(rc.audited) < refusalAuditEvery {
		rc.suppressed++
		s.mu.Unlock()
		return
	}
	suppressed := rc.suppressed
	rc.audited, rc.suppressed = now, 0
	s.mu.Unlock()
	ctx := archive.WithActor(context.WithoutCancel(r.Context()), p.String())
	if err := s.a.LogControlRefusal(ctx, r.Method, r.URL.Path, p.UID, p.PID, known, suppressed); err != nil {
		s.log.Error("audit control socket refusal", "err", err)
	}
}

// audited logs every request to next in the audit log before serving it.
func (s *Server) audited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.a.LogPprof(r.Context(), r.URL.Path, r.URL.RawQuery); err != nil {
			s.log.Error("audit pprof", "err", err)
			s.writeError(w, &archive.Error{Code: archive.CodeInternal, Message: "audit log unavailable"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.a.Status(r.Context())
	s.reply(w, st, err)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	var o archive.ListOptions
	q := r.URL.Query()
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.badRequest(w, "after: want a message id")
			return
		}
		o.After = sealmail.MessageID(n)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.badRequest(w, "limit: want a non-negative number")
			return
		}
		o.Limit = n
	}
	rows, err := s.a.List(r.Context(), o)
	s.reply(w, rows, err)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id, err := sealmail.ParseMessageID(r.PathValue("id"))
	if err != nil {
		s.badRequest(w, err.Error())
		return
	}
	m, err := s.a.Get(r.Context(), id)
	s.reply(w, m, err)
}

func (s *Server) feed(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after uint64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.badRequest(w, "after: want an audit sequence number")
			return
		}
		after = n
	}
	limit, err := atoiParam(q.Get("limit"))
	if err != nil {
		s.badRequest(w, "limit: "+err.Error())
		return
	}
	p, err := s.a.Feed(r.Context(), after, limit)
	s.reply(w, p, err)
}

// auditEntries answers [archive.Archive.AuditEntries]: ?before=SEQ,
// actor=NAME, type=T (repeatable), since= and until= (RFC 3339), limit=N.
func (s *Server) auditEntries(w http.ResponseWriter, r *http.Request) {
	f, limit, err := ParseAuditQuery(r.URL.Query())
	if err != nil {
		s.badRequest(w, err.Error())
		return
	}
	es, err := s.a.AuditEntries(r.Context(), f, limit)
	s.reply(w, es, err)
}

// ParseAuditQuery reads the parameters of GET /v1/audit/entries (and of
// the reader's GET /api/v1/audit): before, actor, type (repeatable), since
// and until (RFC 3339), limit.
func ParseAuditQuery(q url.Values) (archive.AuditFilter, int, error) {
	f := archive.AuditFilter{Actor: q.Get("actor"), Types: q["type"]}
	var err error
	if v := q.Get("before"); v != "" {
		if f.BeforeSeq, err = strconv.ParseUint(v, 10, 64); err != nil {
			return f, 0, errors.New("before: want an audit sequence number")
		}
	}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(t.name); v != "" {
			if *t.to, err = time.Parse(time.RFC3339, v); err != nil {
				return f, 0, fmt.Errorf("%s: want RFC 3339", t.name)
			}
		}
	}
	limit, err := atoiParam(q.Get("limit"))
	if err != nil {
		return f, 0, fmt.Errorf("limit: %w", err)
	}
	return f, limit, nil
}

func (s *Server) auditKey(w http.ResponseWriter, r *http.Request) {
	s.reply(w, s.a.AuditKey(), nil)
}

// EventBody is one audit event of the reader service.
type EventBody struct {
	Type   string          `json:"type"`
	Fields json.RawMessage `json:"fields"`
}

// EventReply names the audit entry an event became.
type EventReply struct {
	Seq uint64 `json:"seq"`
}

func (s *Server) recordEvent(w http.ResponseWriter, r *http.Request) {
	var b EventBody
	if err := json.NewDecoder(io.LimitReader(r.Body, archive.MaxEventFields+4096)).Decode(&b); err != nil {
		s.badRequest(w, "body: "+err.Error())
		return
	}
	seq, err := s.a.RecordEvent(r.Context(), b.Type, b.Fields)
	s.reply(w, EventReply{Seq: seq}, err)
}

func atoiParam(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errors.New("want a non-negative number")
	}
	return n, nil
}

func (s *Server) purge(w http.ResponseWriter, r *http.Request) {
	var v archive.PurgeVerdict
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&v); err != nil {
		s.badRequest(w, "body: "+err.Error())
		return
	}
	rep, err := s.a.ExecutePurge(r.Context(), v)
	s.reply(w, rep, err)
}

func (s *Server) erase(w http.ResponseWriter, r *http.Request) {
	var v archive.EraseVerdict
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&v); err != nil {
		s.badRequest(w, "body: "+err.Error())
		return
	}
	rep, err := s.a.ExecuteErase(r.Context(), v)
	s.reply(w, rep, err)
}

func (s *Server) applyPolicy(w http.ResponseWriter, r *http.Request) {
	var p archive.PolicyApply
	if err := json.NewDecoder(io.LimitReader(r.Body, 256<<20)).Decode(&p); err != nil {
		s.badRequest(w, "body: "+err.Error())
		return
	}
	res, err := s.a.ApplyPolicy(r.Context(), p)
	s.reply(w, res, err)
}

// HoldBody asks for a hold to be created or released.
type HoldBody struct {
	Name   string `json:"name"`
	Query  string `json:"query"`
	Reason string `json:"reason"`
}

func (s *Server) holds(w http.ResponseWriter, r *http.Request) {
	hs, err := s.a.Holds(r.Context())
	s.reply(w, hs, err)
}

func (s *Server) createHold(w http.ResponseWriter, r *http.Request) {
	var b HoldBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b); err != nil {
		s.badRequest(w, "body: "+err.Error())
		return
	}
	h, err := s.a.CreateHold(r.Context(), b.Name, b.Query, b.Reason)
	s.reply(w, h, err)
}

func (s *Server) releaseHold(w http.ResponseWriter, r *http.Request) {
	var b HoldBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b); err != nil {
		s.badRequest(w, "body: "+err.Error())
		return
	}
	h, err := s.a.ReleaseHold(r.Context(), r.PathValue("name"), b.Reason)
	s.reply(w, h, err)
}

// MembersBody adds members to a hold, as the reader evaluated it through
// audit entry Through.
type MembersBody struct {
	Add     []sealmail.MessageID `json:"add"`
	Through uint64               `json:"through"`
}

// MembersReply lists a hold's members: those a post recorded newly, or
// all of them.
type MembersReply struct {
	IDs []sealmail.MessageID `json:"ids"`
}

func (s *Server) addHoldMembers(w http.ResponseWriter, r *http.Request) {
	var b MembersBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b); err != nil {
		s.badRequest(w, "body: "+err.Error())
		return
	}
	added, err := s.a.AddHoldMembers(r.Context(), r.PathValue("name"), b.Add, b.Through)
	if added == nil {
		added = []sealmail.MessageID{}
	}
	s.reply(w, MembersReply{IDs: added}, err)
}

func (s *Server) holdMembers(w http.ResponseWriter, r *http.Request) {
	ids, err := s.a.HoldMembers(r.Context(), r.PathValue("name"))
	s.reply(w, MembersReply{IDs: ids}, err)
}

// checkpointsBody carries external checkpoints in their text form.
type checkpointsBody struct {
	Checkpoints string `json:"checkpoints"`
}

func (s *Server) externalCheckpoints(w http.ResponseWriter, r *http.Request) ([]archive.Checkpoint, bool) {
	var b checkpointsBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<20)).Decode(&b); err != nil {
		s.badRequest(w, "body: "+err.Error())
		return nil, false
	}
	if b.Checkpoints == "" {
		return nil, true
	}
	cps, err := archive.ParseCheckpoints([]byte(b.Checkpoints))
	if err != nil {
		s.badRequest(w, err.Error())
		return nil, false
	}
	return cps, true
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	cps, ok := s.externalCheckpoints(w, r)
	if !ok {
		return
	}
	rep, err := s.a.Verify(r.Context(), cps)
	s.reply(w, rep, err)
}

func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request) {
	cps, ok := s.externalCheckpoints(w, r)
	if !ok {
		return
	}
	rep, err := s.a.VerifyAudit(r.Context(), cps)
	s.reply(w, rep, err)
}

func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := s.a.Checkpoint(r.Context())
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	text, err := cp.MarshalText()
	s.reply(w, checkpointsBody{Checkpoints: string(text)}, err)
}

// reply answers v, or err as a typed error body ([ErrorBody]).
func (s *Server) reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		e := archive.AsError(err)
		if e.Code == archive.CodeInternal {
			s.log.Error("control socket call failed", "err", err)
		}
		s.writeError(w, e)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Warn("control socket: write reply", "err", err)
	}
}

// ErrorBody is the body of every reply that is not 200 OK: the error's
// code, message and fields ([archive.Error]). The client rebuilds the
// *archive.Error from it, so that callers on both sides of the socket test
// errors the same way.
type ErrorBody struct {
	Error *archive.Error `json:"error"`
}

// StatusOf maps an error code to its HTTP status.
func StatusOf(c archive.Code) int {
	switch c {
	case archive.CodeLocked:
		return http.StatusServiceUnavailable
	case archive.CodeInvalid:
		return http.StatusBadRequest
	case archive.CodeNotFound:
		return http.StatusNotFound
	case archive.CodeDeleted:
		return http.StatusGone
	case archive.CodePermission:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// badRequest answers a request the server could not decode.
func (s *Server) badRequest(w http.ResponseWriter, msg string) {
	s.writeError(w, &archive.Error{Code: archive.CodeInvalid, Message: msg})
}

func (s *Server) writeError(w http.ResponseWriter, e *archive.Error) {
	if err := WriteError(w, e); err != nil {
		s.log.Warn("control socket: write error reply", "err", err)
	}
}

// WriteError answers e as an [ErrorBody] with the HTTP status of its code:
// the error replies of the control socket and of the reader's socket.
func WriteError(w http.ResponseWriter, e *archive.Error) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(StatusOf(e.Code))
	return json.NewEncoder(w).Encode(ErrorBody{Error: e})
}
