// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/archive"
)

type reindexOptions struct {
	identity string
	all      bool
	asJSON   bool
}

func newReindexCommand(g *globalOptions) *cobra.Command {
	o := &reindexOptions{}
	c := &cobra.Command{
		Use:   "reindex",
		Short: "Index messages the search index lacks (after a crash), or all of them",
		Long: `The daemon indexes each message while it receives it; it cannot decrypt
stored messages. Messages it did not index (a crash, an overloaded index) are
indexed by this command: it decrypts them here with --identity and hands the
text to the index (through the daemon when it runs). With --all it indexes
every message, for an index that was deleted or damaged (delete DIR/index
with the daemon stopped, then run reindex --all).

--json prints one object: indexed (messages), up_to (every message up to this
id is indexed now).` + exitCodes(""),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReindex(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&o.identity, "identity", "", "age identity that decrypts the archive (required)")
	c.Flags().BoolVar(&o.all, "all", false, "index every message, not only those after the watermark")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the result as one JSON object")
	return c
}

func runReindex(ctx context.Context, g *globalOptions, o *reindexOptions, out, errOut io.Writer) (err error) {
	ids, err := loadIdentities(o.identity, errOut)
	if err != nil {
		return err
	}
	a, err := connectMode(ctx, g, false)
	if err != nil {
		return err
	}
	defer closeArchive(a, &err)
	rep, err := archive.Reindex(ctx, a, ids, o.all)
	if err != nil {
		return identityError(err, o.identity)
	}
	if o.asJSON {
		return printJSON(out, rep)
	}
	fmt.Fprintf(out, "indexed %d messages; the index now covers every message up to %d\n", rep.Indexed, rep.UpTo)
	return nil
}
