// SPDX-License-Identifier: Apache-2.0

package web

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/reader"
)

// approvalsData is the four-eyes page's: the requests in one state (or
// all), and the form to request an erasure.
type approvalsData struct {
	Approvals []access.Approval
	// State is the list's filter ("" all); States the choices.
	State  string
	States []access.ApprovalState
	Me     string
	// FourEyes: an erasure needs a second officer's approval.
	FourEyes bool
	Form     eraseForm
	// Notice is the message key of what was just done (Erased, Refused:
	// an erasure without four eyes); Error (with Detail) of what was
	// refused.
	Notice          string
	Erased, Refused int
	Error, Detail   string
}

type eraseForm struct {
	Query, IDs, Reason string
	Override           bool
}

func (u *ui) approvals(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := approvalsData{State: string(access.StateRequested), Notice: notice(r, "approvals.done.", "erased")}
	if s, ok := q["state"]; ok && (s[0] == "" || slices.Contains(access.ApprovalStates(), access.ApprovalState(s[0]))) {
		d.State = s[0]
	}
	if d.Notice != "" {
		d.Erased, _ = strconv.Atoi(q.Get("erased"))
		d.Refused, _ = strconv.Atoi(q.Get("refused"))
	}
	u.showApprovals(w, r, http.StatusOK, d)
}

func (u *ui) showApprovals(w http.ResponseWriter, r *http.Request, status int, d approvalsData) {
	list, err := u.opts.Reader.Approvals(r.Context(), reader.HTTPCaller(r), access.ApprovalState(d.State))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	p, _ := access.PrincipalFrom(r.Context())
	d.Approvals, d.States, d.Me = list, access.ApprovalStates(), p.User
	d.FourEyes = u.st.FourEyes().Required(access.ApproveErase)
	u.render(w, r, status, "approvals", d)
}

// requestErasure asks for the erasure of the messages a query (or a list
// of message ids) names: with four eyes, a request; without, at once.
func (u *ui) requestErasure(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	form := eraseForm{Query: strings.TrimSpace(f.Get("query")), IDs: strings.TrimSpace(f.Get("ids")),
		Reason: strings.TrimSpace(f.Get("reason")), Override: f.Get("override") == "on"}
	q, err := eraseQuery(form)
	var rep *reader.EraseReport
	if err == nil {
		rep, err = u.opts.Reader.Erase(r.Context(), reader.HTTPCaller(r), reader.EraseOptions{Query: q, Reason: form.Reason, OverrideRetention: form.Override})
	}
	if status, detail, ok := refusal(err); ok {
		u.showApprovals(w, r, status, approvalsData{State: string(access.StateRequested), Form: form, Error: "approvals.erase.failed", Detail: detail})
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if rep.Approval != nil {
		http.Redirect(w, r, fmt.Sprintf("%s/%d?done=requested", pathApprovals, rep.Approval.ID), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("%s?done=erased&erased=%d&refused=%d", pathApprovals, len(rep.Erased), len(rep.Refused)), http.StatusSeeOther)
}

// eraseQuery is the erasure form's query: the query as typed, or the
// Message-IDs (the header's values, separated by spaces or commas) as
// message-id:"<a@b>" OR message-id:"<c@d>". (The query language has no
// field for the archive's own message numbers.)
func eraseQuery(f eraseForm) (string, error) {
	switch {
	case f.Query != "" && f.IDs != "":
		return "", errInvalid("give either a query or Message-IDs, not both")
	case f.Query != "":
		return f.Query, nil
	}
	var terms []string
	for _, s := range strings.FieldsFunc(f.IDs, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t' }) {
		if strings.ContainsAny(s, `"\()`) || strings.Trim(s, "<>") == "" {
			return "", errInvalid("Message-ID %q: want the header's value, such as <abc@example.com>", s)
		}
		terms = append(terms, `message-id:"`+s+`"`)
	}
	if len(terms) == 0 {
		return "", errInvalid("give a query or Message-IDs")
	}
	return strings.Join(terms, " OR "), nil
}

// approvalData is the page of one request.
type approvalData struct {
	A     *access.Approval
	Asked reader.Asked
	// Own: the signed-in officer asked for it (access refuses their
	// decision).
	Own bool
	// Notice is the message key of what was just done; Error (with
	// Detail) of what was refused.
	Notice        string
	Error, Detail string
}

func (u *ui) approval(w http.ResponseWriter, r *http.Request) {
	u.showApproval(w, r, http.StatusOK, approvalData{Notice: notice(r, "approval.done.", "requested", "approved", "denied")})
}

func (u *ui) showApproval(w http.ResponseWriter, r *http.Request, status int, d approvalData) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		u.render(w, r, http.StatusNotFound, "error", problem{Status: http.StatusNotFound, Key: "error.gone"})
		return
	}
	if d.A, err = u.opts.Reader.Approval(r.Context(), reader.HTTPCaller(r), id); err != nil {
		u.fail(w, r, err)
		return
	}
	if d.Asked, err = reader.AskedOf(*d.A); err != nil {
		u.fail(w, r, err)
		return
	}
	p, _ := access.PrincipalFrom(r.Context())
	d.Own = d.A.Requester == p.User && d.A.RequesterRole == p.Role
	u.render(w, r, status, "approval", d)
}

// decide approves or denies a request; a refusal (one's own request, one
// decided already) is shown on its page.
func (u *ui) decide(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil {
			u.render(w, r, http.StatusNotFound, "error", problem{Status: http.StatusNotFound, Key: "error.gone"})
			return
		}
		text, done := strings.TrimSpace(r.PostForm.Get("comment")), "denied"
		if approve {
			done = "approved"
			_, err = u.opts.Reader.Approve(r.Context(), reader.HTTPCaller(r), id, text)
		} else {
			_, err = u.opts.Reader.Deny(r.Context(), reader.HTTPCaller(r), id, text)
		}
		if status, detail, ok := refusal(err); ok {
			u.showApproval(w, r, status, approvalData{Error: "approval.refused", Detail: detail})
			return
		}
		if err != nil {
			u.fail(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("%s/%d?done=%s", pathApprovals, id, done), http.StatusSeeOther)
	}
}
