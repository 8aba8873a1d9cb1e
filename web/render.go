// SPDX-License-Identifier: Apache-2.0

package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/archive"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageCSP is the Content-Security-Policy of every page: scripts, styles and
// images only from the reader itself (no inline script or style, no
// eval), requests only to it, forms only to it, no plugins, no framing,
// no <base>.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// templates are the pages, each parsed with the layout, by file name
// without ".html".
type templates map[string]*template.Template

func parseTemplates() (templates, error) {
	funcs := template.FuncMap{"join": strings.Join, "size": humanSize}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse layout: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	t := templates{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		c, err := layout.Clone()
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", n, err)
		}
		if t[name], err = c.ParseFS(templateFS, n); err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", n, err)
		}
	}
	return t, nil
}

// asset is a static file: its bytes, type and a hash of them, which goes
// into its URL so that it can be cached for good.
type asset struct {
	data  []byte
	ctype string
	hash  string
}

func loadAssets() (map[string]asset, error) {
	out := map[string]asset{}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		out[path.Base(p)] = asset{data: data, ctype: mime.TypeByExtension(path.Ext(p)), hash: hex.EncodeToString(sum[:6])}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: static files: %w", err)
	}
	return out, nil
}

// static serves an embedded file. Its URL carries its hash (?v=), so it may
// be cached as long as browsers like.
func (u *ui) static(w http.ResponseWriter, r *http.Request) {
	a, ok := u.assets[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	_, _ = w.Write(a.data) // a failed write is the client's closed connection
}

// view is what every template gets: the page's own data in Data, and what
// the layout needs.
type view struct {
	u    *ui
	Lang string
	// Me is the signed-in caller, nil on the sign-in page and for an
	// enrolment session.
	Me *access.Principal
	// Nav is the navigation for Me's role.
	Nav []navLink
	// CSRF is the session's CSRF token, for the forms of signed-in pages;
	// FormToken is the browser's token, for the sign-in and language forms.
	CSRF      string
	FormToken string
	// Path is this page's path, for the language switch to come back to.
	Path string
	Data any
}

// navLink is a link of the navigation.
type navLink struct {
	Path, Key string
	Current   bool
}

// T is the text of key in the page's language, formatted with args.
func (v *view) T(key string, args ...any) string { return v.u.cat.text(v.Lang, key, args...) }

// Role is the name of role r in the page's language.
func (v *view) Role(r access.Role) string { return v.T("role." + string(r)) }

// Time formats t for people: UTC, in the page language's way.
func (v *view) Time(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(v.T("format.time"))
}

// Asset is the URL of a static file.
func (v *view) Asset(name string) string {
	a, ok := v.u.assets[name]
	if !ok {
		panic(fmt.Sprintf("web: no static file %q", name)) // a template names a file that is not embedded
	}
	return pathStatic + name + "?v=" + a.hash
}

// WebAuthn reports whether security keys are configured.
func (v *view) WebAuthn() bool { return v.u.st.WebAuthnEnabled() }

// render writes page name with data and status, with the page headers.
func (u *ui) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	t, ok := u.tmpl[name]
	if !ok {
		panic(fmt.Sprintf("web: no template %q", name))
	}
	v := &view{u: u, Lang: u.lang(r), FormToken: u.formToken(w, r), Path: localPath(r.URL.Path), Data: data}
	if p, ok := access.PrincipalFrom(r.Context()); ok && !p.Enrolling() {
		v.Me, v.CSRF = &p, p.CSRF
		for _, s := range sections() {
			if p.Role.Grant(s.perm) != access.GrantNone {
				cur := r.URL.Path == s.path || strings.HasPrefix(r.URL.Path, s.path+"/")
				v.Nav = append(v.Nav, navLink{Path: s.path, Key: s.key, Current: cur})
			}
		}
	} else if ok {
		v.CSRF = p.CSRF // an enrolment session signs out and enrols with it
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		u.log.Error("render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if name == "message" {
		h.Set("Content-Security-Policy", messageCSP) // its frame shows the HTML body
	} else {
		h.Set("Content-Security-Policy", pageCSP)
	}
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Content-Language", v.Lang)
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes()) // a failed write is the client's closed connection
}

// problem is the data of the error page.
type problem struct {
	Status int
	// Key is the message key of what went wrong; Detail is an explanation
	// from access (English), if any.
	Key    string
	Detail string
}

// refused answers a page request access refused.
func (u *ui) refused(w http.ResponseWriter, r *http.Request, why access.Refusal) {
	key := "error.forbidden"
	if why == access.RefusedCSRF {
		key = "error.csrf"
	}
	u.render(w, r, http.StatusForbidden, "error", problem{Status: http.StatusForbidden, Key: key})
}

// fail answers err: the caller's mistakes with their status, anything else
// logged and answered "internal error".
func (u *ui) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := problem{Status: http.StatusInternalServerError, Key: "error.internal"}
	switch {
	case errors.Is(err, access.ErrInvalid):
		p = problem{Status: http.StatusBadRequest, Key: "error.invalid", Detail: detail(err)}
	case errors.Is(err, access.ErrNoUser), errors.Is(err, access.ErrNoSuchSession), errors.Is(err, access.ErrNoSuchCredential):
		p = problem{Status: http.StatusNotFound, Key: "error.notfound"}
	case errors.Is(err, access.ErrLastAdmin):
		p = problem{Status: http.StatusConflict, Key: "error.lastadmin"}
	case archive.AsError(err).Code == archive.CodeNotFound, archive.AsError(err).Code == archive.CodeDeleted:
		p = problem{Status: http.StatusNotFound, Key: "error.gone"}
	case archive.AsError(err).Code == archive.CodeLocked:
		p = problem{Status: http.StatusServiceUnavailable, Key: "error.locked"}
	case archive.AsError(err).Code == archive.CodeInvalid:
		p = problem{Status: http.StatusBadRequest, Key: "error.invalid", Detail: archive.AsError(err).Message}
	case archive.AsError(err).Code == archive.CodePermission:
		p = problem{Status: http.StatusForbidden, Key: "error.forbidden", Detail: archive.AsError(err).Message}
	default:
		u.log.Error("page", "path", r.URL.Path, "remote", access.RemoteIP(r), "err", err)
	}
	u.render(w, r, p.Status, "error", p)
}

// detail is the part of an access error after its package prefix, for
// showing.
func detail(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "access: "); i >= 0 {
		s = s[i+len("access: "):]
	}
	return s
}
