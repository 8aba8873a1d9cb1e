// SPDX-License-Identifier: Apache-2.0

package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sealmail/sealmail/index/query"
	"github.com/sealmail/sealmail/reader"
)

// pathSearch is the search page; pathMessages/{id} a message.
const (
	pathSearch   = "/search"
	pathMessages = "/messages"
)

// searchPage is how many results one page shows.
const searchPage = 50

// maxSearchOffset bounds how deep paging goes (page 2000 of 50): beyond,
// a narrower query is the answer.
const maxSearchOffset = 100_000

// searchView is the search page's data.
type searchView struct {
	// Q is the query; Oldest the order. Searched: a query was given.
	Q        string
	Oldest   bool
	Searched bool
	// Error is the parser's explanation of a refused query, or of a form
	// field (BadField).
	Error    string
	BadField bool
	Hits     []reader.SearchHit
	Total    int
	// First and Last number the hits shown (1-based); Prev and Next are
	// the neighbouring pages' URLs ("" if none); Newest and OldestURL the
	// order switch.
	First, Last                 int
	Prev, Next, Newest, OldestU string
	Coverage                    coverageView
}

// searchFields are the form fields that compose a query.
var searchFields = []string{"from", "to", "after", "before", "attachment"}

// search is the search page: GET /search?q=…&order=oldest&page=N. The
// form's fields (from, to, after, before, attachment) are composed into
// the query and the browser is sent to the page of that query, so that
// the query shown is the one that ran.
func (u *ui) search(w http.ResponseWriter, r *http.Request) {
	if !u.haveReader(w, r) {
		return
	}
	v := r.URL.Query()
	sv := &searchView{Q: strings.TrimSpace(v.Get("q")), Oldest: v.Get("order") == "oldest"}
	for _, f := range searchFields {
		if v.Get(f) == "" {
			continue
		}
		q, err := composeQuery(sv.Q, v)
		if err != nil {
			sv.BadField, sv.Error = true, err.Error()
			sv.Coverage = coverageOf(u.opts.Reader.Coverage())
			u.render(w, r, http.StatusBadRequest, "search", sv)
			return
		}
		http.Redirect(w, r, searchURL(q, sv.Oldest, 1), http.StatusSeeOther)
		return
	}
	page, _ := strconv.Atoi(v.Get("page"))
	page = max(1, min(page, maxSearchOffset/searchPage))
	status, cov := http.StatusOK, u.opts.Reader.Coverage()
	if sv.Q != "" {
		sv.Searched = true
		res, err := u.opts.Reader.Search(r.Context(), reader.HTTPCaller(r), sv.Q,
			reader.SearchOptions{Limit: searchPage, Offset: (page - 1) * searchPage, Oldest: sv.Oldest})
		switch {
		case err == nil:
			sv.Hits, sv.Total, cov = res.Hits, res.Total, res.Coverage
			sv.First, sv.Last = (page-1)*searchPage+1, (page-1)*searchPage+len(res.Hits)
			if page > 1 {
				sv.Prev = searchURL(sv.Q, sv.Oldest, page-1)
			}
			if sv.Last < sv.Total && page*searchPage < maxSearchOffset {
				sv.Next = searchURL(sv.Q, sv.Oldest, page+1)
			}
		case reader.IsInvalid(err):
			status, sv.Error = http.StatusBadRequest, err.Error()
		case reader.IsLocked(err):
			status = http.StatusServiceUnavailable // the coverage line says why
		case reader.IsPermission(err):
			u.render(w, r, http.StatusForbidden, "error", problem{Status: http.StatusForbidden, Key: "error.forbidden", Detail: err.Error()})
			return
		default:
			u.fail(w, r, err)
			return
		}
	}
	sv.Coverage = coverageOf(cov)
	sv.Newest, sv.OldestU = searchURL(sv.Q, false, 1), searchURL(sv.Q, true, 1)
	u.render(w, r, status, "search", sv)
}

// composeQuery is q (as typed) and the form's fields, all of which must
// match: from:, to:, after:, before: and has:attachment terms.
func composeQuery(q string, v url.Values) (string, error) {
	var terms []string
	if q != "" {
		terms = append(terms, "("+q+")")
	}
	for _, f := range []query.Field{query.FieldFrom, query.FieldTo} {
		// The form takes an address, a domain or words; a quote would end
		// the term early, so there is none.
		if s := strings.TrimSpace(strings.ReplaceAll(v.Get(string(f)), `"`, "")); s != "" {
			terms = append(terms, (&query.Term{Field: f, Value: s}).String())
		}
	}
	for _, d := range []struct {
		field string
		op    query.DateOp
	}{{"after", query.After}, {"before", query.Before}} {
		s := strings.TrimSpace(v.Get(d.field))
		if s == "" {
			continue
		}
		day, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return "", fmt.Errorf("%s: %q is not a day (YYYY-MM-DD)", d.field, s)
		}
		terms = append(terms, (&query.Date{Op: d.op, Day: day}).String())
	}
	if v.Get("attachment") != "" {
		terms = append(terms, (&query.Flag{Key: "has", Value: "attachment"}).String())
	}
	if len(terms) == 1 && q != "" {
		return q, nil
	}
	return strings.Join(terms, " "), nil
}

// searchURL is the address of a page of q's results.
func searchURL(q string, oldest bool, page int) string {
	v := url.Values{"q": {q}}
	if oldest {
		v.Set("order", "oldest")
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return pathSearch + "?" + v.Encode()
}

// Size is n bytes for people: 812 B, 42 KiB, 17 MiB (rounded down).
func (v *view) Size(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d MiB", n>>20)
	}
}

// coverageView is the coverage line: how far the index covers the
// archive, as of Through.
type coverageView struct {
	Locked, CaughtUp      bool
	Through               time.Time
	Indexed, Total        int64
	LastIndexedID, LastID uint64
}

func coverageOf(c reader.Coverage) coverageView {
	return coverageView{Locked: c.Locked, CaughtUp: c.CaughtUp, Through: c.Checked, Indexed: int64(c.Indexed),
		Total: int64(c.Indexed) + c.NotIndexed, LastIndexedID: c.LastIndexedID, LastID: c.LastID}
}
