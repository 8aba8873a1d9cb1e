// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/reader"
)

func newPolicyCommand(g *globalOptions) *cobra.Command {
	c := &cobra.Command{Use: "policy", Short: "Apply retention rules to stored messages"}
	var identity string
	var asJSON, dryRun bool
	var reason string
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Re-evaluate the retention rules in force for every stored message",
		Long: `Changed retention rules apply to messages archived after the change. This
re-evaluates them for every stored message: the rules look at headers and
envelopes, which only the identity can decrypt, so the reader service
(` + "`sealmail access`" + `) decrypts each message and hands the receiver what the
rules need. Every change (old and new retain-until) is audited.
--dry-run shows what would change.

A change that shortens a retention (to an earlier date, from forever or
from none decided to a date) lets mail be deleted sooner: with four eyes
(on unless [access.four_eyes] retention_shorten = false) such changes are
withheld and one request asks another officer to approve them
(` + "`sealmail approvals`" + `); they are then made, re-evaluated, if the retention
rules are still those the request was made under (--reason says why the
rules changed, for the approver). The other changes are made at once.

--json prints one object: dry_run, evaluated (messages), changed (id, from,
to), withheld (the shortening changes not made), rules_sha256 (the rules
in force), approval (the request filed, if any).` + exitCodes("", noReaderCode),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withReader(g, func(c *reader.Client) error {
				rep, err := c.ApplyPolicyWith(cmd.Context(), reader.PolicyOptions{DryRun: dryRun, Reason: reason})
				if err != nil {
					return fmt.Errorf("policy apply: %w", err)
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return printJSON(out, rep)
				}
				verb := "changed"
				if dryRun {
					verb = "would change"
				}
				fmt.Fprintf(out, "re-evaluated %d messages, %d %s\n", rep.Evaluated, len(rep.Changed), verb)
				for _, ch := range rep.Changed {
					fmt.Fprintf(out, "%d: %s -> %s\n", ch.ID, orNone(ch.From), ch.To)
				}
				if len(rep.Withheld) > 0 {
					fmt.Fprintf(out, "%d changes shorten a retention and need another officer's approval:\n", len(rep.Withheld))
					for _, ch := range rep.Withheld {
						fmt.Fprintf(out, "%d: %s -> %s (withheld)\n", ch.ID, orNone(ch.From), ch.To)
					}
				}
				if rep.Approval != nil {
					printRequested(out, rep.Approval)
				}
				return nil
			})
		},
	}
	apply.Flags().BoolVar(&dryRun, "dry-run", false, "only show what would change")
	apply.Flags().StringVar(&reason, "reason", "", "why, for the four-eyes request of shortening changes: kept in the audit log")
	apply.Flags().StringVar(&identity, "identity", "", "ignored: the reader service decrypts")
	_ = apply.Flags().MarkDeprecated("identity", "the reader service decrypts")
	apply.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	c.AddCommand(apply)
	return c
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
