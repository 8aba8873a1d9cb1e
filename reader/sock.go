// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
)

// SocketName is the reader's local socket in its state directory: root's
// command line (search, hold, export, purge, erase, reindex, policy
// apply, unlock, lock, status) reaches the reader there.
const SocketName = "reader.sock"

// Socket serves a Reader on its local socket (HTTP, JSON): to root and to
// the reader's own user (peer credentials). Errors are [api.ErrorBody]
// replies, as on the control socket.
type Socket struct {
	r    *Reader
	log  *slog.Logger
	http *http.Server
	self uint32
}

type peerKey struct{}

// NewSocket returns the local socket server of r.
func NewSocket(r *Reader) *Socket {
	s := &Socket{r: r, log: r.log, self: uint32(os.Getuid())}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("POST /v1/unlock", s.unlock)
	mux.HandleFunc("POST /v1/lock", s.lock)
	mux.HandleFunc("GET /v1/search", s.search)
	mux.HandleFunc("GET /v1/holds", s.holds)
	mux.HandleFunc("POST /v1/holds", s.createHold)
	mux.HandleFunc("POST /v1/holds/{name}/release", s.releaseHold)
	mux.HandleFunc("POST /v1/purge", s.purge)
	mux.HandleFunc("POST /v1/erase", s.erase)
	mux.HandleFunc("POST /v1/exports", s.export)
	mux.HandleFunc("GET /v1/exports", s.exportJobs)
	mux.HandleFunc("GET /v1/exports/{id}", s.exportJob)
	mux.HandleFunc("DELETE /v1/exports/{id}", s.deleteExportJob)
	mux.HandleFunc("POST /v1/reindex", s.reindex)
	mux.HandleFunc("POST /v1/policy/apply", s.applyPolicy)
	mux.HandleFunc("GET /v1/approvals", s.approvals)
	mux.HandleFunc("GET /v1/approvals/{id}", s.approval)
	mux.HandleFunc("POST /v1/approvals/{id}/approve", s.approve)
	mux.HandleFunc("POST /v1/approvals/{id}/deny", s.deny)
	s.http = &http.Server{
		Handler:           s.checkPeer(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if p, err := api.PeerOf(c); err == nil {
				ctx = context.WithValue(ctx, peerKey{}, p)
			}
			return ctx
		},
		ErrorLog: slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
	}
	return s
}

// Serve serves l until Shutdown.
func (s *Socket) Serve(l net.Listener) error {
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the server, waiting for calls in progress until ctx ends.
func (s *Socket) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

func (s *Socket) checkPeer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := r.Context().Value(peerKey{}).(api.Peer)
		if !ok || p.UID != 0 && p.UID != s.self {
			s.log.Warn("reader socket: refused peer", "uid", p.UID, "pid", p.PID)
			s.reply(w, nil, &archive.Error{Code: archive.CodePermission, Message: "permission denied: run as root or as the reader's user"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// caller is the socket peer as a [Caller].
func caller(r *http.Request) Caller {
	p, _ := r.Context().Value(peerKey{}).(api.Peer)
	return Local(p.String())
}

func (s *Socket) reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		e := archive.AsError(err)
		if e.Code == archive.CodeInternal {
			s.log.Error("reader socket call failed", "err", err)
		}
		if werr := api.WriteError(w, e); werr != nil {
			s.log.Warn("reader socket: write error reply", "err", werr)
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Warn("reader socket: write reply", "err", err)
	}
}

// decode reads a JSON body of at most 1 MiB into v.
func (s *Socket) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		s.reply(w, nil, invalid("body: %v", err))
		return false
	}
	return true
}

// status answers the reader's status, or with ?system=1 the whole
// service's ([Reader.SystemStatus], which the receiver audits).
func (s *Socket) status(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("system") == "1" {
		st, err := s.r.SystemStatus(r.Context(), caller(r))
		s.reply(w, st, err)
		return
	}
	st, err := s.r.Status(r.Context(), caller(r))
	s.reply(w, st, err)
}

// UnlockBody carries the identity text (an age identity file, decrypted).
type UnlockBody struct {
	Identity string `json:"identity"`
}

func (s *Socket) unlock(w http.ResponseWriter, r *http.Request) {
	var b UnlockBody
	if !s.decode(w, r, &b) {
		return
	}
	ids, err := ParseIdentities(b.Identity)
	if err == nil {
		err = s.r.Unlock(r.Context(), caller(r), ids)
	}
	s.reply(w, struct{}{}, err)
}

// IdentityFileText returns the text of an identity file: decrypted with
// the passphrase pass gives if the file is encrypted with one (as `age -p`
// writes it, armored or binary), else as it is. pass is called only for
// an encrypted file.
func IdentityFileText(b []byte, pass func() (string, error)) ([]byte, error) {
	if !bytes.HasPrefix(b, []byte(armor.Header)) && !bytes.HasPrefix(b, []byte("age-encryption.org/")) {
		return b, nil
	}
	p, err := pass()
	if err != nil {
		return nil, err
	}
	id, err := age.NewScryptIdentity(p)
	if err != nil {
		return nil, invalid("identity passphrase: %v", err)
	}
	var r io.Reader = bytes.NewReader(b)
	if bytes.HasPrefix(b, []byte(armor.Header)) {
		r = armor.NewReader(r)
	}
	dr, err := age.Decrypt(r, id)
	if err != nil {
		return nil, invalid("decrypt the identity file: %v (wrong passphrase?)", err)
	}
	out, err := io.ReadAll(io.LimitReader(dr, 64<<10+1))
	if err != nil {
		return nil, invalid("decrypt the identity file: %v", err)
	}
	return out, nil
}

// ParseIdentities parses an age identity file's text: native identities
// (X25519, the post-quantum hybrid). Plugin identities (hardware tokens)
// need a terminal: give them at start (`sealmail access --identity`).
func ParseIdentities(text string) ([]age.Identity, error) {
	if len(text) > 64<<10 {
		return nil, invalid("identity: more than 64 KiB")
	}
	if strings.Contains(text, "AGE-PLUGIN-") {
		return nil, invalid("identity: plugin identities (hardware tokens) work only at start, on a terminal: `sealmail access --identity FILE`")
	}
	ids, err := age.ParseIdentities(strings.NewReader(text))
	if err != nil {
		return nil, invalid("identity: %v", err)
	}
	return ids, nil
}

func (s *Socket) lock(w http.ResponseWriter, r *http.Request) {
	s.reply(w, struct{}{}, s.r.Lock(r.Context(), caller(r)))
}

func (s *Socket) search(w http.ResponseWriter, r *http.Request) {
	o, err := searchOptions(r)
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	res, err := s.r.Search(r.Context(), caller(r), r.URL.Query().Get("q"), o)
	s.reply(w, res, err)
}

// searchOptions reads limit, offset and oldest from a search request.
func searchOptions(r *http.Request) (SearchOptions, error) {
	var o SearchOptions
	q := r.URL.Query()
	for _, p := range []struct {
		name string
		v    *int
	}{{"limit", &o.Limit}, {"offset", &o.Offset}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return o, invalid("%s: want a non-negative number", p.name)
			}
			*p.v = n
		}
	}
	o.Oldest = q.Get("oldest") == "1"
	return o, nil
}

func (s *Socket) holds(w http.ResponseWriter, r *http.Request) {
	hs, err := s.r.Holds(r.Context(), caller(r))
	s.reply(w, hs, err)
}

func (s *Socket) createHold(w http.ResponseWriter, r *http.Request) {
	var b api.HoldBody
	if !s.decode(w, r, &b) {
		return
	}
	h, err := s.r.CreateHold(r.Context(), caller(r), b.Name, b.Query, b.Reason)
	s.reply(w, h, err)
}

func (s *Socket) releaseHold(w http.ResponseWriter, r *http.Request) {
	var b api.HoldBody
	if !s.decode(w, r, &b) {
		return
	}
	h, err := s.r.ReleaseHold(r.Context(), caller(r), r.PathValue("name"), b.Reason)
	s.reply(w, h, err)
}

func (s *Socket) purge(w http.ResponseWriter, r *http.Request) {
	var o PurgeOptions
	if !s.decode(w, r, &o) {
		return
	}
	rep, err := s.r.Purge(r.Context(), caller(r), o)
	s.reply(w, rep, err)
}

func (s *Socket) erase(w http.ResponseWriter, r *http.Request) {
	var o EraseOptions
	if !s.decode(w, r, &o) {
		return
	}
	rep, err := s.r.Erase(r.Context(), caller(r), o)
	s.reply(w, rep, err)
}

func (s *Socket) export(w http.ResponseWriter, r *http.Request) {
	var req ExportRequest
	if !s.decode(w, r, &req) {
		return
	}
	job, err := s.r.Export(r.Context(), caller(r), req)
	s.reply(w, job, err)
}

func (s *Socket) exportJobs(w http.ResponseWriter, r *http.Request) {
	s.reply(w, s.r.ExportJobs(caller(r)), nil)
}

func (s *Socket) exportJob(w http.ResponseWriter, r *http.Request) {
	job, err := s.r.ExportJob(caller(r), r.PathValue("id"))
	s.reply(w, job, err)
}

func (s *Socket) deleteExportJob(w http.ResponseWriter, r *http.Request) {
	s.reply(w, struct{}{}, s.r.DeleteExportJob(caller(r), r.PathValue("id")))
}

// ReindexBody asks for a reindex.
type ReindexBody struct {
	All bool `json:"all"`
}

func (s *Socket) reindex(w http.ResponseWriter, r *http.Request) {
	var b ReindexBody
	if !s.decode(w, r, &b) {
		return
	}
	rep, err := s.r.Reindex(r.Context(), caller(r), b.All)
	s.reply(w, rep, err)
}

func (s *Socket) applyPolicy(w http.ResponseWriter, r *http.Request) {
	var o PolicyOptions
	if !s.decode(w, r, &o) {
		return
	}
	rep, err := s.r.ApplyPolicyWith(r.Context(), caller(r), o)
	s.reply(w, rep, err)
}

func (s *Socket) approvals(w http.ResponseWriter, r *http.Request) {
	list, err := s.r.Approvals(r.Context(), caller(r), access.ApprovalState(r.URL.Query().Get("state")))
	s.reply(w, list, err)
}

// approvalID reads the {id} of the path.
func approvalID(r *http.Request) (uint64, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, &archive.Error{Code: archive.CodeNotFound, Message: fmt.Sprintf("no approval request %q", r.PathValue("id"))}
	}
	return id, nil
}

func (s *Socket) approval(w http.ResponseWriter, r *http.Request) {
	id, err := approvalID(r)
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	a, err := s.r.Approval(r.Context(), caller(r), id)
	s.reply(w, a, err)
}

// DecisionBody is an approval's optional comment or a denial's reason.
type DecisionBody struct {
	Comment string `json:"comment"`
}

func (s *Socket) approve(w http.ResponseWriter, r *http.Request) { s.decide(w, r, true) }
func (s *Socket) deny(w http.ResponseWriter, r *http.Request)    { s.decide(w, r, false) }

func (s *Socket) decide(w http.ResponseWriter, r *http.Request, approve bool) {
	id, err := approvalID(r)
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	var b DecisionBody
	if !s.decode(w, r, &b) {
		return
	}
	if approve {
		rep, err := s.r.Approve(r.Context(), caller(r), id, b.Comment)
		s.reply(w, rep, err)
		return
	}
	a, err := s.r.Deny(r.Context(), caller(r), id, b.Comment)
	s.reply(w, a, err)
}

// Client is root's command line's client of the reader's socket.
type Client struct {
	http *http.Client
	path string
}

// Dial connects to the reader's socket at path; [ErrNoReader] when no
// reader listens there.
func Dial(path string) (*Client, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w at %s", ErrNoReader, path)
		}
		return nil, fmt.Errorf("reader socket %s: %w", path, err)
	}
	_ = c.Close() // only a probe
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{http: &http.Client{Transport: tr}, path: path}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://reader"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("reader socket %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return api.DecodeError(resp, "reader")
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reader socket: decode reply: %w", err)
	}
	return nil
}

// Status is [Reader.Status] through the socket.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	return &st, c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
}

// SystemStatus is [Reader.SystemStatus] through the socket.
func (c *Client) SystemStatus(ctx context.Context) (*SystemStatus, error) {
	var st SystemStatus
	return &st, c.do(ctx, http.MethodGet, "/v1/status?system=1", nil, &st)
}

// Unlock sends the identity text ([Reader.Unlock]).
func (c *Client) Unlock(ctx context.Context, identity string) error {
	var out struct{}
	return c.do(ctx, http.MethodPost, "/v1/unlock", UnlockBody{Identity: identity}, &out)
}

// Lock is [Reader.Lock] through the socket.
func (c *Client) Lock(ctx context.Context) error {
	var out struct{}
	return c.do(ctx, http.MethodPost, "/v1/lock", struct{}{}, &out)
}

// Search is [Reader.Search] through the socket.
func (c *Client) Search(ctx context.Context, q string, o SearchOptions) (*SearchResult, error) {
	v := "q=" + url.QueryEscape(q) + "&limit=" + strconv.Itoa(o.Limit) + "&offset=" + strconv.Itoa(o.Offset)
	if o.Oldest {
		v += "&oldest=1"
	}
	var res SearchResult
	return &res, c.do(ctx, http.MethodGet, "/v1/search?"+v, nil, &res)
}

// Holds is [Reader.Holds] through the socket.
func (c *Client) Holds(ctx context.Context) (*HoldsReport, error) {
	var rep HoldsReport
	return &rep, c.do(ctx, http.MethodGet, "/v1/holds", nil, &rep)
}

// CreateHold is [Reader.CreateHold] through the socket.
func (c *Client) CreateHold(ctx context.Context, name, q, reason string) (*HoldReport, error) {
	var rep HoldReport
	return &rep, c.do(ctx, http.MethodPost, "/v1/holds", api.HoldBody{Name: name, Query: q, Reason: reason}, &rep)
}

// ReleaseHold is [Reader.ReleaseHold] through the socket.
func (c *Client) ReleaseHold(ctx context.Context, name, reason string) (*HoldReport, error) {
	var rep HoldReport
	return &rep, c.do(ctx, http.MethodPost, "/v1/holds/"+url.PathEscape(name)+"/release", api.HoldBody{Reason: reason}, &rep)
}

// Purge is [Reader.Purge] through the socket.
func (c *Client) Purge(ctx context.Context, o PurgeOptions) (*PurgeReport, error) {
	var rep PurgeReport
	return &rep, c.do(ctx, http.MethodPost, "/v1/purge", o, &rep)
}

// Erase is [Reader.Erase] through the socket.
func (c *Client) Erase(ctx context.Context, o EraseOptions) (*EraseReport, error) {
	var rep EraseReport
	return &rep, c.do(ctx, http.MethodPost, "/v1/erase", o, &rep)
}

// Export starts an export job ([Reader.Export]).
func (c *Client) Export(ctx context.Context, req ExportRequest) (*Job, error) {
	var job Job
	return &job, c.do(ctx, http.MethodPost, "/v1/exports", req, &job)
}

// ExportJob is [Reader.ExportJob] through the socket.
func (c *Client) ExportJob(ctx context.Context, id string) (*Job, error) {
	var job Job
	return &job, c.do(ctx, http.MethodGet, "/v1/exports/"+url.PathEscape(id), nil, &job)
}

// DeleteExportJob is [Reader.DeleteExportJob] through the socket.
func (c *Client) DeleteExportJob(ctx context.Context, id string) error {
	var out struct{}
	return c.do(ctx, http.MethodDelete, "/v1/exports/"+url.PathEscape(id), nil, &out)
}

// Reindex is [Reader.Reindex] through the socket.
func (c *Client) Reindex(ctx context.Context, all bool) (*ReindexReport, error) {
	var rep ReindexReport
	return &rep, c.do(ctx, http.MethodPost, "/v1/reindex", ReindexBody{All: all}, &rep)
}

// ApplyPolicy is [Reader.ApplyPolicy] through the socket.
func (c *Client) ApplyPolicy(ctx context.Context) (*archive.PolicyReport, error) {
	rep, err := c.ApplyPolicyWith(ctx, PolicyOptions{})
	if err != nil {
		return nil, err
	}
	return &rep.PolicyReport, nil
}

// ApplyPolicyWith is [Reader.ApplyPolicyWith] through the socket.
func (c *Client) ApplyPolicyWith(ctx context.Context, o PolicyOptions) (*PolicyReport, error) {
	var rep PolicyReport
	return &rep, c.do(ctx, http.MethodPost, "/v1/policy/apply", o, &rep)
}

// Approvals is [Reader.Approvals] through the socket.
func (c *Client) Approvals(ctx context.Context, state access.ApprovalState) ([]access.Approval, error) {
	var list []access.Approval
	return list, c.do(ctx, http.MethodGet, "/v1/approvals?state="+url.QueryEscape(string(state)), nil, &list)
}

// Approval is [Reader.Approval] through the socket.
func (c *Client) Approval(ctx context.Context, id uint64) (*access.Approval, error) {
	var a access.Approval
	return &a, c.do(ctx, http.MethodGet, "/v1/approvals/"+strconv.FormatUint(id, 10), nil, &a)
}

// Approve is [Reader.Approve] through the socket.
func (c *Client) Approve(ctx context.Context, id uint64, comment string) (*ApprovalReport, error) {
	var rep ApprovalReport
	return &rep, c.do(ctx, http.MethodPost, "/v1/approvals/"+strconv.FormatUint(id, 10)+"/approve", DecisionBody{Comment: comment}, &rep)
}

// Deny is [Reader.Deny] through the socket.
func (c *Client) Deny(ctx context.Context, id uint64, reason string) (*access.Approval, error) {
	var a access.Approval
	return &a, c.do(ctx, http.MethodPost, "/v1/approvals/"+strconv.FormatUint(id, 10)+"/deny", DecisionBody{Comment: reason}, &a)
}
