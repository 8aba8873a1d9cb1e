// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
)

func newOffsiteCommand(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "offsite",
		Short: "The offsite WORM copy in an S3 bucket with Object Lock",
		Long: `The offsite copy ([offsite] in the configuration, docs/offsite.md): every
sealed segment and the audit log with its checkpoints in an S3 bucket with
Object Lock, each object version locked in COMPLIANCE mode until the latest
retain-until of the messages it holds (held messages: kept locked while the
hold lasts). The daemon syncs after each seal and every offsite.every; this
command syncs now. Check it with ` + "`sealmail verify --offsite`" + `; restore from it
with ` + "`sealmail restore --from s3 --config FILE --data NEWDIR --identity FILE`" + `.`,
		Args: cobra.NoArgs,
	}
	var config string
	var asJSON bool
	sync := &cobra.Command{
		Use:   "sync --config FILE",
		Short: "Bring the offsite copy up to date now",
		Long: `Upload what the bucket lacks (each sealed segment once, the audit log up to a
checkpoint written now), extend the locks to what retention and holds now
need, and remove the versions nobody needs any more once their lock has
ended (older generations of compacted segments). Through the daemon when it
runs (with its configuration), else from the archive directly with --config.
Safe to interrupt: the next sync finds what was uploaded and goes on. Audited
(an offsite entry).

--json prints one object: bucket, checkpoint, objects, uploaded,
uploaded_bytes, adopted, extended, removed, retired.` + exitCodes(", no [offsite] in the configuration"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOffsiteSync(cmd.Context(), g, config, asJSON, cmd.OutOrStdout())
		},
	}
	sync.Flags().StringVar(&config, "config", "", "configuration file with the [offsite] section (when no daemon runs)")
	sync.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c.AddCommand(sync)
	return c
}

func runOffsiteSync(ctx context.Context, g *globalOptions, config string, asJSON bool, out io.Writer) (err error) {
	a, err := connect(ctx, g)
	if err != nil {
		return err
	}
	defer closeArchive(a, &err)
	var rep *archive.OffsiteReport
	switch a := a.(type) {
	case *api.Client:
		rep, err = a.OffsiteSync(ctx)
	case *archive.Archive:
		o, cerr := offsiteOptions(config)
		if cerr != nil {
			return cerr
		}
		rep, err = a.OffsiteSync(ctx, o)
	}
	if err != nil {
		return fmt.Errorf("offsite sync: %w", err)
	}
	if asJSON {
		return printJSON(out, rep)
	}
	fmt.Fprintf(out, "offsite %s: %d objects; uploaded %d (%s), found %d uploaded before, extended %d locks, removed %d, %d waiting for their lock to end\n",
		rep.Bucket, rep.Objects, rep.Uploaded, humanBytes(rep.UploadedBytes), rep.Adopted, rep.Extended, rep.Removed, rep.Retired)
	fmt.Fprintf(out, "audit log up to entry %d\n", rep.Checkpoint)
	return nil
}

// offsiteOptions reads the [offsite] section of the configuration file.
func offsiteOptions(config string) (archive.OffsiteOptions, error) {
	if config == "" {
		return archive.OffsiteOptions{}, usageError{fmt.Errorf("--config FILE is required: the [offsite] section says which bucket")}
	}
	cfg, err := loadConfig(config)
	if err != nil {
		return archive.OffsiteOptions{}, usageError{err}
	}
	if errs := cfg.Offsite.validate(); len(errs) > 0 {
		return archive.OffsiteOptions{}, usageError{errs[0]}
	}
	return cfg.Offsite.options()
}

// runVerifyOffsite is `verify --offsite`.
func runVerifyOffsite(ctx context.Context, g *globalOptions, o *verifyOptions, out io.Writer) (err error) {
	a, err := connect(ctx, g)
	if err != nil {
		return err
	}
	defer closeArchive(a, &err)
	var rep *archive.OffsiteVerifyReport
	switch a := a.(type) {
	case *api.Client:
		rep, err = a.VerifyOffsite(ctx)
	case *archive.Archive:
		oo, cerr := offsiteOptions(o.config)
		if cerr != nil {
			return cerr
		}
		rep, err = a.VerifyOffsite(ctx, oo)
	}
	if err != nil {
		return fmt.Errorf("verify --offsite: %w", err)
	}
	if o.asJSON {
		if err := printJSON(out, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "offsite %s: %d objects present, checked and locked as their messages need; %d not copied yet\n",
			rep.Bucket, rep.Objects, len(rep.Pending))
		for _, p := range rep.Problems {
			fmt.Fprintf(out, "PROBLEM: %s\n", p)
		}
	}
	if !rep.OK() {
		return exitCodeError{exitProblems, fmt.Errorf("verify --offsite found %d problems", len(rep.Problems))}
	}
	if !o.asJSON {
		fmt.Fprintln(out, "OK")
	}
	return nil
}

// runRestoreOffsite is `restore --from s3`.
func runRestoreOffsite(ctx context.Context, g *globalOptions, config, identity string, asJSON bool, out, errOut io.Writer) error {
	o, err := offsiteOptions(config)
	if err != nil {
		return err
	}
	ids, err := loadIdentities(identity, errOut)
	if err != nil {
		return err
	}
	rep, err := archive.RestoreOffsite(ctx, o, g.data, archive.RestoreOptions{Identities: ids, Logger: newLogger(g, nil)})
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, rep)
	}
	fmt.Fprintf(out, "restored archive %s from %s (its log ends with the checkpoint of %s) into %s: %d files, %s\n",
		rep.Archive, o.Bucket.Bucket, rep.Created.Local().Format(time.RFC3339), rep.Dir, rep.Files, humanBytes(rep.Bytes))
	printRestoreTail(out, rep)
	return nil
}
