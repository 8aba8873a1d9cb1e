// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/reader"
)

func newHoldCommand(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "hold",
		Short: "Place, list and release legal holds",
		Long: `A legal hold keeps every message its query matches, now and in future,
whatever retention says, until it is released. Released holds stay on record.
Every change is audited.

The reader service (` + "`sealmail access`" + `) evaluates a hold's query against its
index when the hold is placed and on every message it indexes after, and
the receiver records the messages found (the hold's members): purge never
deletes a member, nor anything the index has not taken in yet.`,
	}
	var q, reason string
	var asJSON bool
	holdJSON := "--json prints the hold as one object: name, query, reason, created, created_by,\nreleased, released_by, release_reason, active, members, through, evaluated."
	create := &cobra.Command{
		Use:   "create NAME --query Q --reason TEXT",
		Short: "Place a legal hold",
		Long: "Place a legal hold named NAME on every message the query matches, now and\nin future.\n\n" + holdJSON +
			exitCodes(", a query that does not parse, a name already taken", noReaderCode),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if q == "" || reason == "" {
				return usageError{errors.New("--query and --reason are required")}
			}
			if err := reader.CheckQuery(q); err != nil {
				return usageError{fmt.Errorf("hold create: %w", err)}
			}
			return withReader(g, func(c *reader.Client) error {
				rep, err := c.CreateHold(cmd.Context(), args[0], q, reason)
				if err != nil {
					return fmt.Errorf("hold create: %w", err)
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), rep.Hold)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "hold %q placed: %d messages match now; future ones are held as they are indexed\n%s\n",
					rep.Hold.Name, rep.Hold.Members, coverageNote(rep.Coverage))
				return nil
			})
		},
	}
	create.Flags().StringVar(&q, "query", "", "which messages (search syntax)")
	create.Flags().StringVar(&reason, "reason", "", "why (case number, request): kept in the audit log")
	create.Flags().BoolVar(&asJSON, "json", false, "print the hold as one JSON object")
	release := &cobra.Command{
		Use:   "release NAME --reason TEXT",
		Short: "Release a legal hold",
		Long: "Release the legal hold NAME; it stays on record, its members are dropped.\n" +
			"With four eyes (on unless [access.four_eyes] hold_release = false) it files a\n" +
			"request instead; the hold is released when another officer approves it\n" +
			"(`sealmail approvals`).\n\n" + holdJSON + " With a request, \"approval\" is it.\n" +
			exitCodes(", a hold that does not exist or is released", noReaderCode),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usageError{errors.New("--reason is required")}
			}
			return withReader(g, func(c *reader.Client) error {
				rep, err := c.ReleaseHold(cmd.Context(), args[0], reason)
				if err != nil {
					return fmt.Errorf("hold release: %w", err)
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), struct {
						reader.Hold
						Approval *access.Approval `json:"approval,omitempty"`
					}{rep.Hold, rep.Approval})
				}
				if rep.Approval != nil {
					printRequested(cmd.OutOrStdout(), rep.Approval)
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "hold %q released; the messages it held follow retention again\n", rep.Hold.Name)
				return nil
			})
		},
	}
	release.Flags().StringVar(&reason, "reason", "", "why it ends: kept in the audit log")
	release.Flags().BoolVar(&asJSON, "json", false, "print the hold as one JSON object")
	list := &cobra.Command{
		Use:   "list",
		Short: "List holds, active and released",
		Long:  "List every hold, active and released.\n\n--json prints one object per hold and line (see `hold create --help`)." + exitCodes("", noReaderCode),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return showHolds(cmd, g, "", asJSON)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	var showJSON bool
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one hold",
		Long:  "Show the hold NAME as one JSON object (see `hold create --help`); --json=false\nprints a table row instead." + exitCodes("", "4 no hold named NAME", noReaderCode),
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return showHolds(cmd, g, args[0], showJSON)
		},
	}
	show.Flags().BoolVar(&showJSON, "json", true, "print one JSON object (the default)")
	c.AddCommand(create, release, list, show)
	return c
}

// errNoHold reports a hold name that matches no hold.
var errNoHold = errors.New("no such hold")

func showHolds(cmd *cobra.Command, g *globalOptions, name string, asJSON bool) error {
	return withReader(g, func(c *reader.Client) error {
		rep, err := c.Holds(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		found := false
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		if !asJSON {
			fmt.Fprintln(tw, "NAME\tSTATE\tMEMBERS\tCREATED\tQUERY")
		}
		for _, h := range rep.Holds {
			if name != "" && h.Name != name {
				continue
			}
			found = true
			if asJSON {
				if err := printJSON(out, h); err != nil {
					return err
				}
				continue
			}
			printHold(tw, h)
		}
		if name != "" && !found {
			return exitCodeError{exitNotFound, fmt.Errorf("no hold named %q (see `sealmail hold list`): %w", name, errNoHold)}
		}
		return tw.Flush()
	})
}

func printHold(w io.Writer, h reader.Hold) {
	state := "active"
	if !h.Active {
		state = "released " + h.Released.Format(time.DateOnly)
	}
	fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", h.Name, state, h.Members, h.Created.Format(time.DateOnly), h.Query)
}
