// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/extract"
	"github.com/sealmail/sealmail/reader"
	"github.com/sealmail/sealmail/web"
)

type accessOptions struct {
	config, state, listen, identity string
}

func newAccessCommand(g *globalOptions) *cobra.Command {
	o := &accessOptions{}
	c := &cobra.Command{
		Use:   "access",
		Short: "Run the reader service: search, read and export over HTTPS for signed-in people",
		Long: `Run the reader service (docs/access.md): people sign in over HTTPS (password and
TOTP or WebAuthn) and search, read and export according to their role; root
on the host reaches it through STATEDIR/reader.sock (search, hold, export,
purge, erase, reindex, policy apply go there).

The reader follows the receiver (` + "`sealmail serve`" + `) through its control socket
DIR/control.sock, checks what it gets against the audit log, decrypts with
the identity it holds in memory only, and keeps the search index in
STATEDIR/index. Without --identity it starts locked: ingest goes on,
indexing and reading wait until ` + "`sealmail access unlock`" + ` (or an officer's
POST /api/v1/unlock). A passphrase-protected identity file is decrypted with
SEALMAIL_PASSPHRASE, the systemd credential sealmail-passphrase
($CREDENTIALS_DIRECTORY), or a passphrase typed on the terminal; identities
of age plugins (hardware tokens) work here, on a terminal.

Settings come from --config (TOML, the [reader] section; see
packaging/sealmail.toml); flags override it. SIGTERM or SIGINT stops it.` + exitCodes(", an invalid configuration"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAccess(cmd.Context(), g, o, cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&o.config, "config", "", "configuration file (TOML)")
	c.PersistentFlags().StringVar(&o.state, "state", "", "the reader's state directory (env SEALMAIL_STATE; default /var/lib/sealmail-access)")
	c.Flags().StringVar(&o.listen, "listen", "", "HTTPS listen address (default 127.0.0.1:8443)")
	c.Flags().StringVar(&o.identity, "identity", "", "age identity that decrypts the archive (default: start locked)")

	var identity string
	var asJSON bool
	unlock := &cobra.Command{
		Use:   "unlock --identity FILE",
		Short: "Give the running reader the archive identity",
		Long: `Read the identity file (decrypting it with its passphrase, as the other
commands do) and send the identity to the running reader through its socket,
which admits only root and the reader's user. The reader keeps it in memory
only. Plugin identities work only at the reader's start.` + exitCodes(", an identity that does not match the archive", noReaderCode),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := identityText(identity, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return withReader(readerOf(g, o), func(c *reader.Client) error {
				if err := c.Unlock(cmd.Context(), text); err != nil {
					return fmt.Errorf("unlock: %w", err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), "reader unlocked")
				return nil
			})
		},
	}
	unlock.Flags().StringVar(&identity, "identity", "", "age identity file (required)")
	lock := &cobra.Command{
		Use:   "lock",
		Short: "Make the running reader forget the identity",
		Long:  "Drop the identity from the reader's memory: indexing and reading stop until it is\nunlocked again; ingest goes on." + exitCodes("", noReaderCode),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withReader(readerOf(g, o), func(c *reader.Client) error {
				if err := c.Lock(cmd.Context()); err != nil {
					return fmt.Errorf("lock: %w", err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), "reader locked")
				return nil
			})
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the running reader's state: locked, coverage, holds, problems",
		Long: `Show whether the reader is locked, how far its index covers the archive, the
holds it evaluates, and what it could not do.

--json prints one object: archive, locked, coverage (indexed_seq, head_seq,
last_indexed_id, last_id, not_indexed, indexed, caught_up), holds, problems,
index_lag, state_free_bytes, extraction (sandbox, attachments,
unextracted), receiver (the receiver's status, as ` + "`sealmail status --json`" + `).` + exitCodes("", noReaderCode),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withReader(readerOf(g, o), func(c *reader.Client) error {
				st, err := c.SystemStatus(cmd.Context())
				if err != nil {
					return err
				}
				return printReaderStatus(cmd.OutOrStdout(), st, asJSON)
			})
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	c.AddCommand(unlock, lock, status)
	return c
}

// readerOf returns g with the reader's socket in STATEDIR when --state is
// given to the access subcommands.
func readerOf(g *globalOptions, o *accessOptions) *globalOptions {
	if g.reader == "" && o.state != "" {
		cp := *g
		cp.reader = filepath.Join(o.state, reader.SocketName)
		return &cp
	}
	return g
}

func printReaderStatus(out io.Writer, st *reader.SystemStatus, asJSON bool) error {
	if asJSON {
		return printJSON(out, st)
	}
	state := "unlocked"
	if st.Locked {
		state = "LOCKED (" + st.LockedBy + "): indexing and reading wait for `sealmail access unlock`"
	}
	fmt.Fprintf(out, "archive:    %s\nreader:     %s\n", st.Archive, state)
	fmt.Fprintf(out, "index:      %d messages; %s\n", st.Coverage.Indexed, coverageNote(st.Coverage))
	for _, h := range st.Holds {
		fmt.Fprintf(out, "hold:       %s, %d members, evaluated through entry %d\n", h.Name, h.Members, h.Evaluated)
	}
	if st.Receiver != "" {
		fmt.Fprintf(out, "receiver:   %s\n", st.Receiver)
	}
	fmt.Fprintf(out, "sandbox:    %s (%d attachments, %d not read whole)\n", st.Extraction.Sandbox, st.Extraction.Attachments, st.Extraction.Unextracted)
	fmt.Fprintf(out, "state disk: %s free\n", humanBytes(st.StateFreeBytes))
	if rs := st.ReceiverStatus; rs != nil {
		fmt.Fprintf(out, "receiver:   %d messages, last %d received %s; %s free\n", rs.Messages, rs.LastID, rs.LastReceived.Format(time.RFC3339), humanBytes(rs.FreeBytes))
		for _, j := range rs.JournalSources {
			gap := ""
			if j.Gap {
				gap = " (GAP: silent beyond " + j.MaxSilence + ")"
			}
			fmt.Fprintf(out, "source:     %s last %s%s\n", j.Source, j.LastSeen.Format(time.RFC3339), gap)
		}
	} else {
		fmt.Fprintf(out, "receiver:   status unavailable: %s\n", st.ReceiverStatusError)
	}
	for _, p := range st.Problems {
		fmt.Fprintf(out, "problem:    %s\n", p)
	}
	return nil
}

// runAccess runs the reader service until ctx ends.
func runAccess(ctx context.Context, g *globalOptions, o *accessOptions, errOut io.Writer) (err error) {
	cfg, err := loadConfig(o.config)
	if err != nil {
		return usageError{err}
	}
	if o.listen != "" {
		cfg.Reader.Listen = o.listen
	}
	if o.state != "" {
		cfg.Reader.State = o.state
	}
	if cfg.Reader.State == "" {
		cfg.Reader.State = defaultState()
	}
	if cfg.Reader.Listen == "" {
		cfg.Reader.Listen = "127.0.0.1:8443"
	}
	if err := cfg.validated(); err != nil {
		return err
	}
	log := newLogger(g, cfg)
	// access.Server makes the state directory (0700) and the certificate;
	// its audit events go to the receiver through the reader, and the
	// four-eyes requests it approves are executed by the reader.
	var rd *reader.Reader
	ao := access.Options{
		StateDir: cfg.Reader.State, Logger: log, CertFile: cfg.Reader.CertFile, KeyFile: cfg.Reader.KeyFile, Hostnames: cfg.Reader.Hostnames,
		Audit: func(ctx context.Context, ev access.Event) error {
			if rd == nil {
				return errors.New("the reader is not attached yet")
			}
			return rd.AuditAccess(ctx, ev)
		},
		Execute: func(ctx context.Context, a access.Approval) error {
			if rd == nil {
				return errors.New("the reader is not attached yet")
			}
			return rd.Execute(ctx, a)
		},
	}
	if err := cfg.Access.Apply(&ao); err != nil {
		return usageError{fmt.Errorf("invalid configuration: %w", err)}
	}
	ext, err := startExtractor(ctx, cfg.Reader.Extract, log)
	if err != nil {
		return err
	}
	var ids []age.Identity
	if o.identity != "" {
		if ids, err = loadIdentities(o.identity, errOut); err != nil {
			return err
		}
	}
	control := cfg.Reader.Control
	if control == "" {
		control = filepath.Join(g.data, api.SocketName)
	}
	rcv, err := dialReceiver(ctx, control)
	if err != nil {
		return err
	}
	defer func() { _ = rcv.Close() }() // only idle connections

	srv, err := access.NewServer(ao)
	if err != nil {
		return err
	}
	ro := reader.Options{StateDir: cfg.Reader.State, Receiver: rcv, Identities: ids, Logger: log, Version: version, Access: srv.State()}
	if ext != nil {
		st := ext.Status()
		ro.Extractor, ro.ExtractorInfo = ext, fmt.Sprintf("landlock %s; seccomp %s; %s", st.Landlock, st.Seccomp, st.Limits)
		if len(st.Missing) > 0 {
			ro.ExtractorInfo += "; missing " + strings.Join(st.Missing, ", ")
		}
	}
	rd, err = reader.Open(ctx, ro)
	if err != nil {
		_ = srv.Shutdown(context.Background()) // closes the state; the reader's error is the news
		return err
	}
	rd.Register(srv)
	var providers []web.Provider
	for _, p := range srv.State().OIDCProviders() {
		providers = append(providers, web.Provider{Name: p.DisplayName, Path: p.Start})
	}
	if err := web.Register(srv, web.Options{Logger: log, SignInWith: providers, Reader: rd}); err != nil {
		_ = srv.Shutdown(context.Background())
		_ = rd.Close()
		return err
	}
	l, err := net.Listen("tcp", cfg.Reader.Listen)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		_ = rd.Close()
		return fmt.Errorf("https listen: %w", err)
	}
	sockPath := filepath.Join(cfg.Reader.State, reader.SocketName)
	ls, err := api.Listen(sockPath)
	if err != nil {
		l.Close()
		_ = srv.Shutdown(context.Background())
		_ = rd.Close()
		return err
	}
	sock := reader.NewSocket(rd)
	runCtx, stopRun := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Go(func() {
		if err := srv.Serve(l); err != nil {
			errc <- fmt.Errorf("https: %w", err)
		}
	})
	wg.Go(func() {
		if err := sock.Serve(ls); err != nil {
			errc <- fmt.Errorf("reader socket: %w", err)
		}
	})
	wg.Go(func() { _ = rd.Run(runCtx) })
	log.Info("sealmail reader serving", "https", l.Addr().String(), "web", "https://"+l.Addr().String()+"/", "socket", sockPath, "fingerprint", srv.Fingerprint(),
		"locked", len(ids) == 0, "state", cfg.Reader.State, "version", version)
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
		log.Error("listener failed; shutting down", "err", runErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sock.Shutdown(sctx); err != nil {
		log.Warn("reader socket shutdown", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("https shutdown", "err", err)
	}
	stopRun()
	wg.Wait()
	os.Remove(sockPath)
	if err := rd.Close(); err != nil {
		return fmt.Errorf("close the reader: %w", err)
	}
	log.Info("stopped")
	return runErr
}

// startExtractor makes the sandbox that extracts attachments' text (this
// binary re-executed as its child), logs what it enforces and checks that
// a child starts and answers. A sandbox that does not work stops the
// reader: a hold or an export by query must not miss words inside
// attachments unnoticed. [reader.extract] off = true runs without one
// (attachments are then indexed by name; `sealmail reindex --all` reads
// them once the sandbox is on). A missing tool or a kernel without
// Landlock or seccomp is logged as a warning: the formats of a missing
// tool are not extracted (flag:unextracted), the sandbox keeps the
// restrictions the kernel has.
func startExtractor(ctx context.Context, cfg ExtractConfig, log *slog.Logger) (*extract.Sandbox, error) {
	if cfg.Off {
		log.Warn("attachment text is not extracted ([reader.extract] off = true): attachments are indexed by name only")
		return nil, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("attachment sandbox: %w", err)
	}
	sb, err := extract.NewSandbox(cfg.options([]string{exe, extractChildArg}))
	if err != nil {
		return nil, fmt.Errorf("attachment sandbox: %w", err)
	}
	st := sb.Status()
	log.Info("attachment sandbox", "landlock", st.Landlock, "seccomp", st.Seccomp, "limits", st.Limits)
	if len(st.Missing) > 0 {
		log.Warn("attachment sandbox: tools missing, their formats are not extracted", "missing", strings.Join(st.Missing, ", "))
	}
	if strings.HasPrefix(st.Landlock, "unavailable") || strings.HasPrefix(st.Seccomp, "unavailable") {
		log.Warn("attachment sandbox: the kernel does not enforce every restriction", "landlock", st.Landlock, "seccomp", st.Seccomp)
	}
	if err := sb.Check(ctx); err != nil {
		return nil, fmt.Errorf("the attachment sandbox does not work (%w): fix it, or set [reader.extract] off = true to index attachments by name only", err)
	}
	return sb, nil
}

// dialReceiver connects to the receiver's control socket, waiting a while
// for a receiver that is starting.
func dialReceiver(ctx context.Context, sock string) (*api.Client, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := api.Dial(sock)
		if !errors.Is(err, api.ErrNoDaemon) || time.Now().After(deadline) {
			if errors.Is(err, api.ErrNoDaemon) {
				return nil, fmt.Errorf("no receiver answers on %s: start `sealmail serve` first", sock)
			}
			return c, err
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// pollEvery is how often the command line asks a job or the reader for
// progress.
const pollEvery = 200 * time.Millisecond

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
