// SPDX-License-Identifier: Apache-2.0

package api_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
)

// serve runs a control socket for a new archive and returns its client.
func serve(t *testing.T) (*archive.Archive, *api.Client) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, err := archive.Create(dir, []string{id.Recipient().String()}, archive.Options{MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	sock := filepath.Join(dir, api.SocketName)
	l, err := api.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(a, api.Options{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	c, err := api.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return a, c
}

// Errors cross the control socket typed: the client gets the code and the
// fields the archive's error has on the daemon's side, so that the CLI
// decides its exit code the same way with or without a daemon.
func TestTypedErrorsCrossTheSocket(t *testing.T) {
	t.Parallel()
	a, c := serve(t)
	ctx := context.Background()

	for _, tc := range []struct {
		name   string
		remote func() error
		local  func() error
		code   archive.Code
		is     error
		fields map[string]any
	}{
		{
			name:   "query syntax",
			remote: func() error { _, err := c.CreateHold(ctx, "q", "from:(", "case"); return err },
			local:  func() error { _, err := a.CreateHold(ctx, "q", "from:(", "case"); return err },
			code:   archive.CodeInvalid,
			fields: map[string]any{"offset": float64(5)},
		},
		{
			name:   "hold name taken",
			remote: func() error { _, err := c.CreateHold(ctx, "h", "*", "case 1"); return err },
			local:  func() error { _, err := a.CreateHold(ctx, "h", "*", "case 1"); return err },
			code:   archive.CodeInvalid,
			fields: map[string]any{"hold": "h", "op": "create"},
		},
		{
			name:   "no such message",
			remote: func() error { _, err := c.Get(ctx, 42); return err },
			local:  func() error { _, err := a.Get(ctx, 42); return err },
			code:   archive.CodeNotFound,
			is:     archive.ErrNotFound,
		},
		{
			name:   "erase without reason",
			remote: func() error { _, err := c.ExecuteErase(ctx, archive.EraseVerdict{Query: "*"}); return err },
			local:  func() error { _, err := a.ExecuteErase(ctx, archive.EraseVerdict{Query: "*"}); return err },
			code:   archive.CodeInvalid,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "hold name taken" {
				if _, err := a.CreateHold(ctx, "h", "*", "case 1"); err != nil {
					t.Fatal(err)
				}
			}
			local, remote := tc.local(), tc.remote()
			le, re := archive.AsError(local), archive.AsError(remote)
			if le == nil || re == nil || le.Code != tc.code || re.Code != tc.code {
				t.Fatalf("codes: local %v, remote %v; want %s", local, remote, tc.code)
			}
			var typed *archive.Error
			if !errors.As(remote, &typed) {
				t.Errorf("remote error %T %v is not an *archive.Error", remote, remote)
			}
			if re.Message != le.Message {
				t.Errorf("remote message %q, local %q", re.Message, le.Message)
			}
			if tc.is != nil && (!errors.Is(local, tc.is) || !errors.Is(remote, tc.is)) {
				t.Errorf("errors.Is(%v) local %v, remote %v; want both", tc.is, errors.Is(local, tc.is), errors.Is(remote, tc.is))
			}
			for k, v := range tc.fields {
				if re.Fields[k] != v {
					t.Errorf("remote field %s = %#v, want %#v (all: %v)", k, re.Fields[k], v, re.Fields)
				}
			}
		})
	}
}

// A deleted message's error crosses the socket with its code, its facts
// and the reason an operator reads.
func TestDeletedErrorCrossesTheSocket(t *testing.T) {
	t.Parallel()
	a, c := serve(t)
	ctx := archive.WithActor(context.Background(), "test")
	env := &sealmail.Envelope{Sender: "a@example.com", ClientIP: "192.0.2.1", Received: time.Now(),
		Recipients: []sealmail.Recipient{{Address: "b@example.org", Kind: sealmail.RcptTo}}}
	raw := []byte("Subject: x\r\n\r\nbody\r\n")
	id, err := a.Ingest(ctx, env, raw)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.ExecuteErase(ctx, archive.EraseVerdict{Query: "subject:x", Reason: "Art. 17 test", OverrideRetention: true,
		Delete: []archive.VerdictItem{{ID: uint64(id), Receipts: 1}}})
	if err != nil || len(rep.Erased) != 1 || rep.Erased[0] != uint64(id) {
		t.Fatalf("Erase = %+v, %v; want message %d erased", rep, err, id)
	}
	_, lerr := a.Get(ctx, id)
	_, rerr := c.Get(ctx, id)
	if !errors.Is(rerr, archive.ErrDeleted) || archive.AsError(rerr).Code != archive.CodeDeleted {
		t.Fatalf("remote Get of an erased message = %v, want ErrDeleted", rerr)
	}
	if rerr.Error() != lerr.Error() {
		t.Errorf("remote %q, local %q", rerr, lerr)
	}
	if f := archive.AsError(rerr).Fields; f["id"] != float64(id) || f["audit_seq"] != float64(rep.AuditSeq) {
		t.Errorf("remote fields %v, want id %d and audit_seq %d", f, id, rep.AuditSeq)
	}
}
