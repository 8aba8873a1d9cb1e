// SPDX-License-Identifier: Apache-2.0

package api

import (
	"context"
	"net/http"

	"github.com/sealmail/sealmail/archive"
)

// The offsite calls: the daemon syncs or verifies its offsite copy with
// its own configuration (the credentials never cross the socket).
func (s *Server) offsiteRoutes(route func(pattern string, h http.HandlerFunc)) {
	route("POST /v1/offsite/sync", s.offsiteSync)
	route("POST /v1/offsite/verify", s.offsiteVerify)
}

// errNoOffsite is the answer of a daemon without an [offsite] section.
var errNoOffsite = &archive.Error{Code: archive.CodeInvalid,
	Message: "the daemon has no offsite copy configured: add an [offsite] section to its configuration and restart it"}

func (s *Server) offsiteSync(w http.ResponseWriter, r *http.Request) {
	if s.opts.Offsite == nil {
		s.reply(w, nil, errNoOffsite)
		return
	}
	rep, err := s.a.OffsiteSync(r.Context(), *s.opts.Offsite)
	s.reply(w, rep, err)
}

func (s *Server) offsiteVerify(w http.ResponseWriter, r *http.Request) {
	if s.opts.Offsite == nil {
		s.reply(w, nil, errNoOffsite)
		return
	}
	rep, err := s.a.VerifyOffsite(r.Context(), *s.opts.Offsite)
	s.reply(w, rep, err)
}

// OffsiteSync is [archive.Archive.OffsiteSync] through the daemon, with
// the daemon's configuration.
func (c *Client) OffsiteSync(ctx context.Context) (*archive.OffsiteReport, error) {
	var rep archive.OffsiteReport
	return &rep, c.do(ctx, http.MethodPost, "/v1/offsite/sync", nil, struct{}{}, &rep)
}

// VerifyOffsite is [archive.Archive.VerifyOffsite] through the daemon.
func (c *Client) VerifyOffsite(ctx context.Context) (*archive.OffsiteVerifyReport, error) {
	var rep archive.OffsiteVerifyReport
	return &rep, c.do(ctx, http.MethodPost, "/v1/offsite/verify", nil, struct{}{}, &rep)
}
