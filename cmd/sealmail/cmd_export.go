// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sealmail/sealmail/archive"
)

type exportOptions struct {
	query, format, out, identity string
	asJSON                       bool
}

func newExportCommand(g *globalOptions) *cobra.Command {
	o := &exportOptions{}
	c := &cobra.Command{
		Use:   "export --query Q --format eml|mbox|pst --out PATH --identity FILE",
		Short: "Export the messages a query matches, with a chain-of-custody manifest",
		Long: `Export every message a query matches (see 'sealmail search --help'; '*' is
every message), decrypted here with --identity:

  eml   one .eml file per message, the original bytes, named by date and id:
        into a new directory (--out DIR) or a zip (--out FILE.zip)
  mbox  one mboxrd file (line ends as LF)
  pst   an Outlook .pst file, one folder, with Bcc recipients from the envelope

Every export gets manifest.csv and manifest.json (id, date, from, to,
subject, size, SHA-256 of each message) and manifest.sha256, which
'sha256sum -c' verifies; see docs/export.md. The export is audited with its
query, count and the manifest's hash.

--json prints one object: count, out, format, manifest_sha256 (of
manifest.sha256), output_sha256 (of a zip, mbox or pst file).` + exitCodes(", a query that does not parse"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExport(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&o.query, "query", "", "which messages (required; '*' for all)")
	c.Flags().StringVar(&o.format, "format", "eml", "eml, mbox or pst")
	c.Flags().StringVar(&o.out, "out", "", "output directory, .zip, .mbox or .pst file (must not exist)")
	c.Flags().StringVar(&o.identity, "identity", "", "age identity that decrypts the archive (required)")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the result as one JSON object")
	return c
}

func runExport(ctx context.Context, g *globalOptions, o *exportOptions, out, errOut io.Writer) (err error) {
	if o.query == "" || o.out == "" {
		return usageError{errors.New("--query and --out are required (--query '*' exports everything)")}
	}
	switch o.format {
	case "eml", "mbox", "pst":
	default:
		return usageError{fmt.Errorf("--format %q: want eml, mbox or pst", o.format)}
	}
	ids, err := loadIdentities(o.identity, errOut)
	if err != nil {
		return err
	}
	a, err := connect(ctx, g)
	if err != nil {
		return err
	}
	defer closeArchive(a, &err)
	eo := archive.ExportOptions{Query: o.query, Format: o.format, Out: o.out, Tool: "sealmail " + version}
	if f, ok := errOut.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		eo.Progress = func(n, total int) {
			if n%50 == 0 || n == total {
				fmt.Fprintf(errOut, "\rexported %d of %d", n, total)
			}
		}
	}
	rep, err := archive.Export(ctx, a, ids, eo)
	if err != nil {
		return fmt.Errorf("export: %w", identityError(err, o.identity))
	}
	if o.asJSON {
		return printJSON(out, rep)
	}
	fmt.Fprintf(out, "exported %d messages to %s\nmanifest.sha256 SHA-256: %s\n", rep.Count, rep.Out, rep.ManifestSHA256)
	return nil
}
