// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/archive"
)

func newStatusCommand(g *globalOptions) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Show message count, sizes, segments and the daemon's listeners",
		Long: `Show the archive's totals and, when a daemon serves it, its listeners and
uptime. --json prints one object.` + exitCodes(""),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			a, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer closeArchive(a, &err)
			st, err := a.Status(cmd.Context())
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, st)
			}
			printStatus(out, st.Archive, st.Dir, st.Messages, st.Receipts, st.OriginalBytes, st.StoredBytes, st.Segments, st.Sealed)
			if st.Daemon {
				fmt.Fprintf(out, "daemon:     running since %s (uptime %s)\n", st.Started.Format(time.RFC3339), time.Duration(st.UptimeSeconds)*time.Second)
				for _, l := range st.Listeners {
					fmt.Fprintf(out, "listening:  %s\n", l)
				}
			} else {
				fmt.Fprintf(out, "daemon:     not running\n")
			}
			printScrub(out, st.Scrub)
			if !st.LastBackup.IsZero() {
				fmt.Fprintf(out, "backup:     last completed %s\n", st.LastBackup.Local().Format(time.RFC3339))
			}
			for _, g := range st.JournalGaps {
				fmt.Fprintf(out, "JOURNAL GAP: %s silent since %s (max_silence %s), detected %s\n",
					g.Source, g.LastSeen.Format(time.RFC3339), g.MaxSilence, g.Since.Format(time.RFC3339))
			}
			for _, w := range st.Warnings {
				fmt.Fprintf(out, "WARNING:    %s\n", w)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return c
}

// printScrub prints the scrubber's last full pass and the one under way.
func printScrub(out io.Writer, s archive.ScrubStatus) {
	if p := s.Last; p != nil {
		fmt.Fprintf(out, "scrub:      last full pass %s to %s: %d segments, %s, %d problems\n", p.Started.Local().Format(time.RFC3339),
			p.Ended.Local().Format(time.RFC3339), p.Segments, humanBytes(p.Bytes), len(p.Problems))
	} else {
		fmt.Fprintf(out, "scrub:      no full pass yet\n")
	}
	if p := s.Current; p != nil {
		fmt.Fprintf(out, "scrub:      pass under way since %s: %d of %d segments\n", p.Started.Local().Format(time.RFC3339), p.Segments, p.Total)
	}
}

func printStatus(out io.Writer, id, dir string, msgs, receipts, orig, stored int64, segs, sealed int) {
	fmt.Fprintf(out, "archive:    %s (%s)\n", id, dir)
	fmt.Fprintf(out, "messages:   %d (%d receipts)\n", msgs, receipts)
	fmt.Fprintf(out, "original:   %s\n", humanBytes(orig))
	fmt.Fprintf(out, "stored:     %s\n", humanBytes(stored))
	fmt.Fprintf(out, "segments:   %d (%d sealed)\n", segs, sealed)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB (%d bytes)", float64(n)/float64(div), "KMGTPE"[exp], n)
}
