// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
)

type importOptions struct {
	mbox, maildir, eml, pst, imap string
	mboxFormat                    string
	owner                         string
	config                        string
	maxSize                       string
	passwordFile                  string
	imapCA                        string
	folders                       []string
	workers                       int
	asJSON                        bool
}

func (o *importOptions) addFlags(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&o.mbox, "mbox", "", "import an mbox file (mboxrd or mboxo)")
	f.StringVar(&o.maildir, "maildir", "", "import a Maildir tree (cur/new, Maildir++ folders)")
	f.StringVar(&o.eml, "eml", "", "import a directory or a .zip of .eml files")
	f.StringVar(&o.pst, "pst", "", "import an Outlook PST file (Unicode or ANSI)")
	f.StringVar(&o.imap, "imap", "", "import from an IMAP server: imaps://user@host[:port]/[folder]")
	f.StringVar(&o.mboxFormat, "mbox-format", "auto", "mbox variant: auto, mboxrd or mboxo (docs/import.md)")
	f.StringVar(&o.owner, "owner", "", "address of the mailbox the mail comes from (user-scoped access)")
	f.StringVar(&o.config, "config", "", "configuration file for retention rules, when no daemon runs (the daemon uses its own)")
	f.StringVar(&o.maxSize, "max-message-size", "64M", "refuse messages larger than this")
	f.StringVar(&o.passwordFile, "password-file", "", "IMAP password from this file ('-': standard input)")
	f.StringSliceVar(&o.folders, "folder", nil, "IMAP folders to import (repeat; default all, or the URL's)")
	f.StringVar(&o.imapCA, "imap-ca", "", "PEM file of the CA that signed the IMAP server's certificate (default: system roots)")
	f.IntVar(&o.workers, "workers", 16, "messages stored in parallel (group commit shares the fsyncs)")
	f.BoolVar(&o.asJSON, "json", false, "print the summary as JSON")
}

func newImportCommand(g *globalOptions) *cobra.Command {
	o := &importOptions{}
	c := &cobra.Command{
		Use:   "import --mbox FILE|--maildir DIR|--eml DIR|FILE.zip|--pst FILE|--imap URL [--owner ADDRESS]",
		Short: "Import existing mail (mbox, Maildir, EML, PST, IMAP) into the archive",
		Long: `Import mail that existed before journaling. Each message is stored byte-exact
(a PST message is rebuilt as RFC 5322), through dedup (mail already archived
gets one more receipt), with retention by the same rules, and with an
envelope that says it was imported: source, folder, owner, and the source's
received time apart from the import time.

A re-run skips what the same kind of source, owner and folder imported
before, so an interrupted import continues where it stopped. A message that
cannot be read or is too large is reported and skipped. Through the daemon
when it runs, else the archive is opened directly (with retention rules
from --config). See docs/import.md. Messages refused (too large, not mail,
unreadable) are counted in the summary; the run goes on. An interrupted run
(exit 130) continues where it stopped when run again.` + exitCodes(", a source that cannot be read as the format given"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImport(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr(), cmd.InOrStdin())
		},
	}
	o.addFlags(c)
	return c
}

// importAPI is what import needs of the daemon's client or of an archive
// opened directly.
type importAPI interface {
	Import(ctx context.Context, src archive.ImportSource, m archive.ImportMessage) (archive.ImportResult, error)
	RecordImport(ctx context.Context, r archive.ImportRecord) error
	Close() error
}

// importSummary is what an import run did.
type importSummary struct {
	archive.ImportSource
	Daemon      bool           `json:"daemon"`
	Read        int            `json:"read"`
	Stored      int            `json:"stored"`
	Duplicate   int            `json:"duplicate"`
	Skipped     int            `json:"skipped"`
	Refused     int            `json:"refused"`
	Bytes       int64          `json:"bytes"`
	Reasons     map[string]int `json:"reasons,omitempty"`
	RefusedList []refusal      `json:"refused_messages,omitempty"`
	Seconds     float64        `json:"seconds"`
	Interrupted bool           `json:"interrupted,omitempty"`
}

type refusal struct {
	Folder   string `json:"folder,omitempty"`
	Position string `json:"position"`
	Reason   string `json:"reason"`
	Error    string `json:"error"`
}

// maxListedRefusals bounds the refusals kept for the summary; all are
// counted.
const maxListedRefusals = 1000

func runImport(ctx context.Context, g *globalOptions, o *importOptions, out, errOut io.Writer, in io.Reader) (err error) {
	var kinds []string
	for k, v := range map[string]string{"mbox": o.mbox, "maildir": o.maildir, "eml": o.eml, "pst": o.pst, "imap": o.imap} {
		if v != "" {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 1 {
		return usageError{errors.New("give exactly one source: --mbox, --maildir, --eml, --pst or --imap")}
	}
	if o.owner != "" {
		a, err := mail.ParseAddress(o.owner)
		if err != nil {
			return usageError{fmt.Errorf("--owner %q: %w", o.owner, err)}
		}
		o.owner = strings.ToLower(a.Address)
	}
	maxSize, err := sealmail.ParseSize(o.maxSize)
	if err != nil || maxSize <= 0 {
		return usageError{fmt.Errorf("--max-message-size %q: want a size such as 64M", o.maxSize)}
	}
	format, err := archive.ParseMboxFormat(o.mboxFormat)
	if err != nil {
		return usageError{err}
	}
	if o.workers < 1 {
		o.workers = 1
	}
	ropts := archive.ImportReaderOptions{MaxMessageBytes: maxSize}
	src := archive.ImportSource{Kind: kinds[0], Owner: o.owner}
	var r archive.ImportReader
	switch src.Kind {
	case "mbox":
		src.Source = absPath(o.mbox)
		if err := archive.CheckMbox(o.mbox); err != nil {
			return err
		}
		r, _, err = archive.OpenMbox(o.mbox, format, ropts)
	case "maildir":
		src.Source = absPath(o.maildir)
		r, err = archive.OpenMaildir(o.maildir, ropts)
	case "eml":
		src.Source = absPath(o.eml)
		r, err = archive.OpenEML(o.eml, ropts)
	case "pst":
		src.Source = absPath(o.pst)
		r, err = openPSTReader(o.pst, ropts)
	case "imap":
		var s string
		s, r, err = openIMAPReader(ctx, o, ropts, in)
		src.Source = s
	}
	if err != nil {
		return err
	}
	defer func() { _ = r.Close() }() // a reader: nothing to lose

	a, daemon, err := openForImport(ctx, g, o)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := a.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("import: close the archive: %w", cerr)
		}
	}()
	sum := &importSummary{ImportSource: src, Daemon: daemon, Reasons: map[string]int{}}
	if err := a.RecordImport(ctx, archive.ImportRecord{ImportSource: src, Phase: "start"}); err != nil {
		return fmt.Errorf("import: audit: %w", err)
	}
	start := time.Now()
	runErr := importAll(ctx, a, r, src, o.workers, sum, newProgress(errOut, r), errOut)
	sum.Seconds = time.Since(start).Seconds()
	phase := "end"
	if runErr != nil {
		phase, sum.Interrupted = "interrupted", true
	}
	// The end entry is written even when the run was interrupted (a fresh
	// context: ctx may be cancelled).
	rec := archive.ImportRecord{ImportSource: src, Phase: phase, Stored: sum.Stored, Duplicate: sum.Duplicate,
		Skipped: sum.Skipped, Refused: sum.Refused, Bytes: sum.Bytes, Reasons: sum.Reasons}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := a.RecordImport(actx, rec); err != nil && runErr == nil {
		runErr = fmt.Errorf("import: audit: %w", err)
	}
	if o.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else {
		printImportSummary(out, sum)
	}
	return runErr
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// openForImport talks to the daemon when it runs, else opens the archive
// for writing with the retention rules of --config (as connect does,
// read-only, for the other commands).
func openForImport(ctx context.Context, g *globalOptions, o *importOptions) (importAPI, bool, error) {
	sock := filepath.Join(g.data, api.SocketName)
	var retention *archive.RetentionPolicy
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := api.Dial(sock)
		if err == nil {
			return c, true, nil
		}
		if !errors.Is(err, api.ErrNoDaemon) {
			return nil, false, err
		}
		if retention == nil && o.config != "" {
			cfg, err := loadConfig(o.config)
			if err != nil {
				return nil, false, err
			}
			retention = cfg.Retention
		}
		a, err := archive.Open(g.data, archive.Options{Logger: newLogger(g, nil), Retention: retention, LockTimeout: 300 * time.Millisecond})
		if !errors.Is(err, archive.ErrLocked) {
			return a, false, err
		}
		if time.Now().After(deadline) {
			return nil, false, fmt.Errorf("the archive at %s is in use by another sealmail process, but no daemon answers on %s", g.data, sock)
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// refusalReason sorts a per-message error into the summary's reasons.
func refusalReason(err error) string {
	switch {
	case errors.Is(err, archive.ErrImportTooLarge):
		return "too large"
	case errors.Is(err, errEmptyMessage):
		return "empty"
	case errors.Is(err, archive.ErrNotMail):
		return "not mail"
	}
	return "unreadable"
}

var errEmptyMessage = errors.New("empty message")

// importAll reads r and stores its messages with workers in parallel. It
// stops at the first error that is not about one message (the archive
// failed, the source broke off, ctx ended).
func importAll(ctx context.Context, a importAPI, r archive.ImportReader, src archive.ImportSource, workers int,
	sum *importSummary, prog *progress, errOut io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	refuse := func(folder, pos string, err error) {
		mu.Lock()
		defer mu.Unlock()
		sum.Refused++
		reason := refusalReason(err)
		sum.Reasons[reason]++
		if len(sum.RefusedList) < maxListedRefusals {
			sum.RefusedList = append(sum.RefusedList, refusal{Folder: folder, Position: pos, Reason: reason, Error: err.Error()})
		}
		prog.clear()
		fmt.Fprintf(errOut, "sealmail: import: skipped %s: %v\n", strings.TrimSpace(folder+" "+pos), err)
	}
	msgs := make(chan *archive.ImportItem, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				res, err := a.Import(ctx, src, archive.ImportMessage{Raw: m.Raw, Folder: m.Folder, Received: m.Received})
				if err != nil {
					fail(fmt.Errorf("import %s %s: %w", m.Folder, m.Position, err))
					continue
				}
				mu.Lock()
				switch res.Outcome {
				case archive.ImportStored:
					sum.Stored++
				case archive.ImportDuplicate:
					sum.Duplicate++
				case archive.ImportSkipped:
					sum.Skipped++
				}
				sum.Bytes += int64(len(m.Raw))
				prog.update(sum)
				mu.Unlock()
			}
		}()
	}
	var readErr error
	for ctx.Err() == nil {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		var ie *archive.ImportItemError
		if errors.As(err, &ie) {
			mu.Lock()
			sum.Read++
			mu.Unlock()
			refuse(ie.Folder, ie.Position, ie.Err)
			continue
		}
		if err != nil {
			readErr = err
			break
		}
		mu.Lock()
		sum.Read++
		mu.Unlock()
		if len(m.Raw) == 0 {
			refuse(m.Folder, m.Position, errEmptyMessage)
			continue
		}
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	}
	close(msgs)
	wg.Wait()
	prog.clear()
	if firstErr != nil {
		return firstErr
	}
	if readErr != nil {
		return readErr
	}
	return ctx.Err()
}

func printImportSummary(w io.Writer, s *importSummary) {
	via := "archive opened directly"
	if s.Daemon {
		via = "through the daemon"
	}
	owner := ""
	if s.Owner != "" {
		owner = " for " + s.Owner
	}
	state := "imported"
	if s.Interrupted {
		state = "interrupted (run the same command again to continue)"
	}
	fmt.Fprintf(w, "%s %s %s%s (%s): %d messages (%s) read in %.1fs\n", state, s.Kind, s.Source, owner, via, s.Read, importBytes(s.Bytes), s.Seconds)
	fmt.Fprintf(w, "  stored     %d (new messages)\n", s.Stored)
	fmt.Fprintf(w, "  duplicate  %d (already archived: one more receipt)\n", s.Duplicate)
	fmt.Fprintf(w, "  skipped    %d (imported from this mailbox before)\n", s.Skipped)
	fmt.Fprintf(w, "  refused    %d\n", s.Refused)
	reasons := make([]string, 0, len(s.Reasons))
	for k := range s.Reasons {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	for _, k := range reasons {
		fmt.Fprintf(w, "    %-10s %d\n", k, s.Reasons[k])
	}
}

func importBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progresser is a reader that knows how far it got (mbox: bytes of the
// file; EML, PST: messages), for the ETA.
type progresser interface {
	Progress() (done, total int64)
}

// progress draws one status line on a terminal, at most every 500 ms.
type progress struct {
	w     io.Writer
	src   progresser
	start time.Time
	last  time.Time
	drawn bool
}

func newProgress(errOut io.Writer, r archive.ImportReader) *progress {
	f, ok := errOut.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	p := &progress{w: errOut, start: time.Now()}
	p.src, _ = r.(progresser)
	return p
}

// update redraws the line; the caller holds the summary's lock.
func (p *progress) update(s *importSummary) {
	if p == nil {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < 500*time.Millisecond {
		return
	}
	p.last = now
	el := now.Sub(p.start).Seconds()
	n := s.Stored + s.Duplicate + s.Skipped
	line := fmt.Sprintf("%d messages  %s  %.0f msg/s  %.1f MB/s", n, importBytes(s.Bytes), float64(n)/el, float64(s.Bytes)/el/1e6)
	if p.src != nil {
		if done, total := p.src.Progress(); total > 0 && done > 0 && done <= total {
			eta := time.Duration(el * float64(total-done) / float64(done) * float64(time.Second))
			line += fmt.Sprintf("  %.0f%%  ETA %s", 100*float64(done)/float64(total), eta.Round(time.Second))
		}
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
	p.drawn = true
}

func (p *progress) clear() {
	if p != nil && p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}
