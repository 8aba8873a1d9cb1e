// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/index"
)

func newReindexCommand(g *globalOptions) *cobra.Command {
	var (
		identity string
		all      bool
	)
	c := &cobra.Command{
		Use:   "reindex",
		Short: "Index messages the search index lacks (after a crash), or all of them",
		Long: `The daemon indexes each message while it receives it; it cannot decrypt
stored messages. Messages it did not index (a crash, an overloaded index) are
indexed by this command: it decrypts them here with --identity and hands the
text to the index (through the daemon when it runs). With --all it indexes
every message, for an index that was deleted or damaged (delete DIR/index
with the daemon stopped, then run reindex --all).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReindex(cmd.Context(), g, identity, all, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&identity, "identity", "", "age identity that decrypts the archive (required)")
	c.Flags().BoolVar(&all, "all", false, "index every message, not only those after the watermark")
	return c
}

func runReindex(ctx context.Context, g *globalOptions, identity string, all bool, out, errOut io.Writer) error {
	ids, err := loadIdentities(identity, errOut)
	if err != nil {
		return err
	}
	a, err := connectMode(ctx, g, false)
	if err != nil {
		return err
	}
	defer a.Close()
	st, err := a.Status(ctx)
	if err != nil {
		return err
	}
	after := sealmail.MessageID(st.IndexWatermark)
	if all {
		after = 0
	}
	rows, err := a.List(ctx, archive.ListOptions{After: after})
	if err != nil {
		return err
	}
	var batch []index.Doc
	size, n := 0, 0
	flush := func(upTo sealmail.MessageID) error {
		if len(batch) == 0 && upTo == 0 {
			return nil
		}
		if err := a.IndexDocs(ctx, batch, upTo); err != nil {
			return err
		}
		n += len(batch)
		batch, size = batch[:0], 0
		return nil
	}
	for i, r := range rows {
		it, err := decryptItem(ctx, a, sealmail.MessageID(r.ID), ids, identity)
		if err != nil {
			return fmt.Errorf("reindex %d: %w", r.ID, err)
		}
		d := index.Doc{ID: it.ID, Raw: it.Raw, Envelopes: it.Envelopes, Received: it.Received}
		batch = append(batch, d)
		size += len(d.Raw)
		if len(batch) >= 200 || size >= 32<<20 {
			var upTo sealmail.MessageID
			if i == len(rows)-1 {
				upTo = sealmail.MessageID(r.ID)
			}
			if err := flush(upTo); err != nil {
				return err
			}
		}
	}
	last := sealmail.MessageID(st.LastID)
	if len(rows) > 0 {
		last = max(last, sealmail.MessageID(rows[len(rows)-1].ID))
	}
	if err := flush(last); err != nil {
		return err
	}
	fmt.Fprintf(out, "indexed %d messages; the index now covers every message up to %d\n", n, last)
	return nil
}
