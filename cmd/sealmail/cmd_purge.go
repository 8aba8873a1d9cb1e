// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/reader"
)

func newPurgeCommand(g *globalOptions) *cobra.Command {
	var (
		dryRun bool
		asOf   string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "purge",
		Short: "Delete messages whose retention has ended and that no legal hold covers",
		Long: `Delete every message whose retain-until has passed and that no active legal
hold covers (docs/retention.md). The reader service (` + "`sealmail access`" + `)
decides and the receiver deletes, checking holds and retention again.
Messages the reader's index has not taken in yet with all their receipts are
kept, since their hold status is unknown. The purge is audited with every id
before anything is deleted; get of a purged message then says when and on
which audit entry. --dry-run lists what would go, also as of a future date
(--as-of YYYY-MM-DD).

After deleting, purge compacts every sealed segment that holds records of
deleted messages only (both hashes audited) to reclaim their bytes. A record
holds the messages of one group commit encrypted together; the daemon cannot
decrypt, so a record that still holds a live message keeps its bytes until
all of them are gone, and the active segment's records wait until it is
sealed.

--json prints the report as one object: as_of, dry_run, deleted (ids; in a
dry run those that would go), kept (reason: count), audit_seq,
reclaimed_bytes, coverage.` + exitCodes("", noReaderCode),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var o reader.PurgeOptions
			o.DryRun = dryRun
			if asOf != "" {
				t, err := time.Parse(time.DateOnly, asOf)
				if err != nil {
					return usageError{fmt.Errorf("--as-of %q: want YYYY-MM-DD", asOf)}
				}
				if !dryRun {
					return usageError{fmt.Errorf("--as-of needs --dry-run: a purge deletes only what is due now")}
				}
				o.AsOf = t
			}
			c, err := connectReader(g)
			if err != nil {
				return err
			}
			defer c.Close()
			rep, err := c.Purge(cmd.Context(), o)
			if err != nil {
				return readerError(fmt.Errorf("purge: %w", err))
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, rep)
			}
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			fmt.Fprintf(out, "as of %s: %s %d messages (audit entry %d)\n", rep.AsOf.Format(time.RFC3339), verb, len(rep.Deleted), rep.AuditSeq)
			if rep.Reclaimed > 0 {
				fmt.Fprintf(out, "reclaimed %s\n", humanBytes(rep.Reclaimed))
			}
			if dryRun && len(rep.Deleted) > 0 {
				fmt.Fprintf(out, "ids: %s\n", idList(rep.Deleted))
			}
			reasons := make([]string, 0, len(rep.Kept))
			for r := range rep.Kept {
				reasons = append(reasons, r)
			}
			sort.Strings(reasons)
			for _, r := range reasons {
				fmt.Fprintf(out, "kept, %s: %d\n", r, rep.Kept[r])
			}
			fmt.Fprintln(out, coverageNote(rep.Coverage))
			return nil
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "only list what would be deleted")
	c.Flags().StringVar(&asOf, "as-of", "", "with --dry-run: judge as of this date (YYYY-MM-DD)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}

func newEraseCommand(g *globalOptions) *cobra.Command {
	var o reader.EraseOptions
	var asJSON bool
	c := &cobra.Command{
		Use:   "erase --query Q --reason TEXT [--override-retention]",
		Short: "Erase the messages a query matches (GDPR Art. 17), unless held or still retained",
		Long: `Erase the messages a query matches that no legal hold covers and whose
retention has ended; the others are refused and listed with the reason.
--override-retention erases retained messages too, after a person has
weighed the legal ground for keeping them; it is audited as such. Legal
holds always win. The request, the reason and every id are audited first;
the bytes are reclaimed like purge's. --dry-run reports what would be
erased and refused without deleting anything (the request is audited).
Messages the reader has not indexed yet cannot match: the report says how
many there are.

Four eyes (on unless [access.four_eyes] erase = false): erase erases
nothing but files a request for what a dry run finds erasable; another
officer (over HTTPS, or root with ` + "`sealmail approvals approve ID`" + ` when an
officer asked) approves it, and the reader then erases those messages the
query still matches, unchanged and unheld. Root is one principal and
cannot approve a request root made.

--json prints the report as one object: dry_run, erased (ids; with a
request, those it asks to erase), refused (id, why), audit_seq,
reclaimed_bytes, coverage, approval (the request filed, if any).` + exitCodes(", a query that does not parse",
			"3 some messages were refused (held, or still retained): the others were erased", noReaderCode),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Query == "" || o.Reason == "" {
				return usageError{errors.New("--query and --reason are required")}
			}
			if err := reader.CheckQuery(o.Query); err != nil {
				return usageError{fmt.Errorf("erase: %w", err)}
			}
			c, err := connectReader(g)
			if err != nil {
				return err
			}
			defer c.Close()
			rep, err := c.Erase(cmd.Context(), o)
			if err != nil {
				return readerError(fmt.Errorf("erase: %w", err))
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(out, rep); err != nil {
					return err
				}
			} else {
				verb := "erased"
				if o.DryRun || rep.Approval != nil {
					verb = "would erase"
				}
				fmt.Fprintf(out, "%s %d messages (audit entry %d)", verb, len(rep.Erased), rep.AuditSeq)
				if len(rep.Erased) > 0 {
					fmt.Fprintf(out, ": %s", idList(rep.Erased))
				}
				fmt.Fprintln(out)
				for _, r := range rep.Refused {
					fmt.Fprintf(out, "refused %d: %s\n", r.ID, r.Why)
				}
				if len(rep.Refused) > 0 && !o.OverrideRetention {
					fmt.Fprintln(out, "(retained messages can be erased with --override-retention; held ones only after the hold is released)")
				}
				if rep.Coverage.NotIndexed > 0 {
					fmt.Fprintln(out, coverageNote(rep.Coverage))
				}
				if rep.Approval != nil {
					printRequested(out, rep.Approval)
				}
			}
			if len(rep.Refused) > 0 {
				return exitCodeError{exitProblems, fmt.Errorf("erase refused %d of %d messages", len(rep.Refused), len(rep.Refused)+len(rep.Erased))}
			}
			return nil
		},
	}
	c.Flags().StringVar(&o.Query, "query", "", "which messages (search syntax)")
	c.Flags().StringVar(&o.Reason, "reason", "", "the request (e.g. its reference): kept in the audit log")
	c.Flags().BoolVar(&o.OverrideRetention, "override-retention", false, "also erase messages whose retention has not ended")
	c.Flags().BoolVar(&o.DryRun, "dry-run", false, "only report what would be erased and refused")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}

// idList prints message ids as "1, 2, 3".
func idList(ids []uint64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(s, ", ")
}
