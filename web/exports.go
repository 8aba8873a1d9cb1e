// SPDX-License-Identifier: Apache-2.0

package web

import (
	"net/http"
	"strings"

	"github.com/sealmail/sealmail/reader"
)

// exportsData is the exports page's.
type exportsData struct {
	Jobs []reader.Job
	// Form is what the start form shows (after a refused start, what was
	// sent).
	Form    exportForm
	Formats []string
	// Running: a job is still running, so the page reloads itself.
	Running bool
	// Notice is the message key of what was just done; Error (with
	// Detail, the reader's explanation) of what was refused.
	Notice        string
	Error, Detail string
}

type exportForm struct {
	Query, Format string
	NoWait        bool
}

// exportFormats are what reader.Export writes: over the web, EML is a zip.
var exportFormats = []string{"eml", "mbox", "pst"}

func (u *ui) exports(w http.ResponseWriter, r *http.Request) {
	d := exportsData{Form: exportForm{Query: r.URL.Query().Get("q"), Format: "eml"},
		Notice: notice(r, "exports.done.", "started", "canceled", "deleted")}
	u.showExports(w, r, http.StatusOK, d)
}

func (u *ui) showExports(w http.ResponseWriter, r *http.Request, status int, d exportsData) {
	d.Jobs, d.Formats = u.opts.Reader.ExportJobs(reader.HTTPCaller(r)), exportFormats
	for _, j := range d.Jobs {
		d.Running = d.Running || running(j)
	}
	u.render(w, r, status, "exports", d)
}

// running reports whether job is still at work.
func running(job reader.Job) bool {
	return job.State == reader.JobWaiting || job.State == reader.JobExporting
}

// startExport starts an export job of the form's query.
func (u *ui) startExport(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	form := exportForm{Query: strings.TrimSpace(f.Get("query")), Format: f.Get("format"), NoWait: f.Get("no_wait") == "on"}
	_, err := u.opts.Reader.Export(r.Context(), reader.HTTPCaller(r), reader.ExportRequest{Query: form.Query, Format: form.Format, NoWait: form.NoWait})
	if status, detail, ok := refusal(err); ok {
		u.showExports(w, r, status, exportsData{Form: form, Error: "exports.failed", Detail: detail})
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, pathExports+"?done=started", http.StatusSeeOther)
}

func (u *ui) cancelExport(w http.ResponseWriter, r *http.Request) {
	if _, err := u.opts.Reader.CancelExportJob(reader.HTTPCaller(r), r.PathValue("id")); err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, pathExports+"?done=canceled", http.StatusSeeOther)
}

func (u *ui) deleteExport(w http.ResponseWriter, r *http.Request) {
	if err := u.opts.Reader.DeleteExportJob(reader.HTTPCaller(r), r.PathValue("id")); err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, pathExports+"?done=deleted", http.StatusSeeOther)
}
