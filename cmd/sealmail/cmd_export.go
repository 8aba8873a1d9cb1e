// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sealmail/sealmail/reader"
	"github.com/sealmail/sealmail/vfs"
)

type exportOptions struct {
	query, format, out, identity string
	noWait, asJSON               bool
}

func newExportCommand(g *globalOptions) *cobra.Command {
	o := &exportOptions{}
	c := &cobra.Command{
		Use:   "export --query Q --format eml|mbox|pst --out PATH",
		Short: "Export the messages a query matches, with a chain-of-custody manifest",
		Long: `Export every message a query matches (see 'sealmail search --help'; '*' is
every message). The reader service (` + "`sealmail access`" + `) decrypts and writes the
export as a job in its state directory; this command waits for it, copies it
to --out and removes the job:

  eml   one .eml file per message, the original bytes, named by date and id:
        into a new directory (--out DIR) or a zip (--out FILE.zip)
  mbox  one mboxrd file (line ends as LF)
  pst   an Outlook .pst file, one folder, with Bcc recipients from the envelope

The export first waits until the reader's index covers everything the
archive held when it started; with --no-wait it exports what is indexed now
and names the messages it may have left out. Every export gets manifest.csv
and manifest.json (id, date, from, to, subject, size, SHA-256 of each
message) and manifest.sha256, which 'sha256sum -c' verifies; see
docs/export.md. The export is audited with its query, count and the
manifest's hash, and every message read with it.

--json prints one object: count, out, format, manifest_sha256 (of
manifest.sha256), output_sha256 (of a zip, mbox or pst file), not_covered.` + exitCodes(", a query that does not parse", noReaderCode),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExport(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&o.query, "query", "", "which messages (required; '*' for all)")
	c.Flags().StringVar(&o.format, "format", "eml", "eml, mbox or pst")
	c.Flags().StringVar(&o.out, "out", "", "output directory, .zip, .mbox or .pst file (must not exist)")
	c.Flags().BoolVar(&o.noWait, "no-wait", false, "export what is indexed now; name what may be left out")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the result as one JSON object")
	c.Flags().StringVar(&o.identity, "identity", "", "ignored: the reader service decrypts")
	_ = c.Flags().MarkDeprecated("identity", "the reader service decrypts exports")
	return c
}

// exportReport is what export prints.
type exportReport struct {
	Count          int      `json:"count"`
	Out            string   `json:"out"`
	Format         string   `json:"format"`
	ManifestSHA256 string   `json:"manifest_sha256"`
	OutputSHA256   string   `json:"output_sha256,omitempty"`
	NotCovered     []uint64 `json:"not_covered,omitempty"`
}

func runExport(ctx context.Context, g *globalOptions, o *exportOptions, out, errOut io.Writer) error {
	if o.query == "" || o.out == "" {
		return usageError{errors.New("--query and --out are required (--query '*' exports everything)")}
	}
	switch o.format {
	case "eml", "mbox", "pst":
	default:
		return usageError{fmt.Errorf("--format %q: want eml, mbox or pst", o.format)}
	}
	if err := reader.CheckQuery(o.query); err != nil {
		return usageError{fmt.Errorf("export: %w", err)}
	}
	if _, err := os.Lstat(o.out); err == nil {
		return usageError{fmt.Errorf("--out %s exists: the export must not overwrite anything", o.out)}
	}
	name := filepath.Base(o.out)
	return withReader(g, func(c *reader.Client) error {
		job, err := c.Export(ctx, reader.ExportRequest{Query: o.query, Format: o.format, Name: name, NoWait: o.noWait})
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		tty := false
		if f, ok := errOut.(*os.File); ok {
			tty = term.IsTerminal(int(f.Fd()))
		}
		for job.State == reader.JobWaiting || job.State == reader.JobExporting {
			if err := sleepCtx(ctx, pollEvery); err != nil {
				return err
			}
			if job, err = c.ExportJob(ctx, job.ID); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			if tty && job.State == reader.JobWaiting {
				fmt.Fprintf(errOut, "\rwaiting for the index: entry %d of %d", job.IndexedSeq, job.Target)
			} else if tty {
				fmt.Fprintf(errOut, "\rexported %d of %d", job.Done, job.Total)
			}
		}
		if tty {
			fmt.Fprintln(errOut)
		}
		if job.State != reader.JobDone {
			return fmt.Errorf("export job %s %s: %s", job.ID, job.State, job.Error)
		}
		if err := copyExport(job.Dir, name, filepath.Dir(o.out)); err != nil {
			return fmt.Errorf("export written in %s, but copying it failed: %w", job.Dir, err)
		}
		if err := c.DeleteExportJob(ctx, job.ID); err != nil {
			return fmt.Errorf("export copied to %s; removing job %s: %w", o.out, job.ID, err)
		}
		rep := exportReport{Count: job.Done, Out: o.out, Format: o.format, ManifestSHA256: job.ManifestSHA256,
			OutputSHA256: job.OutputSHA256, NotCovered: job.NotCovered}
		if o.asJSON {
			return printJSON(out, rep)
		}
		fmt.Fprintf(out, "exported %d messages to %s\nmanifest.sha256 SHA-256: %s\n", rep.Count, rep.Out, rep.ManifestSHA256)
		if len(job.NotCovered) > 0 {
			fmt.Fprintf(out, "not indexed when it ran, so perhaps left out: %s\n", idList(job.NotCovered))
		}
		return nil
	})
}

// copyExport copies an export's output name (a file or a directory) and the
// manifests beside it from the job's directory into dir, each file
// fsync'd. The names stay: the manifests name the files.
func copyExport(job, name, dir string) error {
	des, err := os.ReadDir(job)
	if err != nil {
		return err
	}
	for _, de := range des {
		n := de.Name()
		if n != name && !strings.HasPrefix(n, name+".manifest.") {
			continue
		}
		err := filepath.WalkDir(filepath.Join(job, n), func(src string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(job, src)
			dst := filepath.Join(dir, rel)
			if d.IsDir() {
				return os.Mkdir(dst, 0o700)
			}
			return copyFile(src, dst)
		})
		if err != nil {
			return err
		}
	}
	return vfs.SyncDir(nil, dir)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
