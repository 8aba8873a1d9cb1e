// SPDX-License-Identifier: Apache-2.0

package web

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/sealmail/sealmail/reader"
)

// statusData is the status page's (admins).
type statusData struct {
	S *reader.SystemStatus
}

func (u *ui) status(w http.ResponseWriter, r *http.Request) {
	st, err := u.opts.Reader.SystemStatus(r.Context(), reader.HTTPCaller(r))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "status", statusData{S: st})
}

// unlockData is the unlock page's (officers): whether the reader is
// locked, and the form to unlock it.
type unlockData struct {
	Locked   bool
	LockedBy string
	Coverage reader.Coverage
	// Notice is the message key of what was just done; Error (with
	// Detail) of what was refused.
	Notice        string
	Error, Detail string
}

func (u *ui) unlockPage(w http.ResponseWriter, r *http.Request) {
	u.showUnlock(w, r, http.StatusOK, unlockData{Notice: notice(r, "unlock.done.", "unlocked", "locked")})
}

func (u *ui) showUnlock(w http.ResponseWriter, r *http.Request, status int, d unlockData) {
	cov := u.opts.Reader.Coverage()
	d.Locked, d.LockedBy, d.Coverage = cov.Locked, u.opts.Reader.LockedBy(), cov
	u.render(w, r, status, "unlock", d)
}

// unlock gives the reader the archive identity from the form: an
// identity file (uploaded, or its text pasted), decrypted with the
// passphrase if it is encrypted. Nothing of it is kept or logged.
func (u *ui) unlock(w http.ResponseWriter, r *http.Request) {
	err := u.unlockWith(r)
	if status, detail, ok := refusal(err); ok {
		u.showUnlock(w, r, status, unlockData{Error: "unlock.failed", Detail: detail})
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, pathUnlock+"?done=unlocked", http.StatusSeeOther)
}

func (u *ui) unlockWith(r *http.Request) error {
	text, err := identityFromForm(r)
	if err != nil {
		return err
	}
	ids, err := reader.ParseIdentities(string(text))
	if err != nil {
		return err
	}
	return u.opts.Reader.Unlock(r.Context(), reader.HTTPCaller(r), ids)
}

// identityFromForm is the identity file's text: the uploaded file, else
// the pasted text, decrypted with the form's passphrase if encrypted.
func identityFromForm(r *http.Request) ([]byte, error) {
	b := []byte(strings.TrimSpace(r.PostFormValue("identity")))
	f, _, err := r.FormFile("identity_file")
	switch {
	case err == nil:
		defer f.Close()
		if b, err = io.ReadAll(f); err != nil {
			return nil, err
		}
	case !errors.Is(err, http.ErrMissingFile) && !errors.Is(err, http.ErrNotMultipart):
		return nil, err
	}
	if len(b) == 0 {
		return nil, errInvalid("give the identity file, or paste its text")
	}
	return reader.IdentityFileText(b, func() (string, error) {
		if p := r.PostFormValue("passphrase"); p != "" {
			return p, nil
		}
		return "", errInvalid("the identity file is encrypted: give its passphrase")
	})
}

func (u *ui) lockReader(w http.ResponseWriter, r *http.Request) {
	if err := u.opts.Reader.Lock(r.Context(), reader.HTTPCaller(r)); err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, pathUnlock+"?done=locked", http.StatusSeeOther)
}
