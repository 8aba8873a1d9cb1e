// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/archive"
)

type verifyOptions struct {
	backup      string
	offsite     bool
	config      string
	identity    string
	checkpoints []string
	asJSON      bool
}

func newVerifyCommand(g *globalOptions) *cobra.Command {
	o := &verifyOptions{}
	c := &cobra.Command{
		Use:   "verify",
		Short: "Check the whole archive: segments, catalog, audit log, and with --identity every message",
		Long: `Check the whole archive and name every problem found:

  - the audit log: hash chain, checkpoint signatures, and that it still
    extends each --checkpoint FILE kept outside the host;
  - every record's CRCs, every sealed segment's SHA-256 against the catalog
    and the audit log;
  - catalog and segments agree both ways;
  - every stored record is vouched for by the audit log's ingest entry (a
    valid age file proves nothing: anyone with the public key can make one);
  - with --identity, every message and envelope decrypts, and its SHA-256
    and keyed digest match.

It runs while the daemon runs (through the control socket).

With --backup TARGET it checks the newest backup in TARGET instead, without
the archive: the manifest, every object's and file's SHA-256, every
segment's records, the audit log's chain and signatures up to the backup's
checkpoint (and each --checkpoint), each sealed segment's SHA-256 against
the audit log, and with --identity that the encrypted keys open. That every
record is vouched for and the catalog agrees is checked by restoring it
(the restore drill, docs/operations.md) and running verify on the result.

--json prints the report as one object: archive, segments, sealed_segments,
records, entries, bytes, audit_entries, audit_head, audit_checkpoints,
external_checkpoints, problems (a list, empty when all is well), and with
--identity decrypted (messages).` + exitCodes(", a checkpoint file that does not parse", "3 a problem was found"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&o.identity, "identity", "", "age identity: also decrypt and check every message (with --backup: the keys)")
	c.Flags().StringVar(&o.backup, "backup", "", "check the newest backup in the directory `TARGET` instead of the archive")
	c.Flags().BoolVar(&o.offsite, "offsite", false, "check the offsite S3 copy against the catalog and the audit log instead (docs/offsite.md)")
	c.Flags().StringVar(&o.config, "config", "", "with --offsite and no daemon running: the configuration file with the [offsite] section")
	c.Flags().StringArrayVar(&o.checkpoints, "checkpoint", nil, "`FILE` with checkpoints from 'sealmail audit checkpoint' (repeatable)")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	return c
}

func readCheckpoints(files []string) ([]archive.Checkpoint, error) {
	var out []archive.Checkpoint
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		cps, err := archive.ParseCheckpoints(b)
		if err != nil {
			return nil, fmt.Errorf("checkpoint file %s: %w", f, err)
		}
		out = append(out, cps...)
	}
	return out, nil
}

func runVerify(ctx context.Context, g *globalOptions, o *verifyOptions, out, errOut io.Writer) (err error) {
	external, err := readCheckpoints(o.checkpoints)
	if err != nil {
		return usageError{err}
	}
	if o.backup != "" {
		return runVerifyBackup(ctx, o, external, out, errOut)
	}
	if o.offsite {
		return runVerifyOffsite(ctx, g, o, out)
	}
	a, err := connect(ctx, g)
	if err != nil {
		return err
	}
	defer closeArchive(a, &err)
	rep, err := a.Verify(ctx, external)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	var content *archive.ContentReport
	if o.identity != "" {
		ids, err := loadIdentities(o.identity, errOut)
		if err != nil {
			return err
		}
		if content, err = archive.VerifyContent(ctx, a, g.data, ids); err != nil {
			return identityError(err, o.identity)
		}
		if content.Note != "" {
			fmt.Fprintf(errOut, "note: %s\n", content.Note)
		}
		rep.Problems = append(rep.Problems, content.Problems...)
	}
	if o.asJSON {
		v := struct {
			*archive.VerifyReport
			Decrypted *int `json:"decrypted,omitempty"`
		}{VerifyReport: rep}
		if content != nil {
			v.Decrypted = &content.Messages
		}
		if err := printJSON(out, v); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "archive %s\n", rep.Archive)
		fmt.Fprintf(out, "segments: %d (%d sealed), %d records, %d entries, %s\n", rep.Segments, rep.Sealed, rep.Records, rep.Entries, humanBytes(rep.Bytes))
		fmt.Fprintf(out, "audit log: %d entries, %d signed checkpoints, head %s; extends %d of %d external checkpoints\n",
			rep.AuditEntries, rep.Checkpoints, rep.AuditHead, rep.External, len(external))
		if content != nil {
			fmt.Fprintf(out, "decrypted and checked: %d messages\n", content.Messages)
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(out, "PROBLEM: %s\n", p)
		}
	}
	if !rep.OK() {
		return exitCodeError{exitProblems, fmt.Errorf("verify found %d problems", len(rep.Problems))}
	}
	if !o.asJSON {
		fmt.Fprintln(out, "OK")
	}
	return nil
}
