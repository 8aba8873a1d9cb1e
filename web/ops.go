// SPDX-License-Identifier: Apache-2.0

package web

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/sealmail/sealmail/archive"
)

// The pages of officers, auditors and admins that act through the reader
// (exports, holds, approvals, the audit log, status and unlock) ask it as
// the HTTPS API does, with the signed-in person as the caller
// (reader.HTTPCaller): the reader checks the role again, narrows what it
// may see and audits.

// withReader runs h only when the interface has a reader (haveReader).
func (u *ui) withReader(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if u.haveReader(w, r) {
			h(w, r)
		}
	}
}

// notice is the message key prefix+done for the ?done= of r, if it is one
// of known (the query string is anyone's to write).
func notice(r *http.Request, prefix string, known ...string) string {
	if done := r.URL.Query().Get("done"); slices.Contains(known, done) {
		return prefix + done
	}
	return ""
}

// errInvalid is a mistake in what the caller sent, shown as the reader's
// are.
func errInvalid(format string, v ...any) error {
	return &archive.Error{Code: archive.CodeInvalid, Message: fmt.Sprintf(format, v...)}
}

// refusal is what a page shows of a refused act: the message key and the
// reader's explanation (English), and the status to answer with. ok is
// false for an error that is not the caller's to fix: the caller answers
// it with u.fail.
func refusal(err error) (status int, detail string, ok bool) {
	e := archive.AsError(err)
	if e == nil {
		return 0, "", false
	}
	switch e.Code {
	case archive.CodeInvalid:
		return http.StatusBadRequest, e.Message, true
	case archive.CodePermission:
		return http.StatusForbidden, e.Message, true
	case archive.CodeLocked:
		return http.StatusServiceUnavailable, e.Message, true
	}
	return 0, "", false
}

// humanSize is n bytes for people: "158 B", "1.2 KiB", "75.1 GiB".
func humanSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n), "B"
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
