// SPDX-License-Identifier: Apache-2.0

// Package web is the reader's web interface: server-rendered pages
// (html/template, embedded with the style sheet and one small script) on an
// [access.Server], for every role: sign-in with password and TOTP, recovery
// code or security key, first-sign-in enrolment, own sessions, for admins
// the users page; search and a message's page (with its HTML body in a
// sandboxed frame, attachments and the original), exports, legal holds,
// approvals, the audit log, status and unlocking, which ask the
// [reader.Reader] of [Options] as the signed-in caller. What each role
// sees, the security headers and the languages are described in
// docs/web.md.
//
// # Invariants
//
//   - Every page is registered through access ([access.Server.HandlePage] and
//     its kin) with one permission, checked before the page runs; the
//     navigation shows a page only to roles that hold its permission.
//   - Every page is sent with a Content-Security-Policy that allows no inline
//     script or style and no framing ('none'), and with Cache-Control:
//     no-store (set by access); nothing the user typed reaches a page but
//     through html/template's escaping. The one exception is a message's
//     HTML body: its own response, framable by the reader's pages only,
//     under a policy that runs no script and loads nothing (bodyCSP), in
//     a sandboxed frame, and sanitised with an allow list before that.
//   - Search and reading are the reader's: web never narrows a query or
//     decides who may read a message, and writes no audit entry of its own.
//   - Every form carries a CSRF token: the session's for signed-in pages
//     (checked by access), a per-browser token in a __Host- cookie for the
//     sign-in and language forms (checked here). Cross-origin state-changing
//     requests are refused as well ([http.CrossOriginProtection]).
//   - Every page works without JavaScript, except security keys
//     (WebAuthn), which need the browser's API.
//   - Credentials (passwords, TOTP secrets, recovery codes) are shown once,
//     in the answer to the request that made them, and never logged.
//   - Every text a person reads is in the message catalogue in English and
//     German (a test checks that every key the templates use has both).
package web
