// SPDX-License-Identifier: Apache-2.0

package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/reader"
)

// holdsData is the legal holds page's.
type holdsData struct {
	Holds    []reader.Hold
	Coverage reader.Coverage
	// FourEyes: releasing a hold files a request for a second officer.
	FourEyes bool
	Form     holdForm
	// Notice is the message key of what was just done, to hold Name
	// (Approval: the request a release filed); Error (with Detail, the
	// reader's explanation) of what was refused.
	Notice, Name  string
	Approval      string
	Error, Detail string
}

type holdForm struct{ Name, Query, Reason string }

func (u *ui) holds(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := holdsData{Form: holdForm{Query: q.Get("q")}, Notice: notice(r, "holds.done.", "created", "released", "requested"), Name: q.Get("hold")}
	if _, err := strconv.ParseUint(q.Get("approval"), 10, 64); err == nil {
		d.Approval = q.Get("approval")
	}
	u.showHolds(w, r, http.StatusOK, d)
}

func (u *ui) showHolds(w http.ResponseWriter, r *http.Request, status int, d holdsData) {
	rep, err := u.opts.Reader.Holds(r.Context(), reader.HTTPCaller(r))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d.Holds, d.Coverage, d.FourEyes = rep.Holds, rep.Coverage, u.st.FourEyes().Required(access.ApproveHoldRelease)
	slices.SortStableFunc(d.Holds, holdOrder)
	u.render(w, r, status, "holds", d)
}

// holdOrder puts active holds first, then the released, each newest
// first.
func holdOrder(a, b reader.Hold) int {
	if a.Active != b.Active {
		if a.Active {
			return -1
		}
		return 1
	}
	return b.Created.Compare(a.Created)
}

// createHold places a hold from the form's query.
func (u *ui) createHold(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	form := holdForm{Name: strings.TrimSpace(f.Get("name")), Query: strings.TrimSpace(f.Get("query")), Reason: strings.TrimSpace(f.Get("reason"))}
	_, err := u.opts.Reader.CreateHold(r.Context(), reader.HTTPCaller(r), form.Name, form.Query, form.Reason)
	if status, detail, ok := refusal(err); ok {
		u.showHolds(w, r, status, holdsData{Form: form, Error: "holds.create.failed", Detail: detail})
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, pathHolds+"?done=created&hold="+url.QueryEscape(form.Name), http.StatusSeeOther)
}

// releaseHold releases a hold, or with four eyes files the request.
func (u *ui) releaseHold(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	rep, err := u.opts.Reader.ReleaseHold(r.Context(), reader.HTTPCaller(r), name, strings.TrimSpace(r.PostForm.Get("reason")))
	if status, detail, ok := refusal(err); ok {
		u.showHolds(w, r, status, holdsData{Error: "holds.release.failed", Name: name, Detail: detail})
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	to := pathHolds + "?done=released&hold=" + url.QueryEscape(name)
	if rep.Approval != nil {
		to = pathHolds + "?done=requested&hold=" + url.QueryEscape(name) + "&approval=" + strconv.FormatUint(rep.Approval.ID, 10)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// holdMembersPage is how many members a page of a hold lists.
const holdMembersPage = 50

// holdData is the page of one hold and its members.
type holdData struct {
	Hold     *reader.Hold
	Members  []sealmail.MessageID
	Total    int
	Coverage reader.Coverage
	// Page of Pages (from 1); Prev and Next are the neighbours' numbers, 0
	// for none.
	Page, Pages, Prev, Next int
	Name                    string
}

// hold shows a hold and the messages it covers, paged, newest first.
func (u *ui) hold(w http.ResponseWriter, r *http.Request) {
	c, name := reader.HTTPCaller(r), r.PathValue("name")
	rep, err := u.opts.Reader.Holds(r.Context(), c)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	// The hold of that name: the active one, else the latest released.
	d := holdData{Name: name, Page: 1}
	slices.SortStableFunc(rep.Holds, holdOrder)
	for i := range rep.Holds {
		if rep.Holds[i].Name == name {
			d.Hold = &rep.Holds[i]
			break
		}
	}
	if d.Hold == nil {
		u.render(w, r, http.StatusNotFound, "error", problem{Status: http.StatusNotFound, Key: "error.gone"})
		return
	}
	m, err := u.opts.Reader.HoldMembers(r.Context(), c, name)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	slices.Sort(m.Members)
	d.Total, d.Coverage = len(m.Members), m.Coverage
	d.Pages = max(1, (d.Total+holdMembersPage-1)/holdMembersPage)
	if p, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && p >= 1 && p <= d.Pages {
		d.Page = p
	}
	if d.Page > 1 {
		d.Prev = d.Page - 1
	}
	if d.Page < d.Pages {
		d.Next = d.Page + 1
	}
	// Newest (highest id) first.
	for i := d.Total - 1 - (d.Page-1)*holdMembersPage; i >= 0 && len(d.Members) < holdMembersPage; i-- {
		d.Members = append(d.Members, m.Members[i])
	}
	u.render(w, r, http.StatusOK, "hold", d)
}
