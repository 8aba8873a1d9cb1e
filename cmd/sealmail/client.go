// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
)

// archiveAPI is what the commands need. Both a running daemon (through
// [api.Client]) and an archive opened directly provide it, through the same
// archive code.
type archiveAPI interface {
	Status(ctx context.Context) (*archive.Status, error)
	List(ctx context.Context, o archive.ListOptions) ([]archive.MessageSummary, error)
	Get(ctx context.Context, id sealmail.MessageID) (*archive.Sealed, error)
	Verify(ctx context.Context, external []archive.Checkpoint) (*archive.VerifyReport, error)
	VerifyAudit(ctx context.Context, external []archive.Checkpoint) (*archive.AuditReport, error)
	Checkpoint(ctx context.Context) (archive.Checkpoint, error)
	archive.BackupSource
	Close() error
}

// connect talks to the daemon serving g.data, or opens the archive directly
// (read-only) when no daemon runs.
func connect(ctx context.Context, g *globalOptions) (archiveAPI, error) {
	sock := filepath.Join(g.data, api.SocketName)
	// While a daemon starts, it holds the archive before its socket
	// answers: try both for a while.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := api.Dial(sock)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, api.ErrNoDaemon) {
			return nil, err
		}
		a, err := archive.Open(g.data, archive.Options{Logger: newLogger(g, nil), ReadOnly: true, LockTimeout: 300 * time.Millisecond})
		if !errors.Is(err, archive.ErrLocked) {
			return a, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the archive at %s is in use by another sealmail process, but no daemon answers on %s: "+
				"wait for the other command to finish, or check the daemon (systemctl status sealmail)", g.data, sock)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// closeArchive closes a (at the end of a command, deferred) and reports its
// error in *err unless the command failed already: closing an archive
// opened directly writes the audit log's final checkpoint.
func closeArchive(a interface{ Close() error }, err *error) {
	if cerr := a.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("close archive: %w", cerr)
	}
}
