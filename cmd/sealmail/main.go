// SPDX-License-Identifier: Apache-2.0

// Command sealmail is the email archive daemon and its command-line tool.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"
	_ "time/tzdata" // retention time zones (Europe/Berlin) also where /usr/share/zoneinfo is missing

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/archive"
)

// Exit codes, documented in the root command's help, in each command's
// help (see exitCodes) and in README.md.
const (
	exitOK    = 0
	exitError = 1
	// exitUsage: bad flags or arguments, a query that does not parse, an
	// invalid configuration: the caller must change the command.
	exitUsage = 2
	// exitProblems: the command ran and found problems (verify, audit
	// verify) or refused part of the request (erase).
	exitProblems = 3
	// exitNotFound: no such message (or it was deleted), no such hold.
	exitNotFound    = 4
	exitInterrupted = 130
	// exitNoReader (5, reader.go): the reader service does not answer or
	// is locked.
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// globalOptions are the flags every command takes.
type globalOptions struct {
	data     string
	reader   string // the reader service's socket (--reader)
	logLevel string
	// logLevelSet says that --log-level was given: it then wins over the
	// configuration file's log.level.
	logLevelSet bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// usageError marks errors in how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCodeError carries a specific exit code with its message.
type exitCodeError struct {
	code int
	err  error
}

func (e exitCodeError) Error() string { return e.err.Error() }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == extractChildArg {
		return runExtractChild(stdin, stdout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Who runs this command, for the audit log of an archive it opens
	// directly (through a daemon, the daemon names the socket's peer).
	name := "?"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	ctx = archive.WithActor(ctx, fmt.Sprintf("cli:%s(uid %d)", name, os.Getuid()))
	root := newRootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "sealmail: %v\n", err)
	return exitCode(ctx, err)
}

// exitCode maps an error to the exit code documented for it. Errors of the
// archive count by their [archive.Code], the same whether the archive was
// opened here or answered through the daemon's control socket.
func exitCode(ctx context.Context, err error) int {
	var ue usageError
	var ce exitCodeError
	switch {
	case errors.As(err, &ce):
		return ce.code
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return exitInterrupted
	}
	switch archive.AsError(err).Code {
	case archive.CodeInvalid:
		return exitUsage
	case archive.CodeNotFound, archive.CodeDeleted:
		return exitNotFound
	case archive.CodeLocked:
		return exitNoReader
	}
	return exitError
}

// exitCodes is the "Exit codes" paragraph of a command's help. usage adds
// to what exit code 2 covers; own are the command's further codes, each
// "N text".
func exitCodes(usage string, own ...string) string {
	var b strings.Builder
	b.WriteString("\n\nExit codes:\n  0    success\n  1    error\n  2    bad usage: flags, arguments" + usage + "\n")
	for _, o := range own {
		code, text, _ := strings.Cut(o, " ")
		fmt.Fprintf(&b, "  %-4s %s\n", code, text)
	}
	b.WriteString("  130  interrupted")
	return b.String()
}

// printJSON writes v as one line of JSON, the form of every --json output.
func printJSON(out io.Writer, v any) error { return json.NewEncoder(out).Encode(v) }

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "sealmail",
		Short: "sealmail is an email archive: it receives journaled mail over SMTP and keeps it byte-exact, encrypted and verifiable",
		Long: `sealmail is an email archive: mail servers journal every message to it over SMTP;
it stores each one byte-exact and age-encrypted for keys the operator holds.

Exit codes (each command's --help lists its own):
  0    success
  1    error
  2    bad usage: flags, arguments, a query that does not parse, an invalid
       configuration
  3    problems found (verify, audit verify) or part of a request refused
       (erase)
  4    not found: no such message (or it was deleted), no such hold
  5    no reader service answers (search, hold, export, purge, erase,
       reindex, policy apply need one: ` + "`sealmail access`" + `), or it is locked
  130  interrupted

Commands whose output is data take --json: one JSON object per line.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		g.logLevelSet = c.Flags().Changed("log-level")
		var l slog.Level
		if err := l.UnmarshalText([]byte(g.logLevel)); err != nil {
			return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)}
		}
		return nil
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see `%s --help`)", err, c.CommandPath())}
	})
	def := os.Getenv("SEALMAIL_DATA")
	if def == "" {
		def = "/var/lib/sealmail"
	}
	root.PersistentFlags().StringVar(&g.data, "data", def, "archive directory (env SEALMAIL_DATA)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.reader, "reader", "", "the reader service's socket (env SEALMAIL_READER; default STATEDIR/reader.sock)")
	root.AddCommand(
		newInitCommand(g),
		newServeCommand(g),
		newAccessCommand(g),
		newStatusCommand(g),
		newListCommand(g),
		newGetCommand(g),
		newSearchCommand(g),
		newReindexCommand(g),
		newExportCommand(g),
		newImportCommand(g),
		newHoldCommand(g),
		newPurgeCommand(g),
		newEraseCommand(g),
		newApprovalsCommand(g),
		newPolicyCommand(g),
		newVerifyCommand(g),
		newRecoverCommand(g),
		newBackupCommand(g),
		newRestoreCommand(g),
		newOffsiteCommand(g),
		newAuditCommand(g),
		newUserCommand(g),
		newGendocsCommand(),
	)
	return root
}
