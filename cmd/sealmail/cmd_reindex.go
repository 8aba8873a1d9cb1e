// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sealmail/sealmail/reader"
)

func newReindexCommand(g *globalOptions) *cobra.Command {
	var all, asJSON bool
	var identity string
	c := &cobra.Command{
		Use:   "reindex [--all]",
		Short: "Wait until the search index covers the archive, or rebuild it (--all)",
		Long: `The reader service (` + "`sealmail access`" + `) indexes every message as it follows
the receiver's audit log, and after a crash goes on where its index
stopped. This command waits until the index covers what the archive holds
now. With --all the reader first throws its index away and rebuilds it from
the audit log's first entry (checking every record against it again; an
index damaged or of an older version); holds are then evaluated again, and
purge keeps everything meanwhile.

--json prints one object: all, target, coverage.` + exitCodes("", noReaderCode),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withReader(g, func(c *reader.Client) error {
				rep, err := c.Reindex(cmd.Context(), all)
				if err != nil {
					return fmt.Errorf("reindex: %w", err)
				}
				tty := term.IsTerminal(int(os.Stderr.Fd()))
				rep.Coverage, err = waitCovered(cmd.Context(), c, rep.Target, func(cov reader.Coverage) {
					if tty {
						fmt.Fprintf(cmd.ErrOrStderr(), "\rindexed through entry %d of %d (%d messages)", cov.IndexedSeq, rep.Target, cov.Indexed)
					}
				})
				if tty {
					fmt.Fprintln(cmd.ErrOrStderr())
				}
				if err != nil {
					return fmt.Errorf("reindex: %w", err)
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), rep)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d messages indexed; %s\n", rep.Coverage.Indexed, coverageNote(rep.Coverage))
				return nil
			})
		},
	}
	c.Flags().BoolVar(&all, "all", false, "rebuild the index from the audit log's first entry")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	c.Flags().StringVar(&identity, "identity", "", "ignored: the reader service decrypts")
	_ = c.Flags().MarkDeprecated("identity", "the reader service decrypts")
	return c
}
