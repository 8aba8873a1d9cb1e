// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/archive"
)

func newRecoverCommand(g *globalOptions) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "recover",
		Short: "Rebuild catalog.db from the segments and the audit log (daemon stopped)",
		Long: `Rebuild the catalog (DIR/catalog.db) when it is lost or damaged. The segments'
clear record headers give every message, envelope and tombstone with its id,
location, time, size and keyed digest; the audit log gives retention, which
purge or erasure deleted a message, the audited segment hashes, the legal
holds with the messages they cover, and the highest id ever used. The new
catalog is written beside the old one and renamed over it; the old one is
kept as catalog.db.replaced-TIME.

Run ` + "`sealmail verify`" + ` afterwards: whatever recover could not account for, it
lists, and verify checks the result against the audit log.

Stop the daemon first (recover refuses a catalog in use).

--json prints one object: messages, deleted, receipts, segments, sealed,
next_id, replaced, findings.` + exitCodes("", "3 recover found something that did not fit (listed)"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRecover(cmd.Context(), g, cmd.OutOrStdout(), asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

func runRecover(ctx context.Context, g *globalOptions, out io.Writer, asJSON bool) error {
	res, err := archive.Recover(ctx, g.data, archive.Options{})
	if err != nil {
		return err
	}
	problems := exitCodeError{code: exitProblems, err: fmt.Errorf("recover: %d problems; run `sealmail verify`", len(res.Findings))}
	if asJSON {
		if err := printJSON(out, res); err != nil {
			return err
		}
		if len(res.Findings) > 0 {
			return problems
		}
		return nil
	}
	fmt.Fprintf(out, "catalog rebuilt: %d messages (%d deleted), %d receipts, %d segments (%d sealed), next id %d\n",
		res.Messages, res.Deleted, res.Receipts, res.Segments, res.Sealed, res.NextID)
	if res.Replaced != "" {
		fmt.Fprintf(out, "the previous catalog is kept as %s\n", res.Replaced)
	}
	for _, f := range res.Findings {
		fmt.Fprintf(out, "problem: %s\n", f)
	}
	if len(res.Findings) > 0 {
		return problems
	}
	return nil
}
