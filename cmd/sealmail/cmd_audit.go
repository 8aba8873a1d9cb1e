// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/archive"
)

func newAuditCommand(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "audit",
		Short: "Read, anchor and verify the tamper-evident audit log",
	}
	c.AddCommand(newAuditCheckpointCommand(g), newAuditVerifyCommand(g), newAuditShowCommand(g))
	return c
}

func newAuditCheckpointCommand(g *globalOptions) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "checkpoint",
		Short: "Write a signed checkpoint now and print it, to keep outside this host",
		Long: `Write a signed checkpoint of the audit log now and print it in a stable text
form. Keep it somewhere the archive's administrator cannot change (a ticket,
an email to the auditor, another host). Later, ` + "`sealmail audit verify --checkpoint FILE`" + `
proves that the log still extends it: nothing before it was rewritten or cut,
even by someone holding the signing key.

--json prints one object: archive, seq, head, time, and checkpoint (the text
form, which is what to keep).` + exitCodes(""),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			a, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer closeArchive(a, &err)
			cp, err := a.Checkpoint(cmd.Context())
			if err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
			text, err := cp.MarshalText()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), struct {
					Archive    string    `json:"archive"`
					Seq        uint64    `json:"seq"`
					Head       string    `json:"head"`
					Time       time.Time `json:"time"`
					Checkpoint string    `json:"checkpoint"`
				}{cp.Archive, cp.Seq, cp.Head.String(), cp.Time, string(text)})
			}
			_, err = cmd.OutOrStdout().Write(text)
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return c
}

func newAuditVerifyCommand(g *globalOptions) *cobra.Command {
	var files []string
	var asJSON bool
	c := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit log's chain and signatures, and that it extends given checkpoints",
		Long: `Verify the whole audit log: every entry's hash chain, every checkpoint's
Ed25519 signature, and that the log still extends each checkpoint given with
--checkpoint (so that truncating or rewriting it after that checkpoint is
detected).

--json prints the report as one object: archive, files, entries, checkpoints,
last_seq, head, unsigned, external, problems (a list, empty when all is
well).` + exitCodes(", a checkpoint file that does not parse", "3 a problem was found"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			external, err := readCheckpoints(files)
			if err != nil {
				return usageError{err}
			}
			a, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer closeArchive(a, &err)
			rep, err := a.VerifyAudit(cmd.Context(), external)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(out, rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "audit log of archive %s: %d files, %d entries, %d signed checkpoints, head seq %d\n",
					rep.Archive, rep.Files, rep.Entries, rep.Checkpoints, rep.LastSeq)
				fmt.Fprintf(out, "extends %d of %d external checkpoints; %d entries not yet covered by a checkpoint\n", rep.External, len(external), rep.Unsigned)
				for _, p := range rep.Problems {
					fmt.Fprintf(out, "PROBLEM: %s\n", p)
				}
			}
			if !rep.OK() {
				return exitCodeError{exitProblems, fmt.Errorf("audit verify found %d problems", len(rep.Problems))}
			}
			if !asJSON {
				fmt.Fprintln(out, "OK")
			}
			return nil
		},
	}
	c.Flags().StringArrayVar(&files, "checkpoint", nil, "`FILE` with checkpoints from 'sealmail audit checkpoint' (repeatable)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}

func newAuditShowCommand(g *globalOptions) *cobra.Command {
	var (
		asJSON bool
		since  string
		types  []string
	)
	c := &cobra.Command{
		Use:   "show",
		Short: "Print audit log entries",
		Long: "Print audit log entries, oldest first. --since takes RFC 3339 or YYYY-MM-DD;\n--type one of: " + strings.Join(archive.AuditTypes(), ", ") + ".\n\n" +
			"It reads the log directly (also while the daemon runs). --json prints one object\nper entry: seq, time, type, actor, fields, prev, hash." + exitCodes(""),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var f archive.AuditFilter
			if since != "" {
				t, err := time.Parse(time.RFC3339, since)
				if err != nil {
					if t, err = time.Parse(time.DateOnly, since); err != nil {
						return usageError{fmt.Errorf("--since %q: want RFC 3339 (2026-11-27T10:00:00Z) or YYYY-MM-DD", since)}
					}
				}
				f.Since = t
			}
			for _, t := range types {
				if !validType(t) {
					return usageError{fmt.Errorf("--type %q: want one of %s, or access.ACTION", t, strings.Join(archive.AuditTypes(), ", "))}
				}
			}
			f.Types = types
			out := cmd.OutOrStdout()
			return archive.ReadAudit(cmd.Context(), g.data, f, func(e archive.AuditEntry) error {
				if asJSON {
					return printJSON(out, e)
				}
				fields, _ := json.Marshal(e.Fields)
				_, err := fmt.Fprintf(out, "%d %s %-15s %s %s\n", e.Seq, e.Time.Format(time.RFC3339), e.Type, e.Actor, fields)
				return err
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per entry")
	c.Flags().StringVar(&since, "since", "", "only entries at or after this time")
	c.Flags().StringArrayVar(&types, "type", nil, "only entries of this type (repeatable)")
	return c
}

// validType accepts the defined types and the reader's access.* events.
func validType(t string) bool {
	for _, k := range archive.AuditTypes() {
		if k == t {
			return true
		}
	}
	return strings.HasPrefix(t, "access.") && len(t) > len("access.")
}
