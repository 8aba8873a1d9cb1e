// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/access"
)

// userOptions are the flags of `sealmail user`.
type userOptions struct {
	state         string
	role          string
	addresses     []string
	scope         string
	expires       string
	passwordStdin bool
	asJSON        bool
}

func newUserCommand(g *globalOptions) *cobra.Command {
	o := &userOptions{}
	c := &cobra.Command{
		Use:   "user",
		Short: "Manage the reader's users (people who sign in over HTTPS)",
		Long: `Users sign in to the reader (sealmail's HTTPS side) with a password and a
TOTP code from an authenticator app, or a recovery code. Each has one role:
admin (users, configuration, status, audit log; no message content),
auditor (read-only search, read, export; optionally a --scope and --expires),
officer (holds, exports, erasure requests, policy), user (only messages of
their --address). See docs/access.md.

These commands work on the reader's state directory (--state) directly, so
the reader must not be running. Every change is kept in the state's audit
outbox, in the same transaction as the change; the reader sends the outbox
to the receiver's audit log at its next start.
Exit codes: 0 success, 1 error, 2 bad usage.`,
	}
	def := os.Getenv("SEALMAIL_STATE")
	if def == "" {
		def = "/var/lib/sealmail-access"
	}
	c.PersistentFlags().StringVar(&o.state, "state", def, "the reader's state directory (env SEALMAIL_STATE)")

	add := &cobra.Command{
		Use:   "add NAME --role admin|auditor|officer|user [--address A]...",
		Short: "Add a user; prints the password (if generated), TOTP URI and recovery codes once",
		Long: "Add a user of the reader. The password (generated unless --password-stdin), the\nTOTP URI (otpauth://…) and ten recovery codes are printed once." +
			exitCodes(", an invalid name, role, address or date"),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			role, err := access.ParseRole(o.role)
			if err != nil {
				return usageError{err}
			}
			nu := access.NewUser{Name: args[0], Role: role, Addresses: o.addresses, Scope: o.scope}
			if nu.Expires, err = parseExpires(o.expires); err != nil {
				return usageError{err}
			}
			if nu.Password, err = readPassword(cmd.InOrStdin(), o.passwordStdin); err != nil {
				return err
			}
			return withState(cmd, o, func(st *access.State) error {
				cred, err := st.AddUser(cmd.Context(), cliActor(), nu)
				if err != nil {
					return userError("user add", err)
				}
				return printCredentials(cmd.OutOrStdout(), cred, "added", o.asJSON)
			})
		},
	}
	add.Flags().StringVar(&o.role, "role", "", "admin, auditor, officer or user (required)")
	add.Flags().StringArrayVar(&o.addresses, "address", nil, "a mail address of the user (repeatable; required for role user)")
	add.Flags().StringVar(&o.scope, "scope", "", "auditors: only messages matching this search query")
	add.Flags().StringVar(&o.expires, "expires", "", "auditors: access ends after this day (YYYY-MM-DD, UTC) or at this RFC 3339 time")

	reset := &cobra.Command{
		Use:   "reset NAME",
		Short: "Give a user a new password, TOTP secret and recovery codes; ends their sessions",
		Long:  "Give a user a new password, TOTP secret and recovery codes, printed once; the\nuser's sessions end." + userExitCodes,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd.InOrStdin(), o.passwordStdin)
			if err != nil {
				return err
			}
			return withState(cmd, o, func(st *access.State) error {
				cred, err := st.ResetUser(cmd.Context(), cliActor(), args[0], pw)
				if err != nil {
					return userError("user reset", err)
				}
				return printCredentials(cmd.OutOrStdout(), cred, "reset", o.asJSON)
			})
		},
	}
	for _, sub := range []*cobra.Command{add, reset} {
		sub.Flags().BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from standard input (else one is generated)")
		sub.Flags().BoolVar(&o.asJSON, "json", false, "print one JSON object (with \"totp_uri\" and \"recovery_codes\")")
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Long:  "List the reader's users: name, role, addresses, state." + exitCodes(""),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withState(cmd, o, func(st *access.State) error {
				users, err := st.Users(cmd.Context())
				if err != nil {
					return err
				}
				return printUsers(cmd.OutOrStdout(), users, o.asJSON)
			})
		},
	}
	list.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")

	disable := &cobra.Command{
		Use:   "disable NAME",
		Short: "Disable a user and end their sessions",
		Long:  "Disable a user and end their sessions; the last enabled admin cannot be disabled." + userExitCodes,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withState(cmd, o, func(st *access.State) error {
				if err := st.DisableUser(cmd.Context(), cliActor(), args[0]); err != nil {
					return userError("user disable", err)
				}
				if o.asJSON {
					return printJSON(cmd.OutOrStdout(), userState{User: args[0], Disabled: true})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s disabled; their sessions have ended\n", args[0])
				return nil
			})
		},
	}
	enable := &cobra.Command{
		Use:   "enable NAME",
		Short: "Enable a disabled user",
		Long:  "Enable a disabled user." + userExitCodes,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withState(cmd, o, func(st *access.State) error {
				if err := st.EnableUser(cmd.Context(), cliActor(), args[0]); err != nil {
					return userError("user enable", err)
				}
				if o.asJSON {
					return printJSON(cmd.OutOrStdout(), userState{User: args[0], Disabled: false})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s enabled\n", args[0])
				return nil
			})
		},
	}
	for _, sub := range []*cobra.Command{disable, enable} {
		sub.Flags().BoolVar(&o.asJSON, "json", false, `print {"user": NAME, "disabled": BOOL}`)
	}

	c.AddCommand(add, list, disable, enable, reset)
	return c
}

// userState is the --json output of user disable and enable.
type userState struct {
	User     string `json:"user"`
	Disabled bool   `json:"disabled"`
}

// withState opens the state directory for fn. Audit events go to the
// state's outbox: the receiver's audit log gets them when the reader next
// starts (docs/access.md, "Audit"), so that a change and its audit record
// are one transaction whether or not the receiver runs.
func withState(cmd *cobra.Command, o *userOptions, fn func(*access.State) error) error {
	st, err := access.OpenState(o.state, access.StateOptions{AuditOutbox: true})
	if err != nil {
		return err
	}
	err = fn(st)
	return errors.Join(err, st.Close())
}

// userError marks the caller's mistakes as usage errors.
func userError(op string, err error) error {
	switch {
	case errors.Is(err, access.ErrInvalid):
		return usageError{fmt.Errorf("%s: %w", op, err)}
	case errors.Is(err, access.ErrNoUser):
		return exitCodeError{code: exitNotFound, err: fmt.Errorf("%s: %w", op, err)}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// userExitCodes is the exit code paragraph of the user commands that name
// a user.
var userExitCodes = exitCodes(", an invalid name, role, address or date", "4 no such user")

// cliActor names who runs the command, for the audit events.
func cliActor() access.Actor {
	name := "?"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return access.Actor{Remote: fmt.Sprintf("cli:%s(uid %d)", name, os.Getuid())}
}

// readPassword reads a password from r if asked to (one line; the line end
// is dropped), or returns "" so that one is generated.
func readPassword(r io.Reader, fromStdin bool) (string, error) {
	if !fromStdin {
		return "", nil
	}
	b, err := io.ReadAll(io.LimitReader(r, access.MaxPasswordLen+3))
	if err != nil {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return "", usageError{errors.New("--password-stdin: standard input is empty")}
	}
	return pw, nil
}

// parseExpires reads --expires: a day (access ends when it is over, UTC) or
// an RFC 3339 time.
func parseExpires(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return d.AddDate(0, 0, 1), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--expires %q: want YYYY-MM-DD or an RFC 3339 time", s)
	}
	return t, nil
}

func printCredentials(w io.Writer, c access.Credentials, what string, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(c)
	}
	fmt.Fprintf(w, "user %s %s (role %s)\n", c.User.Name, what, c.User.Role)
	if c.Generated {
		fmt.Fprintf(w, "password: %s\n  (shown once; hand it over securely)\n", c.Password)
	}
	fmt.Fprintf(w, "TOTP: add to an authenticator app (as a QR code or typed):\n  %s\n  secret: %s\n", c.TOTPURI, c.TOTPSecret)
	fmt.Fprintf(w, "recovery codes (each works once instead of a TOTP code; keep them offline):\n")
	for _, rc := range c.RecoveryCodes {
		fmt.Fprintf(w, "  %s\n", rc)
	}
	return nil
}

func printUsers(w io.Writer, users []access.User, asJSON bool) error {
	if asJSON {
		if users == nil {
			users = []access.User{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(users)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tSTATUS\tADDRESSES\tEXPIRES\tRECOVERY CODES")
	for _, u := range users {
		status, expires := "enabled", "-"
		if u.Disabled {
			status = "disabled"
		}
		if !u.Expires.IsZero() {
			expires = u.Expires.Format(time.RFC3339)
		}
		addrs := strings.Join(u.Addresses, ",")
		if addrs == "" {
			addrs = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", u.Name, u.Role, status, addrs, expires, u.RecoveryCodesLeft)
	}
	return tw.Flush()
}
