// SPDX-License-Identifier: Apache-2.0

package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/sealmail/sealmail/archive"
)

// MaxImportBody bounds one import request: the message (base64 in JSON)
// and its facts. The CLI refuses larger messages before it sends them.
const MaxImportBody = 1 << 30

// ImportBody carries one message to import.
type ImportBody struct {
	Source  archive.ImportSource  `json:"source"`
	Message archive.ImportMessage `json:"message"`
}

func (s *Server) importMessage(w http.ResponseWriter, r *http.Request) {
	var b ImportBody
	if err := json.NewDecoder(io.LimitReader(r.Body, MaxImportBody)).Decode(&b); err != nil {
		s.badRequest(w, "body: "+err.Error())
		return
	}
	res, err := s.a.Import(r.Context(), b.Source, b.Message)
	s.reply(w, res, err)
}

func (s *Server) recordImport(w http.ResponseWriter, r *http.Request) {
	var rec archive.ImportRecord
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&rec); err != nil {
		s.badRequest(w, "body: "+err.Error())
		return
	}
	s.reply(w, struct{}{}, s.a.RecordImport(r.Context(), rec))
}

// Import is [archive.Archive.Import] through the daemon.
func (c *Client) Import(ctx context.Context, src archive.ImportSource, m archive.ImportMessage) (archive.ImportResult, error) {
	var res archive.ImportResult
	err := c.do(ctx, http.MethodPost, "/v1/import", nil, ImportBody{Source: src, Message: m}, &res)
	return res, err
}

// RecordImport is [archive.Archive.RecordImport] through the daemon.
func (c *Client) RecordImport(ctx context.Context, r archive.ImportRecord) error {
	var out struct{}
	return c.do(ctx, http.MethodPost, "/v1/import/record", nil, r, &out)
}
