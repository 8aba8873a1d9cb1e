// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/audit"
)

// Register adds the reader's endpoints to the HTTPS API (docs/openapi.yaml):
// search, a message's original and envelopes, the reader's status, unlock
// and lock. access.Server answers 401 without a session and 403 for a
// role without the endpoint's permission before the handler runs; the
// reader then narrows what the role may see (an auditor's scope, a user's
// own messages) and refuses content while locked (503).
func (r *Reader) Register(s *access.Server) {
	for _, e := range r.endpoints() {
		s.Handle(e.method+" "+access.APIVersion+e.path, e.perm, e.h)
	}
}

// endpoint is one HTTPS endpoint of the reader.
type endpoint struct {
	method, path string
	perm         access.Permission
	h            http.HandlerFunc
}

func (r *Reader) endpoints() []endpoint {
	return []endpoint{
		{"GET", "/search", access.PermSearch, r.httpSearch},
		{"GET", "/messages/{id}/raw", access.PermSearch, r.httpRaw},
		{"GET", "/messages/{id}/envelope", access.PermSearch, r.httpEnvelope},
		{"GET", "/status", access.PermStatus, r.httpStatus},
		{"POST", "/unlock", access.PermUnlock, r.httpUnlock},
		{"POST", "/lock", access.PermUnlock, r.httpLock},
	}
}

func httpCaller(req *http.Request) Caller {
	p, _ := access.PrincipalFrom(req.Context())
	return FromPrincipal(p)
}

// httpError answers err as {"error": "…"} with its status: the message of
// an internal error stays in the log.
func (r *Reader) httpError(w http.ResponseWriter, err error) {
	e := archive.AsError(err)
	status, msg := http.StatusInternalServerError, "internal error"
	switch e.Code {
	case archive.CodeInvalid:
		status, msg = http.StatusBadRequest, e.Message
	case archive.CodePermission:
		status, msg = http.StatusForbidden, e.Message
	case archive.CodeNotFound, archive.CodeDeleted:
		status, msg = http.StatusNotFound, "no such message"
	case archive.CodeLocked:
		status, msg = http.StatusServiceUnavailable, e.Message
	default:
		r.log.Error("https: call failed", "err", err)
	}
	writeJSON(w, status, map[string]any{"error": msg, "locked": e.Code == archive.CodeLocked})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away
}

func (r *Reader) httpSearch(w http.ResponseWriter, req *http.Request) {
	o, err := searchOptions(req)
	if err == nil {
		var res *SearchResult
		if res, err = r.Search(req.Context(), httpCaller(req), req.URL.Query().Get("q"), o); err == nil {
			writeJSON(w, http.StatusOK, res)
			return
		}
	}
	r.httpError(w, err)
}

// readFor reads the message named in the path for the request's caller.
func (r *Reader) readFor(w http.ResponseWriter, req *http.Request) (*Message, bool) {
	id, err := sealmail.ParseMessageID(req.PathValue("id"))
	if err != nil {
		r.httpError(w, invalid("message id: %v", err))
		return nil, false
	}
	m, err := r.Read(req.Context(), httpCaller(req), id)
	if err != nil {
		r.httpError(w, err)
		return nil, false
	}
	return m, true
}

func (r *Reader) httpRaw(w http.ResponseWriter, req *http.Request) {
	m, ok := r.readFor(w, req)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Length", strconv.Itoa(len(m.Original)))
	w.Header().Set("Content-Disposition", `attachment; filename="`+m.ID.String()+`.eml"`)
	_, _ = w.Write(m.Original) // the client went away
}

func (r *Reader) httpEnvelope(w http.ResponseWriter, req *http.Request) {
	m, ok := r.readFor(w, req)
	if !ok {
		return
	}
	out := Envelopes{ID: m.ID, Received: m.Received, Envelopes: []sealmail.Envelope{}}
	for _, rc := range m.Receipts {
		if rc.Envelope != nil {
			out.Envelopes = append(out.Envelopes, *rc.Envelope)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (r *Reader) httpStatus(w http.ResponseWriter, req *http.Request) {
	st, err := r.Status(req.Context(), httpCaller(req))
	if err != nil {
		r.httpError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (r *Reader) httpUnlock(w http.ResponseWriter, req *http.Request) {
	var b UnlockBody
	dec := json.NewDecoder(io.LimitReader(req.Body, 64<<10+1024))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		r.httpError(w, invalid("body: %v", err))
		return
	}
	ids, err := ParseIdentities(b.Identity)
	if err == nil {
		err = r.Unlock(req.Context(), httpCaller(req), ids)
	}
	if err != nil {
		r.httpError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"locked": false, "coverage": r.Coverage()})
}

func (r *Reader) httpLock(w http.ResponseWriter, req *http.Request) {
	if err := r.Lock(req.Context(), httpCaller(req)); err != nil {
		r.httpError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"locked": true})
}

// accessFields is what an access event's audit entry records: never a
// password, code or token (access.Event has no field for one).
type accessFields struct {
	Method      string `json:"method,omitempty"`
	Outcome     string `json:"outcome,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Remote      string `json:"remote,omitempty"`
	RetryAfterS int64  `json:"retry_after_s,omitempty"`
	Role        string `json:"role,omitempty"`
	Session     string `json:"session,omitempty"`
	Target      string `json:"target,omitempty"`
	User        string `json:"user,omitempty"`
}

// AuditAccess is access.Options.Audit: it sends a sign-in, lockout,
// sign-out, session or user change to the receiver's audit log (type
// "access." and the action), naming the person. Its error makes access
// roll the change back.
func (r *Reader) AuditAccess(ctx context.Context, ev access.Event) error {
	switch {
	case ev.User != "" && ev.Role != "":
		ctx = api.OnBehalfOf(ctx, fmt.Sprintf("%s (%s)", ev.User, ev.Role))
	case ev.User != "":
		ctx = api.OnBehalfOf(ctx, ev.User)
	}
	_, err := r.rcv.RecordEvent(ctx, audit.AccessPrefix+string(ev.Action), accessFields{
		Method: ev.Method, Outcome: string(ev.Outcome), Reason: string(ev.Reason), Remote: ev.Remote,
		RetryAfterS: int64(ev.RetryAfter.Seconds()), Role: string(ev.Role), Session: ev.Session, Target: ev.Target, User: ev.User,
	})
	return err
}
