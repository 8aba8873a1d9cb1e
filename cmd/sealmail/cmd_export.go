// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/export"
	"github.com/sealmail/sealmail/store"
)

type exportOptions struct {
	query, format, out, identity string
}

func newExportCommand(g *globalOptions) *cobra.Command {
	o := &exportOptions{}
	c := &cobra.Command{
		Use:   "export --query Q --format eml|mbox|pst --out PATH --identity FILE",
		Short: "Export the messages a query matches, with a chain-of-custody manifest",
		Long: `Export every message a query matches (see ` + "`sealmail search --help`" + `; '*' is
every message), decrypted here with --identity:

  eml   one .eml file per message, the original bytes, named by date and id:
        into a new directory (--out DIR) or a zip (--out FILE.zip)
  mbox  one mboxrd file (line ends as LF)
  pst   an Outlook .pst file, one folder, with Bcc recipients from the envelope

Every export gets manifest.csv and manifest.json (id, date, from, to,
subject, size, SHA-256 of each message) and manifest.sha256, which
` + "`sha256sum -c`" + ` verifies; see docs/export.md. The export is audited with its
query, count and the manifest's hash.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExport(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&o.query, "query", "", "which messages (required; '*' for all)")
	c.Flags().StringVar(&o.format, "format", "eml", "eml, mbox or pst")
	c.Flags().StringVar(&o.out, "out", "", "output directory, .zip, .mbox or .pst file (must not exist)")
	c.Flags().StringVar(&o.identity, "identity", "", "age identity that decrypts the archive (required)")
	return c
}

func runExport(ctx context.Context, g *globalOptions, o *exportOptions, out, errOut io.Writer) error {
	if o.query == "" || o.out == "" {
		return usageError{errors.New("--query and --out are required (--query '*' exports everything)")}
	}
	ids, err := loadIdentities(o.identity, errOut)
	if err != nil {
		return err
	}
	a, err := connect(ctx, g)
	if err != nil {
		return err
	}
	defer a.Close()
	matches, err := a.IDs(ctx, o.query)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	opts := export.Options{Tool: "sealmail " + version, Query: o.query}
	var w export.Writer
	switch o.format {
	case "eml":
		if strings.HasSuffix(strings.ToLower(o.out), ".zip") {
			w, err = export.NewEMLZip(o.out, opts)
		} else {
			w, err = export.NewEMLDir(o.out, opts)
		}
	case "mbox":
		w, err = export.NewMbox(o.out, opts)
	case "pst":
		w, err = export.NewPST(o.out, opts)
	default:
		return usageError{fmt.Errorf("--format %q: want eml, mbox or pst", o.format)}
	}
	if err != nil {
		return err
	}
	progress := func(int) {}
	if f, ok := errOut.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		progress = func(n int) {
			if n%50 == 0 || n == len(matches) {
				fmt.Fprintf(errOut, "\rexported %d of %d", n, len(matches))
			}
		}
	}
	for i, id := range matches {
		it, err := decryptItem(ctx, a, id, ids, o.identity)
		if err == nil {
			err = w.Add(ctx, it)
		}
		if err != nil {
			w.Close()
			return fmt.Errorf("export message %d: %w", id, err)
		}
		progress(i + 1)
	}
	if err := w.Close(); err != nil {
		return err
	}
	m := w.Manifest()
	rec := archive.ExportRecord{Query: o.query, Format: o.format, Output: o.out, Count: m.Count,
		ManifestSHA256: m.SumFile.SHA256, OutputSHA256: m.Output.SHA256}
	for _, id := range matches {
		rec.IDs = append(rec.IDs, uint64(id))
	}
	if err := a.RecordExport(ctx, rec); err != nil {
		return fmt.Errorf("export written, but not audited: %w", err)
	}
	fmt.Fprintf(out, "exported %d messages to %s\nmanifest.sha256 SHA-256: %s\n", m.Count, o.out, m.SumFile.SHA256)
	return nil
}

// decryptItem reads one message and all its envelopes.
func decryptItem(ctx context.Context, a archiveAPI, id sealmail.MessageID, ids []age.Identity, identity string) (export.Item, error) {
	m, err := a.Get(ctx, id)
	if err != nil {
		return export.Item{}, err
	}
	it := export.Item{ID: id, Received: m.Received}
	for k, rec := range m.Records {
		p, err := store.OpenPayload(rec.Payload, rec.PlainOffset, rec.PlainLen, ids...)
		if store.IsNoIdentityMatch(err) {
			return it, fmt.Errorf("the identity in %s does not match this archive's recipients", identity)
		}
		if err != nil {
			return it, err
		}
		if k == 0 {
			it.Raw = p.Original
		}
		if p.Header.Envelope != nil {
			it.Envelopes = append(it.Envelopes, *p.Header.Envelope)
		}
	}
	return it, nil
}
