// SPDX-License-Identifier: Apache-2.0

package access

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// maxApprovalBody bounds the body of POST /api/v1/approvals: the payload
// and the reason, JSON-escaped.
const maxApprovalBody = 2*MaxApprovalPayload + 4*maxComment

func (s *Server) approvalRoutes() {
	s.Handle("POST "+APIVersion+"/approvals", PermApprove, http.HandlerFunc(s.requestApproval))
	s.Handle("GET "+APIVersion+"/approvals", PermApprove, http.HandlerFunc(s.listApprovals))
	s.Handle("GET "+APIVersion+"/approvals/{id}", PermApprove, http.HandlerFunc(s.getApproval))
	s.Handle("POST "+APIVersion+"/approvals/{id}/approve", PermApprove, http.HandlerFunc(s.approve))
	s.Handle("POST "+APIVersion+"/approvals/{id}/deny", PermApprove, http.HandlerFunc(s.deny))
}

// ApprovalRequestBody is the body of POST /api/v1/approvals.
type ApprovalRequestBody struct {
	Action  ApprovalAction  `json:"action"`
	Reason  string          `json:"reason"`
	Payload json.RawMessage `json:"payload"`
}

// DecisionBody is the body of POST /api/v1/approvals/{id}/approve (comment
// optional; the body may be empty) and /deny (comment required).
type DecisionBody struct {
	Comment string `json:"comment,omitempty"`
}

// ApprovalsReply is the answer to GET /api/v1/approvals.
type ApprovalsReply struct {
	Approvals []Approval `json:"approvals"`
}

func (s *Server) requestApproval(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	data, ok := readBodyMax(w, r, maxApprovalBody)
	if !ok {
		return
	}
	var b ApprovalRequestBody
	if err := decodeStrict(data, &b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	action, err := parseApprovalAction(string(b.Action))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if p.Role.Grant(action.permission()) == GrantNone {
		writeError(w, http.StatusForbidden, "your role ("+string(p.Role)+") may not request "+string(action))
		return
	}
	a, err := s.st.FourEyes().Request(r.Context(), p.Actor(remoteIP(r)), action, b.Reason, b.Payload)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, a)
}

func (s *Server) listApprovals(w http.ResponseWriter, r *http.Request) {
	list, err := s.st.FourEyes().List(r.Context(), ApprovalState(r.URL.Query().Get("state")))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []Approval{}
	}
	writeJSON(w, http.StatusOK, ApprovalsReply{Approvals: list})
}

// approvalID reads the {id} of the path; false (after answering 404) if it
// is not a number.
func approvalID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, ErrNoApproval.Error())
		return 0, false
	}
	return id, true
}

func (s *Server) getApproval(w http.ResponseWriter, r *http.Request) {
	id, ok := approvalID(w, r)
	if !ok {
		return
	}
	a, err := s.st.FourEyes().Get(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) { s.decide(w, r, true) }
func (s *Server) deny(w http.ResponseWriter, r *http.Request)    { s.decide(w, r, false) }

func (s *Server) decide(w http.ResponseWriter, r *http.Request, approve bool) {
	p, _ := PrincipalFrom(r.Context())
	id, ok := approvalID(w, r)
	if !ok {
		return
	}
	data, ok := readBody(w, r)
	if !ok {
		return
	}
	var b DecisionBody
	if len(data) > 0 {
		if err := decodeStrict(data, &b); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	fe := s.st.FourEyes()
	var a Approval
	var err error
	if approve {
		a, err = fe.Approve(r.Context(), p.Actor(remoteIP(r)), id, b.Comment)
	} else {
		a, err = fe.Deny(r.Context(), p.Actor(remoteIP(r)), id, b.Comment)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}
