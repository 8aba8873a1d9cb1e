// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
)

func newListCommand(g *globalOptions) *cobra.Command {
	var (
		asJSON bool
		limit  int
		after  uint64
	)
	c := &cobra.Command{
		Use:   "list",
		Short: "List archived messages, oldest first",
		Long: `List archived messages in id order, newest last.

--json prints one JSON object per line: id, received (RFC 3339), size
(original bytes), receipts (deliveries of the same original), state, segment,
retain_until.` + exitCodes(""),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if limit < 0 {
				return usageError{fmt.Errorf("--limit %d: want 0 (no limit) or more", limit)}
			}
			a, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer closeArchive(a, &err)
			rows, err := a.List(cmd.Context(), archive.ListOptions{After: sealmail.MessageID(after), Limit: limit})
			if err != nil {
				return fmt.Errorf("list: %w", err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				for _, r := range rows {
					if err := printJSON(out, r); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tRECEIVED\tSIZE\tRECEIPTS\tSTATE\tRETAIN UNTIL")
			for _, r := range rows {
				fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\n", r.ID, r.Received.Format(time.RFC3339), r.Size, r.Receipts, r.State, r.RetainUntil)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	c.Flags().IntVar(&limit, "limit", 0, "print at most N messages (0: all)")
	c.Flags().Uint64Var(&after, "after", 0, "start after message id N")
	return c
}
