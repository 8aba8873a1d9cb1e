// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/smtpd"
)

type serveOptions struct {
	config         string
	smtp           string
	smtps          string
	journalSources string
	metrics        string
	pprof          bool
	allowUsers     []string
}

func newServeCommand(g *globalOptions) *cobra.Command {
	o := &serveOptions{}
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the archive daemon: SMTP receiver and control socket",
		Long: `Run the daemon: receive journaled mail over SMTP (STARTTLS, optionally
implicit TLS) and serve the control socket DIR/control.sock to the CLI and
to the reader service (` + "`sealmail access`" + `, which runs as one of
control.allow_users). The receiver holds no index and no identity: it
cannot read what it stores.

Settings come from --config (TOML; see packaging/sealmail.toml); flags,
--log-level included, override the file. Without a certificate in the
configuration a self-signed one is created under DIR/tls on first start.
SIGTERM or SIGINT stops accepting, lets messages in flight finish, and exits
0. SIGHUP reloads the TLS certificate and key files.

The daemon refuses to start when the data directory is not mode 0700, when a
key file is readable by group or others, and when SMTP listens beyond
loopback while neither smtp.allow_networks nor smtp.users with
smtp.require_auth restricts who may deliver.` + exitCodes(", an invalid configuration (every problem is named)"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), g, o, cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&o.config, "config", "", "configuration file (TOML)")
	c.Flags().StringVar(&o.smtp, "smtp", "", "SMTP listen address with STARTTLS (default 0.0.0.0:25)")
	c.Flags().StringVar(&o.smtps, "smtps", "", "implicit-TLS SMTP listen address (default: off)")
	c.Flags().StringVar(&o.journalSources, "journal-sources", "", "client networks whose journal reports are trusted, CIDR[,CIDR…] (default loopback)")
	c.Flags().StringVar(&o.metrics, "metrics", "", "serve Prometheus /metrics, /healthz and /readyz on HOST:PORT (default: off; loopback unless metrics.allow_remote)")
	c.Flags().BoolVar(&o.pprof, "pprof", false, "serve Go runtime profiles on the control socket under /debug/pprof/ (each use audited)")
	c.Flags().StringArrayVar(&o.allowUsers, "control-allow-user", nil, "a service user the control socket serves (the reader's, e.g. sealmail-access); repeatable; adds to control.allow_users")
	return c
}

// newLogger returns the diagnostics logger: --log-level, else the
// configuration's log.level, else info; to the journal when systemd
// connected stderr to it, else text (or log.format = "json") on stderr.
func newLogger(g *globalOptions, cfg *Config) *slog.Logger {
	level := g.logLevel
	format := "text"
	if cfg != nil {
		if cfg.Log.Level != "" && !g.logLevelSet {
			level = cfg.Log.Level
		}
		if cfg.Log.Format != "" {
			format = cfg.Log.Format
		}
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	// Run by systemd with stderr going to the journal: native records,
	// every attribute a field of its own.
	if journalStream(os.Stderr) {
		if h, err := newJournalHandler(l, os.Stderr); err == nil {
			return slog.New(h)
		}
	}
	ho := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, ho))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, ho))
}

func runServe(ctx context.Context, g *globalOptions, o *serveOptions, errOut io.Writer) (err error) {
	cfg, err := loadConfig(o.config)
	if err != nil {
		return usageError{err}
	}
	if o.smtp != "" {
		cfg.SMTP.Listen = o.smtp
	}
	if o.smtps != "" {
		cfg.SMTP.ListenTLS = o.smtps
	}
	if o.journalSources != "" {
		if cfg.Journal.Sources, err = parseNetworks(o.journalSources); err != nil {
			return usageError{fmt.Errorf("--journal-sources: %w", err)}
		}
	}
	if o.metrics != "" {
		cfg.Metrics.Listen = o.metrics
	}
	cfg.Control.AllowUsers = append(cfg.Control.AllowUsers, o.allowUsers...)
	if cfg.SMTP.Listen == "" {
		cfg.SMTP.Listen = "0.0.0.0:25"
	}
	if err := cfg.validated(); err != nil {
		return err
	}
	log := newLogger(g, cfg)
	warnInsecure(log, cfg, os.Getuid(), os.Getenv("INVOCATION_ID") != "")
	keys := keyFiles(g.data)
	if cfg.SMTP.KeyFile != "" {
		keys = append(keys, cfg.SMTP.KeyFile)
	} else {
		keys = append(keys, filepath.Join(g.data, "tls", "key.pem"))
	}
	if err := checkPermissions(g.data, keys); err != nil {
		return usageError{fmt.Errorf("unsafe permissions:\n  %w", err)}
	}

	var minFree int64 // default
	if cfg.Storage.MinFree != nil {
		if minFree = int64(*cfg.Storage.MinFree); minFree == 0 {
			minFree = -1 // "0" turns the check off
		}
	}
	// The metrics exist before the archive opens (the store reports its
	// commits to them); their gauges read a and srv once serving.
	var (
		a   *archive.Archive
		srv *smtpd.Server
		mx  *metrics
	)
	var storeOpts archive.Options
	if cfg.Metrics.Listen != "" {
		mx = newMetrics(func() (archive.Gauges, error) { return a.Gauges() },
			func() smtpd.Stats { return srv.Stats() }, journalTrusted(cfg),
			expectSources(cfg), func() []archive.JournalGap { return a.JournalGaps() },
			func() error { return a.Ready() }, log)
		storeOpts.Store.OnCommitDone = mx.observeCommit
		storeOpts.Store.OnSegmentSync = mx.observeSync
	}
	a, err = archive.Open(g.data, archive.Options{
		Store:                   storeOpts.Store,
		Logger:                  log,
		SealSize:                int64(cfg.Storage.SealSize),
		JournalSources:          prefixes(cfg.Journal.Sources),
		JournalUsers:            cfg.Journal.Users,
		EncodedRecipientDomains: cfg.Journal.EncodedRecipientDomains,
		MinFreeBytes:            minFree,
		Retention:               cfg.Retention,
		CheckpointEvery:         cfg.Audit.CheckpointEvery,
		CheckpointInterval:      time.Duration(cfg.Audit.CheckpointInterval),
		JournalExpect:           cfg.journalExpectations(),
	})
	if errors.Is(err, archive.ErrLocked) {
		return fmt.Errorf("the archive at %s is already open in another sealmail process (is the daemon running? see `sealmail status --data %s`)", g.data, g.data)
	}
	if err != nil {
		return err
	}
	defer closeArchive(a, &err)

	dctx := archive.WithActor(context.Background(), "daemon")
	smtpOpts, err := smtpOptions(g, cfg, log)
	if err != nil {
		return err
	}
	smtpOpts.OnAuth = func(user, remote string, ok bool) {
		if err := a.LogAuth(archive.WithActor(dctx, "smtpd"), user, remote, ok); err != nil {
			log.Error("audit authentication", "err", err)
		}
	}
	smtpOpts.OnAuthThrottled = func(ip string, refused int) {
		// One entry per burst, not per guess.
		if err := a.LogAuthThrottled(archive.WithActor(dctx, "smtpd"), ip, refused); err != nil {
			log.Error("audit authentication", "err", err)
		}
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// GC harder as the heap nears the in-flight budget plus the
		// rest of the daemon, so that RSS follows the budget.
		debug.SetMemoryLimit(smtpOpts.MaxInFlightBytes + memoryOverhead)
		if os.Getenv("GOGC") == "" {
			// Under the limit, collect less often: ingest allocates per
			// message, and the GC cost about a tenth of the daemon's CPU
			// per message at GOGC 100 (docs/benchmarks.md).
			debug.SetGCPercent(gcPercent)
		}
	}
	var ing smtpd.Ingester = a
	if mx != nil {
		ing = mx.ingester(a)
		smtpOpts.OnReply = mx.reply
	}
	srv = smtpd.New(ing, smtpOpts)
	// SIGHUP reloads the certificate; once a day its expiry is checked
	// again. The goroutine ends with serve (stopBG, waited for below).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stopBG := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		daily := time.NewTicker(24 * time.Hour)
		defer daily.Stop()
		minute := time.NewTicker(time.Minute)
		defer minute.Stop()
		for {
			select {
			case <-minute.C:
				if _, err := a.CheckJournalGaps(dctx); err != nil {
					log.Error("journal gap check", "err", err)
				}
			case <-hup:
				reloadCertificate(srv, cfg, g, log)
			case <-daily.C:
				srv.CheckCertificate()
			case <-stopBG:
				return
			}
		}
	}()
	defer func() { close(stopBG); bg.Wait() }()

	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	l, err := net.Listen("tcp", cfg.SMTP.Listen)
	if err != nil {
		return fmt.Errorf("smtp listen: %w (is another mail server on %s? choose another with --smtp)", err, cfg.SMTP.Listen)
	}
	listeners = append(listeners, l)
	addrs := []string{"smtp " + l.Addr().String()}
	var ltls net.Listener
	if cfg.SMTP.ListenTLS != "" {
		if ltls, err = net.Listen("tcp", cfg.SMTP.ListenTLS); err != nil {
			closeAll()
			return fmt.Errorf("smtps listen: %w", err)
		}
		listeners = append(listeners, ltls)
		addrs = append(addrs, "smtps "+ltls.Addr().String())
	}
	sockPath := filepath.Join(g.data, api.SocketName)
	lctl, err := api.Listen(sockPath)
	if err != nil {
		closeAll()
		return err
	}
	addrs = append(addrs, "control "+sockPath)
	var msrv *http.Server
	var lm net.Listener
	if mx != nil {
		if msrv, lm, err = serveMetrics(cfg.Metrics.Listen, metricsHandler(mx.reg, a.Ready)); err != nil {
			closeAll()
			lctl.Close()
			return err
		}
		addrs = append(addrs, "metrics "+lm.Addr().String())
	}
	a.SetListeners(addrs)
	services, err := serviceUIDs(cfg.Control.AllowUsers, log)
	if err != nil {
		closeAll()
		lctl.Close()
		return usageError{err}
	}
	var lsvc net.Listener // the service users' socket (control.socket)
	if cfg.Control.Socket != "" {
		if lsvc, err = api.ListenMode(cfg.Control.Socket, 0o660); err != nil {
			closeAll()
			lctl.Close()
			return err
		}
		addrs = append(addrs, "control "+cfg.Control.Socket)
	}
	var offsiteOpts *archive.OffsiteOptions
	if cfg.Offsite.Enabled() {
		oo, err := cfg.Offsite.options()
		if err != nil {
			closeAll()
			lctl.Close()
			return err
		}
		offsiteOpts = &oo
	}
	ctl := api.NewServer(a, api.Options{Logger: log, Pprof: o.pprof, ServiceUIDs: services, Offsite: offsiteOpts})

	var wg sync.WaitGroup
	errc := make(chan error, 4)
	serve := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	serve("smtp", func() error { return srv.Serve(l) })
	if ltls != nil {
		serve("smtps", func() error { return srv.ServeTLS(ltls) })
	}
	serve("control socket", func() error { return ctl.Serve(lctl) })
	if lsvc != nil {
		serve("service control socket", func() error { return ctl.Serve(lsvc) })
	}
	if msrv != nil {
		serve("metrics", func() error {
			if err := msrv.Serve(lm); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	// The start and the configuration in force are audited before anything
	// else. On a full disk the daemon starts all the same (senders get 4xx
	// until space is free, README "Disk full") and audits them once it can.
	startLogged := false
	logStart := func() error {
		if !startLogged {
			if err := a.LogDaemonStart(dctx, version, os.Getpid(), addrs); err != nil {
				return err
			}
			startLogged = true
		}
		return a.LogConfig(dctx, cfg.redacted())
	}
	rctx, stopRetry := context.WithCancel(ctx)
	defer stopRetry()
	if err := logStart(); err != nil {
		if !errors.Is(err, sealmail.ErrStorageFull) {
			return err
		}
		log.Error("storage full: the daemon's start is audited once space is free; senders get 4xx until then", "err", err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-rctx.Done():
					return
				case <-t.C:
					if err := logStart(); err == nil {
						log.Info("daemon start audited")
						return
					}
				}
			}
		}()
	}
	log.Info("sealmail serving", "listeners", strings.Join(addrs, ", "), "data", g.data, "version", version)
	// The scrubber re-reads the sealed segments in the background; it
	// stops before the archive closes.
	scrubCtx, stopScrub := context.WithCancel(dctx)
	var scrubbing sync.WaitGroup
	if so, ok := cfg.scrubOptions(); ok {
		scrubbing.Go(func() {
			if err := a.Scrub(scrubCtx, so); !errors.Is(err, context.Canceled) {
				log.Error("scrub stopped", "err", err)
			}
		})
	}
	defer func() { stopScrub(); scrubbing.Wait() }()
	if offsiteOpts != nil {
		scrubbing.Go(func() { offsiteLoop(scrubCtx, a, *offsiteOpts, cfg.Offsite.every(), log) })
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
		log.Error("listener failed; shutting down", "err", runErr)
	}
	// Shutdown order: stop SMTP (in-flight messages finish and get their
	// 250), then the control socket, then the store (deferred Close).
	timeout := time.Duration(cfg.Storage.ShutdownT)
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("smtp shutdown", "err", err)
	}
	if err := ctl.Shutdown(sctx); err != nil {
		log.Warn("control socket shutdown", "err", err)
	}
	if msrv != nil {
		if err := msrv.Shutdown(sctx); err != nil {
			log.Warn("metrics shutdown", "err", err)
		}
	}
	stopRetry()
	stopScrub()
	scrubbing.Wait()
	wg.Wait()
	os.Remove(sockPath)
	if lsvc != nil {
		os.Remove(cfg.Control.Socket)
	}
	reason := "signal"
	if runErr != nil {
		reason = runErr.Error()
	}
	if err := a.LogDaemonStop(dctx, reason); err != nil {
		log.Error("audit daemon stop", "err", err)
	}
	if err := a.Close(); err != nil {
		return fmt.Errorf("close archive: %w", err)
	}
	log.Info("stopped")
	return runErr
}

func smtpOptions(g *globalOptions, cfg *Config, log *slog.Logger) (smtpd.Options, error) {
	c := cfg.SMTP
	host := c.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	certFile, keyFile := certFiles(cfg, g)
	if c.CertFile == "" {
		if err := os.MkdirAll(filepath.Join(g.data, "tls"), 0o700); err != nil {
			return smtpd.Options{}, err
		}
	}
	cert, err := smtpd.LoadOrCreateCertificate(certFile, keyFile, host)
	if err != nil {
		return smtpd.Options{}, fmt.Errorf("tls certificate: %w", err)
	}
	inFlight := int64(c.MaxInFlight)
	if inFlight == 0 {
		inFlight = smtpd.DefaultMaxInFlightBytes
	}
	// Reserved slots, no per-address cap: the journaling sources (default
	// loopback, as the archive's) and the networks explicitly allowed.
	trusted := journalTrusted(cfg)
	trusted = append(trusted, prefixes(c.AllowNetworks)...)
	var auth map[string]smtpd.Credential
	if len(c.Users) > 0 {
		auth = make(map[string]smtpd.Credential, len(c.Users))
		for u, h := range c.Users {
			auth[u] = smtpd.BcryptHash(h)
		}
	}
	return smtpd.Options{
		Hostname:         host,
		TLSConfig:        &tls.Config{Certificates: []tls.Certificate{cert}},
		RequireTLS:       c.RequireTLS,
		MaxMessageBytes:  int64(c.MaxMessageSize),
		MaxRecipients:    c.MaxRecipients,
		MaxConnections:   c.MaxConnections,
		CommandTimeout:   time.Duration(c.CommandTimeout),
		DataTimeout:      time.Duration(c.DataTimeout),
		AllowedNetworks:  prefixes(c.AllowNetworks),
		AcceptRecipients: c.AcceptRecipients,
		Auth:             auth,
		RequireAuth:      c.RequireAuth,
		Logger:           log,

		MaxCommandLineBytes: int(c.MaxCommandLine),
		MaxInFlightBytes:    inFlight,
		ReservedConnections: c.ReservedConnections,
		TrustedNetworks:     trusted,
		MaxConnectionsPerIP: c.MaxConnectionsPerIP,
		MaxSessionTime:      time.Duration(c.MaxSessionTime),
		MaxIdleCommands:     c.MaxIdleCommands,
		AuthFailuresPerIP:   c.AuthFailuresPerIP,
		AuthFailuresPerUser: c.AuthFailuresPerUser,
	}, nil
}

// journalTrusted returns the journaling source networks, loopback by
// default as the archive's.
func journalTrusted(cfg *Config) []netip.Prefix {
	if len(cfg.Journal.Sources) == 0 {
		return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	return prefixes(cfg.Journal.Sources)
}

// expectSources names the [[journal.expect]] sources as the archive does.
func expectSources(cfg *Config) []string {
	var out []string
	for _, e := range cfg.journalExpectations() {
		out = append(out, e.Source.String())
	}
	return out
}

// gcPercent is the daemon's GOGC unless the environment sets one.
const gcPercent = 400

// memoryOverhead is what the daemon needs besides messages in flight
// (catalog, connections), for its soft memory limit.
const memoryOverhead = 128 << 20

// serviceUIDs resolves control.allow_users; a user that does not exist
// is left out with a warning (the package creates sealmail-access).
func serviceUIDs(names []string, log *slog.Logger) ([]uint32, error) {
	var out []uint32
	for _, n := range names {
		u, err := user.Lookup(n)
		if err != nil {
			log.Warn("control.allow_users: no such user: it cannot use the control socket", "user", n, "err", err)
			continue
		}
		id, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("control.allow_users: %s: uid %q", n, u.Uid)
		}
		out = append(out, uint32(id))
	}
	return out, nil
}

// certFiles returns the TLS certificate and key files in use.
func certFiles(cfg *Config, g *globalOptions) (certFile, keyFile string) {
	if cfg.SMTP.CertFile != "" {
		return cfg.SMTP.CertFile, cfg.SMTP.KeyFile
	}
	return filepath.Join(g.data, "tls", "cert.pem"), filepath.Join(g.data, "tls", "key.pem")
}

// reloadCertificate loads the certificate files again (SIGHUP) and serves
// them to new connections; on an error the old certificate stays.
func reloadCertificate(srv *smtpd.Server, cfg *Config, g *globalOptions, log *slog.Logger) {
	certFile, keyFile := certFiles(cfg, g)
	if err := checkPermissions(g.data, []string{keyFile}); err != nil {
		log.Error("SIGHUP: certificate not reloaded", "err", err)
		return
	}
	cert, err := smtpd.LoadCertificate(certFile, keyFile)
	if err == nil {
		err = srv.SetCertificate(cert)
	}
	if err != nil {
		log.Error("SIGHUP: certificate not reloaded, the old one stays", "err", err)
		return
	}
	log.Info("SIGHUP: certificate reloaded", "cert_file", certFile)
}

// offsiteLoop syncs the offsite copy at the start, within a minute after
// each seal (the count of sealed segments grew) and every interval, until
// ctx ends. A failed sync is logged (and audited by the archive) and tried
// again at the next occasion.
func offsiteLoop(ctx context.Context, a *archive.Archive, o archive.OffsiteOptions, every time.Duration, log *slog.Logger) {
	minute := time.NewTicker(time.Minute)
	defer minute.Stop()
	var sealed int
	last := time.Time{}
	for {
		g, err := a.Gauges()
		due := time.Since(last) >= every || err == nil && g.Sealed != sealed
		if due {
			rep, err := a.OffsiteSync(ctx, o)
			last, sealed = time.Now(), g.Sealed // a failure waits for the next interval
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				log.Error("offsite sync failed; the next one tries again", "err", err)
			default:
				log.Info("offsite sync", "objects", rep.Objects, "uploaded", rep.Uploaded, "bytes", rep.UploadedBytes,
					"extended", rep.Extended, "removed", rep.Removed)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-minute.C:
		}
	}
}
