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
	var asJSON bool
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Re-evaluate the retention rules in force for every stored message",
		Long: `Changed retention rules apply to messages archived after the change. This
re-evaluates them for every stored message: the rules look at headers and
envelopes, which only the identity can decrypt, so the reader service
(` + "`sealmail access`" + `) decrypts each message and hands the receiver what the
rules need. Every change (old and new retain-until) is audited.

--json prints one object: evaluated (messages), changed (id, from, to).` + exitCodes("", noReaderCode),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withReader(g, func(c *reader.Client) error {
				rep, err := c.ApplyPolicy(cmd.Context())
				if err != nil {
					return fmt.Errorf("policy apply: %w", err)
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return printJSON(out, rep)
				}
				fmt.Fprintf(out, "re-evaluated %d messages, %d changed\n", rep.Evaluated, len(rep.Changed))
				for _, ch := range rep.Changed {
					fmt.Fprintf(out, "%d: %s -> %s\n", ch.ID, orNone(ch.From), ch.To)
				}
				return nil
			})
		},
	}
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
