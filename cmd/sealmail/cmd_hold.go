// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/archive"
)

func newHoldCommand(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "hold",
		Short: "Place, list and release legal holds",
		Long: `A legal hold keeps every message its query matches, now and in future,
whatever retention says, until it is released. Released holds stay on record.
Every change is audited.`,
	}
	var q, reason string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create NAME --query Q --reason TEXT",
		Short: "Place a legal hold",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if q == "" || reason == "" {
				return usageError{errors.New("--query and --reason are required")}
			}
			a, err := connectMode(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			defer a.Close()
			h, err := a.CreateHold(cmd.Context(), args[0], q, reason)
			if err != nil {
				return fmt.Errorf("hold create: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hold %q placed: %d messages match now; future ones are held as they arrive\n", h.Name, h.Matches)
			return nil
		},
	}
	create.Flags().StringVar(&q, "query", "", "which messages (search syntax)")
	create.Flags().StringVar(&reason, "reason", "", "why (case number, request): kept in the audit log")
	release := &cobra.Command{
		Use:   "release NAME --reason TEXT",
		Short: "Release a legal hold",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usageError{errors.New("--reason is required")}
			}
			a, err := connectMode(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			defer a.Close()
			h, err := a.ReleaseHold(cmd.Context(), args[0], reason)
			if err != nil {
				return fmt.Errorf("hold release: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hold %q released; its %d messages follow retention again\n", h.Name, h.Matches)
			return nil
		},
	}
	release.Flags().StringVar(&reason, "reason", "", "why it ends: kept in the audit log")
	list := &cobra.Command{
		Use:   "list",
		Short: "List holds, active and released",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return showHolds(cmd, g, "", asJSON)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one hold",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return showHolds(cmd, g, args[0], true)
		},
	}
	c.AddCommand(create, release, list, show)
	return c
}

func showHolds(cmd *cobra.Command, g *globalOptions, name string, asJSON bool) error {
	a, err := connect(cmd.Context(), g)
	if err != nil {
		return err
	}
	defer a.Close()
	hs, err := a.Holds(cmd.Context())
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	found := false
	enc := json.NewEncoder(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "NAME\tSTATE\tMATCHES\tCREATED\tQUERY")
	}
	for _, h := range hs {
		if name != "" && h.Name != name {
			continue
		}
		found = true
		if asJSON {
			if err := enc.Encode(h); err != nil {
				return err
			}
			continue
		}
		printHold(tw, h)
	}
	if name != "" && !found {
		return fmt.Errorf("no hold named %q (see `sealmail hold list`)", name)
	}
	return tw.Flush()
}

func printHold(w io.Writer, h archive.HoldInfo) {
	state := "active"
	if !h.Active {
		state = "released " + h.Released.Format(time.DateOnly)
	}
	fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", h.Name, state, h.Matches, h.Created.Format(time.DateOnly), h.Query)
}
