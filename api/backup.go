// SPDX-License-Identifier: Apache-2.0

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sealmail/sealmail/archive"
)

// The backup calls: the CLI takes a snapshot, reads its files and ends it;
// the daemon never writes to the backup target (docs/operations.md).
func (s *Server) backupRoutes(route func(pattern string, h http.HandlerFunc)) {
	route("POST /v1/backup", s.backupBegin)
	route("GET /v1/backup/{id}/file", s.backupRead)
	route("POST /v1/backup/{id}/end", s.backupEnd)
}

func (s *Server) backupBegin(w http.ResponseWriter, r *http.Request) {
	snap, err := s.a.BackupBegin(r.Context())
	s.reply(w, snap, err)
}

// backupRead streams bytes of one file: ?path=P&offset=N&length=N.
func (s *Server) backupRead(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	off, err1 := strconv.ParseInt(q.Get("offset"), 10, 64)
	n, err2 := strconv.ParseInt(q.Get("length"), 10, 64)
	if err1 != nil || err2 != nil {
		s.badRequest(w, "offset and length: want numbers")
		return
	}
	rc, err := s.a.BackupRead(r.Context(), r.PathValue("id"), q.Get("path"), off, n)
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	if _, err := io.Copy(w, rc); err != nil {
		// The client sees a short body: its length check fails the backup.
		s.log.Warn("control socket: backup read", "path", q.Get("path"), "err", err)
	}
}

func (s *Server) backupEnd(w http.ResponseWriter, r *http.Request) {
	var res archive.BackupResult
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&res); err != nil {
		s.badRequest(w, "body: "+err.Error())
		return
	}
	s.reply(w, struct{}{}, s.a.BackupEnd(r.Context(), r.PathValue("id"), res))
}

// BackupBegin is [archive.Archive.BackupBegin] through the daemon.
func (c *Client) BackupBegin(ctx context.Context) (*archive.BackupSnapshot, error) {
	var snap archive.BackupSnapshot
	return &snap, c.do(ctx, http.MethodPost, "/v1/backup", nil, struct{}{}, &snap)
}

// BackupRead is [archive.Archive.BackupRead] through the daemon: the
// reply's body, which the caller closes.
func (c *Client) BackupRead(ctx context.Context, id, path string, off, n int64) (io.ReadCloser, error) {
	q := url.Values{"path": {path}, "offset": {strconv.FormatInt(off, 10)}, "length": {strconv.FormatInt(n, 10)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sealmail/v1/backup/"+url.PathEscape(id)+"/file?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, DecodeError(resp, "daemon")
	}
	return resp.Body, nil
}

// BackupEnd is [archive.Archive.BackupEnd] through the daemon.
func (c *Client) BackupEnd(ctx context.Context, id string, r archive.BackupResult) error {
	var out struct{}
	return c.do(ctx, http.MethodPost, "/v1/backup/"+url.PathEscape(id)+"/end", nil, r, &out)
}
