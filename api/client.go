// SPDX-License-Identifier: Apache-2.0

package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/store"
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
	c.Close()
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
	u := "http://sealmail" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("daemon: %s: %w", e.Error, store.ErrNotFound)
		}
		return fmt.Errorf("daemon: %s (HTTP %d)", e.Error, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("control socket: decode reply: %w", err)
	}
	return nil
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
