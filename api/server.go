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
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/index"
	"github.com/sealmail/sealmail/index/query"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
)

// SocketName is the control socket's file name in the archive directory.
const SocketName = "control.sock"

// Options configures a Server. The zero value is safe.
type Options struct {
	Logger *slog.Logger
	// AllowUIDs are the peer user ids served besides root. Nil means the
	// daemon's own uid.
	AllowUIDs []uint32
}

// Server serves one archive on the control socket.
type Server struct {
	a    *archive.Archive
	opts Options
	log  *slog.Logger
	http *http.Server
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
	if opts.AllowUIDs == nil {
		opts.AllowUIDs = []uint32{uint32(os.Getuid())}
	}
	s := &Server{a: a, opts: opts, log: opts.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("GET /v1/messages", s.list)
	mux.HandleFunc("GET /v1/messages/{id}", s.get)
	mux.HandleFunc("GET /v1/search", s.search)
	mux.HandleFunc("POST /v1/index", s.indexDocs)
	mux.HandleFunc("GET /v1/ids", s.ids)
	mux.HandleFunc("POST /v1/audit/export", s.recordExport)
	mux.HandleFunc("GET /v1/holds", s.holds)
	mux.HandleFunc("POST /v1/holds", s.createHold)
	mux.HandleFunc("POST /v1/holds/{name}/release", s.releaseHold)
	mux.HandleFunc("POST /v1/purge", s.purge)
	mux.HandleFunc("POST /v1/erase", s.erase)
	mux.HandleFunc("POST /v1/policy/apply", s.applyPolicy)
	mux.HandleFunc("POST /v1/verify", s.verify)
	mux.HandleFunc("POST /v1/audit/verify", s.verifyAudit)
	mux.HandleFunc("POST /v1/audit/checkpoint", s.checkpoint)
	mux.HandleFunc("POST /v1/import", s.importMessage)
	mux.HandleFunc("POST /v1/import/record", s.recordImport)
	// Go runtime profiles, for diagnosing a slow daemon:
	// curl --unix-socket DIR/control.sock http://sealmail/debug/pprof/profile?seconds=10
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.http = &http.Server{
		Handler: s.checkPeer(mux),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if p, err := peerOf(c); err == nil {
				ctx = context.WithValue(ctx, peerKey{}, p)
				return archive.WithActor(ctx, p.String())
			}
			return ctx
		},
		ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return s
}

// Listen creates the control socket at path, mode 0600, replacing a stale
// socket left by a daemon that died.
func Listen(path string) (net.Listener, error) {
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another daemon is serving this archive", path)
	}
	os.Remove(path)
	old := unix.Umask(0o177)
	l, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket: %w", err)
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

func peerOf(c net.Conn) (Peer, error) {
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

func (s *Server) checkPeer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := r.Context().Value(peerKey{}).(Peer)
		if !ok || (p.UID != 0 && !slices.Contains(s.opts.AllowUIDs, p.UID)) {
			s.log.Warn("control socket: refused peer", "uid", p.UID, "pid", p.PID)
			writeError(w, http.StatusForbidden, "permission denied: run as root or as the daemon's user")
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
			writeError(w, http.StatusBadRequest, "after: want a message id")
			return
		}
		o.After = sealmail.MessageID(n)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "limit: want a non-negative number")
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
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	m, err := s.a.Get(r.Context(), id)
	s.reply(w, m, err)
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var o archive.SearchOptions
	var err error
	if o.Limit, err = atoiParam(q.Get("limit")); err != nil {
		writeError(w, http.StatusBadRequest, "limit: "+err.Error())
		return
	}
	if o.Offset, err = atoiParam(q.Get("offset")); err != nil {
		writeError(w, http.StatusBadRequest, "offset: "+err.Error())
		return
	}
	o.Oldest = q.Get("oldest") == "1"
	res, err := s.a.Search(r.Context(), q.Get("q"), o)
	var se *query.SyntaxError
	if errors.As(err, &se) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.reply(w, res, err)
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

func (s *Server) ids(w http.ResponseWriter, r *http.Request) {
	ids, err := s.a.IDs(r.Context(), r.URL.Query().Get("q"))
	var se *query.SyntaxError
	if errors.As(err, &se) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.reply(w, ids, err)
}

func (s *Server) recordExport(w http.ResponseWriter, r *http.Request) {
	var rec archive.ExportRecord
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(&rec); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	s.reply(w, struct{}{}, s.a.RecordExport(r.Context(), rec))
}

func (s *Server) purge(w http.ResponseWriter, r *http.Request) {
	var o archive.PurgeOptions
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&o); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	rep, err := s.a.Purge(r.Context(), o)
	s.reply(w, rep, err)
}

func (s *Server) erase(w http.ResponseWriter, r *http.Request) {
	var o archive.EraseOptions
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&o); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	rep, err := s.a.Erase(r.Context(), o)
	s.replyUser(w, rep, err)
}

func (s *Server) applyPolicy(w http.ResponseWriter, r *http.Request) {
	var facts []archive.PolicyFacts
	if err := json.NewDecoder(io.LimitReader(r.Body, 256<<20)).Decode(&facts); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	ch, err := s.a.ApplyPolicy(r.Context(), facts)
	s.reply(w, ch, err)
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
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	h, err := s.a.CreateHold(r.Context(), b.Name, b.Query, b.Reason)
	s.replyUser(w, h, err)
}

func (s *Server) releaseHold(w http.ResponseWriter, r *http.Request) {
	var b HoldBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	h, err := s.a.ReleaseHold(r.Context(), r.PathValue("name"), b.Reason)
	s.replyUser(w, h, err)
}

// replyUser answers errors the caller can fix (a bad query, a duplicate
// hold name) with 400 and their text.
func (s *Server) replyUser(w http.ResponseWriter, v any, err error) {
	var se *query.SyntaxError
	var he *policy.HoldError
	if errors.As(err, &se) || errors.As(err, &he) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.reply(w, v, err)
}

// IndexBody carries documents that the CLI decrypted for reindexing.
type IndexBody struct {
	Docs []index.Doc        `json:"docs"`
	UpTo sealmail.MessageID `json:"up_to"`
}

func (s *Server) indexDocs(w http.ResponseWriter, r *http.Request) {
	var b IndexBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<30)).Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	err := s.a.IndexDocs(r.Context(), b.Docs, b.UpTo)
	s.reply(w, struct{}{}, err)
}

// checkpointsBody carries external checkpoints in their text form.
type checkpointsBody struct {
	Checkpoints string `json:"checkpoints"`
}

func (s *Server) externalCheckpoints(w http.ResponseWriter, r *http.Request) ([]audit.Checkpoint, bool) {
	var b checkpointsBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<20)).Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return nil, false
	}
	if b.Checkpoints == "" {
		return nil, true
	}
	cps, err := audit.ParseCheckpoints([]byte(b.Checkpoints))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
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

func (s *Server) reply(w http.ResponseWriter, v any, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, store.ErrDeleted):
		writeError(w, http.StatusGone, strings.TrimSuffix(err.Error(), ": "+store.ErrDeleted.Error()))
	case err != nil:
		s.log.Error("control socket call failed", "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(v); err != nil {
			s.log.Warn("control socket: write reply", "err", err)
		}
	}
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(errorBody{Error: msg})
}
