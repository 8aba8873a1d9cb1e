// SPDX-License-Identifier: Apache-2.0

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
)

// ErrNoDaemon reports that no daemon answers on the control socket.
var ErrNoDaemon = errors.New("api: no daemon on the control socket")

// Client calls a daemon over its control socket. Its methods mirror
// [archive.Archive]'s, so the CLI uses either the same way.
type Client struct {
	http *http.Client
}

// Dial connects to the control socket at path. It returns ErrNoDaemon when
// no daemon listens there.
func Dial(path string) (*Client, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, ErrNoDaemon
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	_ = c.Close() // only a probe
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{http: &http.Client{Transport: tr}}, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

func (c *Client) call(ctx context.Context, path string, q url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, q, nil, out)
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	u := "http://sealmail" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if who, _ := ctx.Value(onBehalfKey{}).(string); who != "" {
		req.Header.Set(OnBehalfOfHeader, who)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return DecodeError(resp, "daemon")
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxReply)).Decode(out); err != nil {
		return fmt.Errorf("control socket: decode reply: %w", err)
	}
	return nil
}

// MaxReply bounds what a client reads of one reply: a feed page carries at
// most 32 MiB of records beyond its first message, and a message at most
// 1 GiB (base64 in JSON: a third more), whatever a receiver sends.
const MaxReply = 2 << 30

// DecodeError rebuilds the *[archive.Error] a server (the daemon, or the
// reader, as named by who) sent: its code and fields survive the socket, so
// errors.Is(err, archive.ErrNotFound) and [archive.AsError] work as on an
// archive opened directly. An internal error's message says where it
// happened.
func DecodeError(resp *http.Response, who string) error {
	var b ErrorBody
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&b); err != nil || b.Error == nil || b.Error.Code == "" {
		return &archive.Error{Code: archive.CodeInternal, Message: fmt.Sprintf("%s: HTTP %d without an error body", who, resp.StatusCode)}
	}
	if b.Error.Code == archive.CodeInternal {
		b.Error.Message = who + ": " + b.Error.Message
	}
	return b.Error
}

// Status is [archive.Archive.Status] through the daemon.
func (c *Client) Status(ctx context.Context) (*archive.Status, error) {
	var st archive.Status
	return &st, c.call(ctx, "/v1/status", nil, &st)
}

// List is [archive.Archive.List] through the daemon.
func (c *Client) List(ctx context.Context, o archive.ListOptions) ([]archive.MessageSummary, error) {
	q := url.Values{}
	if o.After != 0 {
		q.Set("after", o.After.String())
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var rows []archive.MessageSummary
	return rows, c.call(ctx, "/v1/messages", q, &rows)
}

// Get is [archive.Archive.Get] through the daemon.
func (c *Client) Get(ctx context.Context, id sealmail.MessageID) (*archive.Sealed, error) {
	var m archive.Sealed
	return &m, c.call(ctx, "/v1/messages/"+id.String(), nil, &m)
}

func checkpointText(cps []archive.Checkpoint) (string, error) {
	var b bytes.Buffer
	for _, cp := range cps {
		t, err := cp.MarshalText()
		if err != nil {
			return "", err
		}
		b.Write(t)
	}
	return b.String(), nil
}

// Verify is [archive.Archive.Verify] through the daemon.
func (c *Client) Verify(ctx context.Context, external []archive.Checkpoint) (*archive.VerifyReport, error) {
	text, err := checkpointText(external)
	if err != nil {
		return nil, err
	}
	var rep archive.VerifyReport
	return &rep, c.do(ctx, http.MethodPost, "/v1/verify", nil, checkpointsBody{Checkpoints: text}, &rep)
}

// VerifyAudit is [archive.Archive.VerifyAudit] through the daemon.
func (c *Client) VerifyAudit(ctx context.Context, external []archive.Checkpoint) (*archive.AuditReport, error) {
	text, err := checkpointText(external)
	if err != nil {
		return nil, err
	}
	var rep archive.AuditReport
	return &rep, c.do(ctx, http.MethodPost, "/v1/audit/verify", nil, checkpointsBody{Checkpoints: text}, &rep)
}

// Checkpoint is [archive.Archive.Checkpoint] through the daemon.
func (c *Client) Checkpoint(ctx context.Context) (archive.Checkpoint, error) {
	var b checkpointsBody
	if err := c.do(ctx, http.MethodPost, "/v1/audit/checkpoint", nil, struct{}{}, &b); err != nil {
		return archive.Checkpoint{}, err
	}
	cps, err := archive.ParseCheckpoints([]byte(b.Checkpoints))
	if err != nil {
		return archive.Checkpoint{}, fmt.Errorf("control socket: checkpoint: %w", err)
	}
	if len(cps) != 1 {
		return archive.Checkpoint{}, fmt.Errorf("control socket: %d checkpoints in the reply, want 1", len(cps))
	}
	return cps[0], nil
}

// Feed is [archive.Archive.Feed] through the daemon.
func (c *Client) Feed(ctx context.Context, after uint64, limit int) (*archive.FeedPage, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var p archive.FeedPage
	return &p, c.call(ctx, "/v1/feed", q, &p)
}

// AuditEntries is [archive.Archive.AuditEntries] through the daemon.
func (c *Client) AuditEntries(ctx context.Context, f archive.AuditFilter, limit int) ([]archive.AuditEntry, error) {
	q := url.Values{"type": f.Types}
	if f.BeforeSeq != 0 {
		q.Set("before", strconv.FormatUint(f.BeforeSeq, 10))
	}
	if f.Actor != "" {
		q.Set("actor", f.Actor)
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var es []archive.AuditEntry
	return es, c.call(ctx, "/v1/audit/entries", q, &es)
}

// AuditKey is [archive.Archive.AuditKey] through the daemon.
func (c *Client) AuditKey(ctx context.Context) (archive.AuditKey, error) {
	var k archive.AuditKey
	return k, c.call(ctx, "/v1/audit/key", nil, &k)
}

// RecordEvent is [archive.Archive.RecordEvent] through the daemon: fields
// is marshalled to a JSON object.
func (c *Client) RecordEvent(ctx context.Context, typ string, fields any) (uint64, error) {
	b, err := json.Marshal(fields)
	if err != nil {
		return 0, err
	}
	var r EventReply
	return r.Seq, c.do(ctx, http.MethodPost, "/v1/audit/events", nil, EventBody{Type: typ, Fields: b}, &r)
}

// AddHoldMembers is [archive.Archive.AddHoldMembers] through the daemon.
func (c *Client) AddHoldMembers(ctx context.Context, name string, ids []sealmail.MessageID, through uint64) ([]sealmail.MessageID, error) {
	var r MembersReply
	return r.IDs, c.do(ctx, http.MethodPost, "/v1/holds/"+url.PathEscape(name)+"/members", nil, MembersBody{Add: ids, Through: through}, &r)
}

// HoldMembers is [archive.Archive.HoldMembers] through the daemon.
func (c *Client) HoldMembers(ctx context.Context, name string) ([]sealmail.MessageID, error) {
	var r MembersReply
	return r.IDs, c.call(ctx, "/v1/holds/"+url.PathEscape(name)+"/members", nil, &r)
}

// Holds is [archive.Archive.Holds] through the daemon.
func (c *Client) Holds(ctx context.Context) ([]archive.HoldInfo, error) {
	var hs []archive.HoldInfo
	return hs, c.call(ctx, "/v1/holds", nil, &hs)
}

// CreateHold is [archive.Archive.CreateHold] through the daemon.
func (c *Client) CreateHold(ctx context.Context, name, q, reason string) (*archive.HoldInfo, error) {
	var h archive.HoldInfo
	return &h, c.do(ctx, http.MethodPost, "/v1/holds", nil, HoldBody{Name: name, Query: q, Reason: reason}, &h)
}

// ReleaseHold is [archive.Archive.ReleaseHold] through the daemon.
func (c *Client) ReleaseHold(ctx context.Context, name, reason string) (*archive.HoldInfo, error) {
	var h archive.HoldInfo
	return &h, c.do(ctx, http.MethodPost, "/v1/holds/"+url.PathEscape(name)+"/release", nil, HoldBody{Reason: reason}, &h)
}

// ExecutePurge is [archive.Archive.ExecutePurge] through the daemon.
func (c *Client) ExecutePurge(ctx context.Context, v archive.PurgeVerdict) (*archive.PurgeReport, error) {
	var rep archive.PurgeReport
	return &rep, c.do(ctx, http.MethodPost, "/v1/purge", nil, v, &rep)
}

// ExecuteErase is [archive.Archive.ExecuteErase] through the daemon.
func (c *Client) ExecuteErase(ctx context.Context, v archive.EraseVerdict) (*archive.EraseReport, error) {
	var rep archive.EraseReport
	return &rep, c.do(ctx, http.MethodPost, "/v1/erase", nil, v, &rep)
}

// ApplyPolicy is [archive.Archive.ApplyPolicy] through the daemon.
func (c *Client) ApplyPolicy(ctx context.Context, p archive.PolicyApply) (*archive.PolicyResult, error) {
	var res archive.PolicyResult
	return &res, c.do(ctx, http.MethodPost, "/v1/policy/apply", nil, p, &res)
}

// The client serves the operations that decrypt on its side.
var _ archive.PolicySource = (*Client)(nil)

type onBehalfKey struct{}

// OnBehalfOf returns a context whose calls through a [Client] name who
// they are for (a person signed in to the reader service: "alice
// (officer)"). The daemon accepts it only from a service peer and audits
// the call as that person's.
func OnBehalfOf(ctx context.Context, who string) context.Context {
	return context.WithValue(ctx, onBehalfKey{}, who)
}
