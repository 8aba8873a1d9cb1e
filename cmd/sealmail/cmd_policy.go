// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"fmt"
	"net/mail"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
)

func newPolicyCommand(g *globalOptions) *cobra.Command {
	c := &cobra.Command{Use: "policy", Short: "Apply retention rules to stored messages"}
	var identity string
	apply := &cobra.Command{
		Use:   "apply --identity FILE",
		Short: "Re-evaluate the retention rules in force for every stored message",
		Long: `Changed retention rules apply to messages archived after the change. This
re-evaluates them for every stored message: the rules look at headers and
envelopes, which only the identity can decrypt, so this command decrypts
each message here and hands the daemon what the rules need. Every change
(old and new retain-until) is audited.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := loadIdentities(identity, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			a, err := connectMode(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			defer a.Close()
			rows, err := a.List(cmd.Context(), archive.ListOptions{})
			if err != nil {
				return err
			}
			var facts []archive.PolicyFacts
			var changed []archive.PolicyChange
			flush := func() error {
				if len(facts) == 0 {
					return nil
				}
				ch, err := a.ApplyPolicy(cmd.Context(), facts)
				changed = append(changed, ch...)
				facts = facts[:0]
				return err
			}
			for _, r := range rows {
				it, err := decryptItem(cmd.Context(), a, sealmail.MessageID(r.ID), ids, identity)
				if err != nil {
					return fmt.Errorf("policy apply %d: %w", r.ID, err)
				}
				f := archive.PolicyFacts{ID: it.ID, Envelopes: it.Envelopes}
				if m, err := mail.ReadMessage(bytes.NewReader(it.Raw)); err == nil {
					f.Header = m.Header
				}
				facts = append(facts, f)
				if len(facts) >= 500 {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			if err := flush(); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "re-evaluated %d messages, %d changed\n", len(rows), len(changed))
			for _, ch := range changed {
				fmt.Fprintf(out, "%d: %s -> %s\n", ch.ID, orNone(ch.From), ch.To)
			}
			return nil
		},
	}
	apply.Flags().StringVar(&identity, "identity", "", "age identity that decrypts the archive (required)")
	c.AddCommand(apply)
	return c
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
