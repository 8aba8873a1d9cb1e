// SPDX-License-Identifier: Apache-2.0

package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/reader"
)

// auditPage is how many entries a page of the audit log shows.
const auditPage = 50

// auditData is the audit log page's.
type auditData struct {
	Entries      []auditRow
	Verification reader.AuditVerification
	// Filter is the form as sent; Types the choices of its type field.
	Filter auditFilter
	Types  []string
	// Older is the query string of the next (older) page, "" for none;
	// Newest that of the first page of the same filter, "" when on it.
	Older, Newest string
	Error, Detail string
}

// auditFilter is the filter form's fields as typed: the user (actor), the
// type and the first and last day (UTC, YYYY-MM-DD).
type auditFilter struct {
	Actor, Type, Since, Until string
}

// auditRow is an entry with its fields in key order, each value as text.
type auditRow struct {
	archive.AuditEntry
	Facts []fact
}

type fact struct{ Key, Value string }

func (u *ui) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := auditData{Filter: auditFilter{Actor: strings.TrimSpace(q.Get("actor")), Type: q.Get("type"), Since: q.Get("since"), Until: q.Get("until")},
		Types: append(archive.AuditTypes(), access.AuditTypes()...)}
	slices.Sort(d.Types)
	f, err := d.Filter.filter()
	if err == nil && q.Get("before") != "" {
		if f.BeforeSeq, err = strconv.ParseUint(q.Get("before"), 10, 64); err != nil {
			err = errInvalid("before: want an audit sequence number")
		}
	}
	if status, detail, ok := refusal(err); ok {
		d.Error, d.Detail, d.Verification = "audit.filter.failed", detail, u.opts.Reader.AuditVerified()
		u.render(w, r, status, "audit", d)
		return
	}
	rep, err := u.opts.Reader.AuditLog(r.Context(), reader.HTTPCaller(r), f, auditPage)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d.Verification = rep.Verification
	for _, e := range rep.Entries {
		d.Entries = append(d.Entries, auditRow{AuditEntry: e, Facts: facts(e.Fields)})
	}
	base := url.Values{}
	for k, v := range map[string]string{"actor": d.Filter.Actor, "type": d.Filter.Type, "since": d.Filter.Since, "until": d.Filter.Until} {
		if v != "" {
			base.Set(k, v)
		}
	}
	if rep.More && len(rep.Entries) > 0 {
		older := url.Values{}
		for k, v := range base {
			older[k] = v
		}
		older.Set("before", strconv.FormatUint(rep.Entries[len(rep.Entries)-1].Seq, 10))
		d.Older = "?" + older.Encode()
	}
	if f.BeforeSeq != 0 {
		d.Newest = "?" + base.Encode()
	}
	u.render(w, r, http.StatusOK, "audit", d)
}

// filter is the reader's filter of the form: a day's end is the next
// day's start.
func (a auditFilter) filter() (archive.AuditFilter, error) {
	f := archive.AuditFilter{Actor: a.Actor}
	if a.Type != "" {
		f.Types = []string{a.Type}
	}
	for _, d := range []struct {
		v    string
		to   *time.Time
		next bool
	}{{a.Since, &f.Since, false}, {a.Until, &f.Until, true}} {
		if d.v == "" {
			continue
		}
		day, err := time.Parse(time.DateOnly, d.v)
		if err != nil {
			return f, errInvalid("date %q: want YYYY-MM-DD", d.v)
		}
		if d.next {
			day = day.AddDate(0, 0, 1)
		}
		*d.to = day
	}
	return f, nil
}

// facts are an entry's fields in key order, each value as text: a string
// as it is, anything else as JSON.
func facts(fields map[string]any) []fact {
	out := make([]fact, 0, len(fields))
	for k, v := range fields {
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v) // decoded from JSON: it encodes
			s = string(b)
		}
		out = append(out, fact{k, s})
	}
	slices.SortFunc(out, func(a, b fact) int { return strings.Compare(a.Key, b.Key) })
	return out
}
