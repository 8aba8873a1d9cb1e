// SPDX-License-Identifier: Apache-2.0

// Command sealmail is the email archive daemon and its command-line tool.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"syscall"
	_ "time/tzdata" // retention time zones (Europe/Berlin) also where /usr/share/zoneinfo is missing

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/archive"
)

// Exit codes, documented in the root command's help.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitProblems    = 3 // verify found problems
	exitInterrupted = 130
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// globalOptions are the flags every command takes.
type globalOptions struct {
	data     string
	logLevel string
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
	return exitError
}

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "sealmail",
		Short: "sealmail is an email archive: it receives journaled mail over SMTP and keeps it byte-exact, encrypted and verifiable",
		Long: `sealmail is an email archive: mail servers journal every message to it over SMTP;
it stores each one byte-exact and age-encrypted for keys the operator holds.

Exit codes: 0 success, 1 error, 2 bad usage, 3 verification found problems,
130 interrupted.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
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
	root.AddCommand(
		newInitCommand(g),
		newServeCommand(g),
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
		newPolicyCommand(g),
		newVerifyCommand(g),
		newAuditCommand(g),
		newUserCommand(g),
	)
	return root
}
