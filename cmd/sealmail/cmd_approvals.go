// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/reader"
)

func newApprovalsCommand(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "approvals",
		Short: "List, approve and deny four-eyes requests (erasure, hold release, shortening retention)",
		Long: `Erasure, the release of a legal hold and shortening retention need a second
officer's approval unless [access.four_eyes] switches it off (docs/access.md,
"Four eyes"). ` + "`sealmail erase`, `hold release` and `policy apply`" + ` then file a
request instead of acting; an officer over HTTPS or root here approves or
denies it. Root on the host is one principal, "root": it cannot approve a
request root made, only another officer's, and an officer cannot approve
their own. An approved request is executed at once by the reader, as
things stand then: an erasure only of the approved messages the query
still matches, unchanged and unheld; a release only of the same hold; a
shortening only under the same retention rules. Every step is audited
(access.approval.*).`,
	}
	var state string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List four-eyes requests, newest first",
		Long: "List the requests (--state requested, approved, denied, expired, executed or\nfailed; default all).\n\n" +
			"--json prints one object per request and line: id, action, state, requester,\nrequester_role, reason, payload, requested, expires, decider, decided,\ndecision_comment, finished, error." +
			exitCodes(", an unknown state", noReaderCode),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withReader(g, func(c *reader.Client) error {
				list, err := c.Approvals(cmd.Context(), access.ApprovalState(state))
				if err != nil {
					return fmt.Errorf("approvals list: %w", err)
				}
				out := cmd.OutOrStdout()
				if asJSON {
					for _, a := range list {
						if err := printJSON(out, a); err != nil {
							return err
						}
					}
					return nil
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tACTION\tSTATE\tREQUESTER\tREQUESTED\tEXPIRES\tREASON")
				for _, a := range list {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Action, a.State, a.Requester,
						a.Requested.Format(time.RFC3339), a.Expires.Format(time.RFC3339), a.Reason)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&state, "state", "", "only requests in this state")
	list.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	var showJSON bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one four-eyes request with its payload",
		Long: "Print request ID as one JSON object (see `approvals list --help`); --json=false\nprints its state and reason instead." +
			exitCodes("", "4 no such request", noReaderCode),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseApprovalID(args[0])
			if err != nil {
				return err
			}
			return withReader(g, func(c *reader.Client) error {
				a, err := c.Approval(cmd.Context(), id)
				if err != nil {
					return fmt.Errorf("approvals show: %w", err)
				}
				if showJSON {
					return printJSON(cmd.OutOrStdout(), a)
				}
				printDecision(cmd.OutOrStdout(), *a)
				fmt.Fprintf(cmd.OutOrStdout(), "reason: %s\npayload: %s\n", a.Reason, a.Payload)
				return nil
			})
		},
	}
	show.Flags().BoolVar(&showJSON, "json", true, "print one JSON object (the default)")
	var comment string
	approve := &cobra.Command{
		Use:   "approve ID [--comment TEXT]",
		Short: "Approve another officer's request: the reader executes it at once",
		Long: "Approve request ID as root and have the reader execute it.\n\n--json prints the request as `approvals show` does, with \"result\": what the\nexecution did (an erasure's, a release's or a policy report)." +
			exitCodes(", a request that is not open (decided, expired)", "3 the request was approved but its execution failed (its error is shown)",
				"4 no such request", noReaderCode, "6 root's own request: another officer must approve it"),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseApprovalID(args[0])
			if err != nil {
				return err
			}
			return withReader(g, func(c *reader.Client) error {
				rep, err := c.Approve(cmd.Context(), id, comment)
				if err != nil {
					return decisionError("approve", err)
				}
				out := cmd.OutOrStdout()
				if asJSON {
					if err := printJSON(out, rep); err != nil {
						return err
					}
				} else {
					printDecision(out, rep.Approval)
				}
				if rep.State == access.StateFailed {
					return exitCodeError{exitProblems, fmt.Errorf("request %d was approved, its execution failed: %s", id, rep.Error)}
				}
				return nil
			})
		},
	}
	approve.Flags().StringVar(&comment, "comment", "", "why it is approved: kept in the audit log")
	approve.Flags().BoolVar(&asJSON, "json", false, "print the request and the result as one JSON object")
	var reason string
	deny := &cobra.Command{
		Use:   "deny ID --reason TEXT",
		Short: "Deny another officer's request",
		Long:  "Deny request ID as root, for the reason given (kept in the audit log)." + exitCodes(", a request that is not open", "4 no such request", noReaderCode, "6 root's own request"),
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseApprovalID(args[0])
			if err != nil {
				return err
			}
			if reason == "" {
				return usageError{errors.New("--reason is required")}
			}
			return withReader(g, func(c *reader.Client) error {
				a, err := c.Deny(cmd.Context(), id, reason)
				if err != nil {
					return decisionError("deny", err)
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), a)
				}
				printDecision(cmd.OutOrStdout(), *a)
				return nil
			})
		},
	}
	deny.Flags().StringVar(&reason, "reason", "", "why it is denied (required)")
	deny.Flags().BoolVar(&asJSON, "json", false, "print the request as one JSON object")
	c.AddCommand(list, show, approve, deny)
	return c
}

// exitSameOfficer: root asked to decide root's own four-eyes request.
const exitSameOfficer = 6

func parseApprovalID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, usageError{fmt.Errorf("request id %q: want a number (see `sealmail approvals list`)", s)}
	}
	return id, nil
}

// decisionError gives a refused decision its exit code.
func decisionError(op string, err error) error {
	if reader.IsPermission(err) {
		return exitCodeError{exitSameOfficer, fmt.Errorf("approvals %s: %w", op, err)}
	}
	return fmt.Errorf("approvals %s: %w", op, err)
}

func printDecision(out io.Writer, a access.Approval) {
	fmt.Fprintf(out, "request %d (%s by %s): %s\n", a.ID, a.Action, a.Requester, a.State)
	if a.Error != "" {
		fmt.Fprintf(out, "error: %s\n", a.Error)
	}
}

// printRequested says that a four-eyes request was filed instead of the act.
func printRequested(out io.Writer, a *access.Approval) {
	fmt.Fprintf(out, "four eyes: request %d (%s) filed; it needs another officer's approval until %s\n"+
		"  (an officer over HTTPS, or root: `sealmail approvals approve %d` if root did not ask)\n",
		a.ID, a.Action, a.Expires.Format(time.RFC3339), a.ID)
}
