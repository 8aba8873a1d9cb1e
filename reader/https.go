// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/export"
)

// Register adds the reader's endpoints to the HTTPS API (docs/openapi.json):
// search, a message's original and envelopes, holds, purge, erasure,
// export jobs, policy apply, reindex, the status, the audit log, unlock
// and lock.
// access.Server answers 401 without a session and 403 for a role without
// the endpoint's permission before the handler runs; the reader then
// narrows what the role may see (an auditor's scope, a user's own
// messages), refuses content while locked (503), and answers 202 with the
// four-eyes request where an act needs a second officer's approval.
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
		{"GET", "/audit", access.PermAuditLog, r.httpAudit},
		{"POST", "/unlock", access.PermUnlock, r.httpUnlock},
		{"POST", "/lock", access.PermUnlock, r.httpLock},
		{"GET", "/holds", access.PermHold, r.httpHolds},
		{"POST", "/holds", access.PermHold, r.httpCreateHold},
		{"GET", "/holds/{name}/members", access.PermHold, r.httpHoldMembers},
		{"POST", "/holds/{name}/release", access.PermHold, r.httpReleaseHold},
		{"POST", "/purge", access.PermPolicy, r.httpPurge},
		{"POST", "/erase", access.PermErasure, r.httpErase},
		{"POST", "/policy/apply", access.PermPolicy, r.httpApplyPolicy},
		{"POST", "/reindex", access.PermConfig, r.httpReindex},
		{"POST", "/exports", access.PermExport, r.httpExport},
		{"GET", "/exports", access.PermExport, r.httpExportJobs},
		{"GET", "/exports/{id}", access.PermExport, r.httpExportJob},
		{"DELETE", "/exports/{id}", access.PermExport, r.httpDeleteExportJob},
		{"POST", "/exports/{id}/cancel", access.PermExport, r.httpCancelExportJob},
		{"GET", "/exports/{id}/output", access.PermExport, r.httpExportFile(ExportOutput)},
		{"GET", "/exports/{id}/manifest", access.PermExport, r.httpExportFile("")},
	}
}

// HTTPCaller is the caller of an HTTPS request that access let through:
// its signed-in person and their client address. The web interface's
// pages ask the reader as this caller too.
func HTTPCaller(req *http.Request) Caller {
	p, _ := access.PrincipalFrom(req.Context())
	c := FromPrincipal(p)
	if host, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		c.Remote = host
	}
	return c
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
		if res, err = r.Search(req.Context(), HTTPCaller(req), req.URL.Query().Get("q"), o); err == nil {
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
	m, err := r.Read(req.Context(), HTTPCaller(req), id)
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
	st, err := r.SystemStatus(req.Context(), HTTPCaller(req))
	if err != nil {
		r.httpError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (r *Reader) httpAudit(w http.ResponseWriter, req *http.Request) {
	f, limit, err := api.ParseAuditQuery(req.URL.Query())
	if err != nil {
		r.httpError(w, invalid("%v", err))
		return
	}
	rep, err := r.AuditLog(req.Context(), HTTPCaller(req), f, limit)
	r.answer(w, http.StatusOK, rep, err)
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
		err = r.Unlock(req.Context(), HTTPCaller(req), ids)
	}
	if err != nil {
		r.httpError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"locked": false, "coverage": r.Coverage()})
}

func (r *Reader) httpLock(w http.ResponseWriter, req *http.Request) {
	if err := r.Lock(req.Context(), HTTPCaller(req)); err != nil {
		r.httpError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"locked": true})
}

// maxBody bounds a request body (as access does).
const maxBody = 16 << 10

// decodeBody reads one JSON object with known fields only into v; an
// empty body leaves v as it is. It answers 400 itself.
func (r *Reader) decodeBody(w http.ResponseWriter, req *http.Request, v any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err = dec.Decode(v); err == nil && dec.More() {
			err = errors.New("more than one JSON value")
		}
	}
	if err != nil {
		r.httpError(w, invalid("body: %v", err))
		return false
	}
	return true
}

// answer writes v with status, or the error.
func (r *Reader) answer(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		r.httpError(w, err)
		return
	}
	writeJSON(w, status, v)
}

// filed is 202 when a four-eyes request was filed instead of the act.
func filed(a *access.Approval) int {
	if a != nil {
		return http.StatusAccepted
	}
	return http.StatusOK
}

func (r *Reader) httpHolds(w http.ResponseWriter, req *http.Request) {
	rep, err := r.Holds(req.Context(), HTTPCaller(req))
	r.answer(w, http.StatusOK, rep, err)
}

func (r *Reader) httpCreateHold(w http.ResponseWriter, req *http.Request) {
	var b api.HoldBody
	if !r.decodeBody(w, req, &b) {
		return
	}
	rep, err := r.CreateHold(req.Context(), HTTPCaller(req), b.Name, b.Query, b.Reason)
	r.answer(w, http.StatusCreated, rep, err)
}

func (r *Reader) httpHoldMembers(w http.ResponseWriter, req *http.Request) {
	rep, err := r.HoldMembers(req.Context(), HTTPCaller(req), req.PathValue("name"))
	r.answer(w, http.StatusOK, rep, err)
}

// ReleaseBody is the body of a hold release.
type ReleaseBody struct {
	Reason string `json:"reason"`
}

func (r *Reader) httpReleaseHold(w http.ResponseWriter, req *http.Request) {
	var b ReleaseBody
	if !r.decodeBody(w, req, &b) {
		return
	}
	rep, err := r.ReleaseHold(req.Context(), HTTPCaller(req), req.PathValue("name"), b.Reason)
	if err != nil {
		r.httpError(w, err)
		return
	}
	writeJSON(w, filed(rep.Approval), rep)
}

func (r *Reader) httpPurge(w http.ResponseWriter, req *http.Request) {
	var o PurgeOptions
	if !r.decodeBody(w, req, &o) {
		return
	}
	rep, err := r.Purge(req.Context(), HTTPCaller(req), o)
	r.answer(w, http.StatusOK, rep, err)
}

func (r *Reader) httpErase(w http.ResponseWriter, req *http.Request) {
	var o EraseOptions
	if !r.decodeBody(w, req, &o) {
		return
	}
	rep, err := r.Erase(req.Context(), HTTPCaller(req), o)
	if err != nil {
		r.httpError(w, err)
		return
	}
	writeJSON(w, filed(rep.Approval), rep)
}

func (r *Reader) httpApplyPolicy(w http.ResponseWriter, req *http.Request) {
	var o PolicyOptions
	if !r.decodeBody(w, req, &o) {
		return
	}
	rep, err := r.ApplyPolicyWith(req.Context(), HTTPCaller(req), o)
	if err != nil {
		r.httpError(w, err)
		return
	}
	writeJSON(w, filed(rep.Approval), rep)
}

func (r *Reader) httpReindex(w http.ResponseWriter, req *http.Request) {
	var b ReindexBody
	if !r.decodeBody(w, req, &b) {
		return
	}
	rep, err := r.Reindex(req.Context(), HTTPCaller(req), b.All)
	r.answer(w, http.StatusOK, rep, err)
}

func (r *Reader) httpExport(w http.ResponseWriter, req *http.Request) {
	var b ExportRequest
	if !r.decodeBody(w, req, &b) {
		return
	}
	if b.Format == "eml" && b.Name != "" && !strings.HasSuffix(strings.ToLower(b.Name), ".zip") {
		r.httpError(w, invalid("export name %q: an EML export over HTTPS is a zip (name it *.zip) so that it can be downloaded", b.Name))
		return
	}
	job, err := r.Export(req.Context(), HTTPCaller(req), b)
	r.answer(w, http.StatusAccepted, job, err)
}

// JobsReply lists export jobs.
type JobsReply struct {
	Jobs []Job `json:"jobs"`
}

func (r *Reader) httpExportJobs(w http.ResponseWriter, req *http.Request) {
	writeJSON(w, http.StatusOK, JobsReply{Jobs: r.ExportJobs(HTTPCaller(req))})
}

func (r *Reader) httpExportJob(w http.ResponseWriter, req *http.Request) {
	job, err := r.ExportJob(HTTPCaller(req), req.PathValue("id"))
	r.answer(w, http.StatusOK, job, err)
}

func (r *Reader) httpCancelExportJob(w http.ResponseWriter, req *http.Request) {
	job, err := r.CancelExportJob(HTTPCaller(req), req.PathValue("id"))
	r.answer(w, http.StatusOK, job, err)
}

func (r *Reader) httpDeleteExportJob(w http.ResponseWriter, req *http.Request) {
	if err := r.DeleteExportJob(HTTPCaller(req), req.PathValue("id")); err != nil {
		r.httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// httpExportFile sends a job's output, or with which "" the manifest file
// the query's file names (manifest.json by default).
func (r *Reader) httpExportFile(which string) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		name := which
		if name == "" {
			name = req.URL.Query().Get("file")
			if name == "" {
				name = export.ManifestJSON
			}
		}
		f, err := r.ExportJobFile(req.Context(), HTTPCaller(req), req.PathValue("id"), name)
		if err != nil {
			r.httpError(w, err)
			return
		}
		defer f.Close()
		ct := "application/octet-stream"
		switch {
		case strings.HasSuffix(f.Name, ".json"):
			ct = "application/json"
		case strings.HasSuffix(f.Name, ".csv"):
			ct = "text/csv; charset=utf-8"
		case strings.HasSuffix(f.Name, ".sha256"):
			ct = "text/plain; charset=utf-8"
		case strings.HasSuffix(f.Name, ".zip"):
			ct = "application/zip"
		case strings.HasSuffix(f.Name, ".mbox"):
			ct = "application/mbox"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Length", strconv.FormatInt(f.Size, 10))
		w.Header().Set("Content-Disposition", `attachment; filename="`+f.Name+`"`)
		if _, err := io.Copy(w, f); err != nil {
			r.log.Warn("https: export download cut off", "job", req.PathValue("id"), "err", err)
		}
	}
}

// AuditAccess is access.Options.Audit: it sends a sign-in, lockout,
// sign-out, session, user or four-eyes event to the receiver's audit log
// as access maps it ([access.Event.AuditEntry]: type "access." and the
// action, the person as actor). Its error makes access roll the change
// back.
func (r *Reader) AuditAccess(ctx context.Context, ev access.Event) error {
	e := ev.AuditEntry()
	if e.Actor != "" {
		ctx = api.OnBehalfOf(ctx, e.Actor)
	}
	_, err := r.rcv.RecordEvent(ctx, e.Type, e.Fields)
	return err
}
