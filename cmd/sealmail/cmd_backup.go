// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/archive"
)

func newBackupCommand(g *globalOptions) *cobra.Command {
	var to string
	var asJSON bool
	c := &cobra.Command{
		Use:   "backup --to TARGET",
		Short: "Back the archive up to a directory (a mounted NAS), incrementally, while the daemon runs",
		Long: `Write a backup of the archive to the directory TARGET (which must exist: a
mounted NAS, a USB disk), through the daemon's control socket while it runs
(mail keeps flowing), or from the archive directly when it does not.

A backup is consistent: the catalog as of one moment, every segment up to
the length that catalog names, and the audit log up to a signed checkpoint
written right after. It is incremental: sealed segments and rotated audit
files already in TARGET are not copied again, the active segment and the
last audit file only from where the previous backup stopped (after their
first bytes were read again and matched). The keys the archive needs
(digest.key, audit/signing.key, the TLS key) are stored as age files
encrypted to the archive's recipients: a restore needs the identity. The
archive's identity is never in a backup.

TARGET keeps the newest backup only: once a backup is complete (its
manifest durable), the previous one's files that it does not reuse are
removed. A backup interrupted at any point leaves the previous one
complete. The backup is audited (a backup entry).

Check a backup with ` + "`sealmail verify --backup TARGET`" + `; restore it with
` + "`sealmail restore --from TARGET --data NEWDIR --identity FILE`" + `.

--json prints one object: target, backup, created, manifest_sha256, files,
copied_bytes, reused_bytes, checked_bytes, removed_objects, checkpoint_seq,
warnings.` + exitCodes(", TARGET missing or not a backup directory"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBackup(cmd.Context(), g, to, asJSON, cmd.OutOrStdout())
		},
	}
	c.Flags().StringVar(&to, "to", "", "backup target: an existing directory (required)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

func runBackup(ctx context.Context, g *globalOptions, to string, asJSON bool, out io.Writer) (err error) {
	if to == "" {
		return usageError{fmt.Errorf("--to TARGET is required")}
	}
	a, err := connect(ctx, g)
	if err != nil {
		return err
	}
	defer closeArchive(a, &err)
	rep, err := archive.Backup(ctx, a, to, archive.BackupOptions{Program: "sealmail " + version})
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, rep)
	}
	fmt.Fprintf(out, "backup %d in %s: %d files; copied %s, reused %s (checked %s again), removed %d objects of older backups\n",
		rep.Backup, rep.Target, rep.Files, humanBytes(rep.Copied), humanBytes(rep.Reused), humanBytes(rep.Checked), rep.Removed)
	fmt.Fprintf(out, "audit log up to checkpoint seq %d; manifest SHA-256 %s\n", rep.CheckpointSeq, rep.ManifestSHA256)
	for _, w := range rep.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	return nil
}

func newRestoreCommand(g *globalOptions) *cobra.Command {
	var from, identity, config string
	var asJSON bool
	c := &cobra.Command{
		Use:   "restore --from TARGET|s3 --data NEWDIR --identity FILE",
		Short: "Restore the newest backup in TARGET into a new archive directory",
		Long: `Restore the newest backup in TARGET into NEWDIR (--data), which must be
missing or empty. Every file is checked against the backup's manifest as it
is written; the identity decrypts the keys (digest.key, audit/signing.key,
the TLS key). Then the restored archive is opened once: the audit entries
recorded after the backup's catalog copy are reconciled (those messages
were acknowledged after the backup: the report lists them), and every
deletion the audit log records is made again where the catalog copy still
had the message, so that a message purged or erased before the backup stays
gone. The restore is audited.

With --from s3 it rebuilds the archive from the offsite bucket of --config
FILE's [offsite] section alone (docs/offsite.md): the audit log, the
sealed segments in the versions the log vouches for, the keys sealed to the
recipients; the catalog is rebuilt from them as ` + "`sealmail recover`" + ` does. What
was in the active segment at the last sync is not in the bucket: the
report lists those messages.

Interrupted, the restore leaves NEWDIR/restore.incomplete: the daemon
refuses the directory until the same restore, run again, has finished.

Afterwards run ` + "`sealmail verify --data NEWDIR --checkpoint FILE`" + ` with a checkpoint kept off
the host, then start the daemon and rebuild the index, which backups do
not hold: ` + "`sealmail reindex --all --identity FILE`" + `.

--json prints one object: archive, dir, backup, created, files, bytes,
checkpoint, not_in_backup, reapplied_deletions, reclaimed_bytes, warnings.` +
			exitCodes(", NEWDIR not empty, no --identity, or an identity that does not open the backup"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestore(cmd.Context(), g, from, config, identity, asJSON, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&from, "from", "", "backup target to restore from, or s3 for the offsite bucket (required)")
	c.Flags().StringVar(&config, "config", "", "with --from s3: the configuration file whose [offsite] section names the bucket")
	c.Flags().StringVar(&identity, "identity", "", "age identity that opens the backup's keys (required)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

func runRestore(ctx context.Context, g *globalOptions, from, config, identity string, asJSON bool, out, errOut io.Writer) error {
	if from == "" {
		return usageError{fmt.Errorf("--from TARGET is required")}
	}
	if from == "s3" {
		return runRestoreOffsite(ctx, g, config, identity, asJSON, out, errOut)
	}
	ids, err := loadIdentities(identity, errOut)
	if err != nil {
		return err
	}
	rep, err := archive.Restore(ctx, from, g.data, archive.RestoreOptions{Identities: ids, Logger: newLogger(g, nil)})
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, rep)
	}
	fmt.Fprintf(out, "restored backup %d (taken %s) of archive %s into %s: %d files, %s\n",
		rep.Backup, rep.Created.Local().Format(time.RFC3339), rep.Archive, rep.Dir, rep.Files, humanBytes(rep.Bytes))
	printRestoreTail(out, rep)
	return nil
}

// printRestoreTail prints what a restore lacks, redid and warns of, and
// what to do next.
func printRestoreTail(out io.Writer, rep *archive.RestoreReport) {
	if len(rep.NotInBackup) > 0 {
		fmt.Fprintf(out, "not in the backup (acknowledged after its catalog copy was taken): messages %s\n", joinIDs(rep.NotInBackup))
	}
	if len(rep.Reapplied) > 0 {
		fmt.Fprintf(out, "deleted again (the audit log records their deletion): messages %s\n", joinIDs(rep.Reapplied))
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	fmt.Fprintf(out, "next: sealmail verify --data %s --checkpoint FILE; start the daemon; sealmail reindex --all --identity FILE\n", rep.Dir)
}

func joinIDs(ids []uint64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ", ")
}

// runVerifyBackup is `verify --backup TARGET`.
func runVerifyBackup(ctx context.Context, o *verifyOptions, external []archive.Checkpoint, out, errOut io.Writer) error {
	var ids []age.Identity
	if o.identity != "" {
		var err error
		if ids, err = loadIdentities(o.identity, errOut); err != nil {
			return err
		}
	}
	rep, err := archive.VerifyBackup(ctx, o.backup, external, ids)
	if err != nil {
		return fmt.Errorf("verify --backup: %w", err)
	}
	if o.asJSON {
		if err := printJSON(out, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "backup %d of archive %s in %s, taken %s\n", rep.Backup, rep.Archive, rep.Target, rep.Created.Local().Format(time.RFC3339))
		fmt.Fprintf(out, "files: %d, %s; segments: %d, %d records\n", rep.Files, humanBytes(rep.Bytes), rep.Segments, rep.Records)
		fmt.Fprintf(out, "audit log: %d entries; extends %d of %d external checkpoints\n", rep.AuditEntries, rep.External, len(external))
		if o.identity != "" {
			fmt.Fprintf(out, "secrets decrypted and checked: %d\n", rep.Secrets)
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(out, "PROBLEM: %s\n", p)
		}
	}
	if !rep.OK() {
		return exitCodeError{exitProblems, fmt.Errorf("verify --backup found %d problems", len(rep.Problems))}
	}
	if !o.asJSON {
		fmt.Fprintln(out, "OK")
	}
	return nil
}
