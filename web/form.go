// SPDX-License-Identifier: Apache-2.0

package web

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/sealmail/sealmail/access"
)

// formCookie holds the browser's form token: the CSRF token of the forms
// that come before a session (sign-in, language). A form must send it back
// in its csrf field (double submit); __Host- means no other host or plain
// HTTP page can set it (RFC 6265bis §4.1.3.2).
const formCookie = "__Host-sealmail-form"

// formTokenLen is the length of a form token: base64url of 32 random bytes.
var formTokenLen = base64.RawURLEncoding.EncodedLen(32)

// formToken returns the browser's form token, setting a new one if it has
// none.
func (u *ui) formToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(formCookie); err == nil && len(c.Value) == formTokenLen {
		return c.Value
	}
	b := make([]byte, 32)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: formCookie, Value: tok, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode})
	return tok
}

// validFormToken reports whether a parsed form post carries the browser's
// form token.
func validFormToken(r *http.Request) bool {
	c, err := r.Cookie(formCookie)
	return err == nil && len(c.Value) == formTokenLen && hmac.Equal([]byte(c.Value), []byte(r.PostForm.Get(access.CSRFField)))
}

// localPath returns p if it is a path on this server (for redirecting to
// after sign-in or a language switch), else "/": it must begin with one
// slash, not two or a backslash (which browsers take for another host), and
// hold no control characters.
func localPath(p string) string {
	if p == "" || p[0] != '/' || len(p) > 2048 {
		return "/"
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return "/"
	}
	if strings.ContainsFunc(p, func(c rune) bool { return c < 0x20 || c == 0x7f || c == '\\' }) {
		return "/"
	}
	return p
}
