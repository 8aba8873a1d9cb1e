// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newGendocsCommand is the hidden `gendocs`: `make deb` writes the man
// pages and shell completions of the package with it, so they always match
// the commands and flags of the binary they ship with.
func newGendocsCommand() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:    "gendocs --out DIR",
		Short:  "Write man pages (DIR/man) and bash, zsh and fish completions (DIR/completion)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("gendocs: --out is required")}
			}
			return genDocs(cmd.Root(), out)
		},
	}
	c.Flags().StringVar(&out, "out", "", "directory to write into")
	return c
}

// genDocs writes one man page per command (section 1) to out/man and the
// completion scripts to out/completion. The man pages' date comes from
// SOURCE_DATE_EPOCH when it is set (reproducible builds).
func genDocs(root *cobra.Command, out string) error {
	root.DisableAutoGenTag = true
	man := filepath.Join(out, "man")
	comp := filepath.Join(out, "completion")
	for _, d := range []string{man, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("gendocs: %w", err)
		}
	}
	header := &doc.GenManHeader{Title: "SEALMAIL", Section: "1", Source: "sealmail " + version, Manual: "sealmail manual"}
	if err := doc.GenManTree(root, header, man); err != nil {
		return fmt.Errorf("gendocs: man pages in %s: %w", man, err)
	}
	for _, g := range []struct {
		file string
		gen  func(string) error
	}{
		{"sealmail.bash", func(f string) error { return root.GenBashCompletionFileV2(f, true) }},
		{"_sealmail", root.GenZshCompletionFile},
		{"sealmail.fish", func(f string) error { return root.GenFishCompletionFile(f, true) }},
	} {
		if err := g.gen(filepath.Join(comp, g.file)); err != nil {
			return fmt.Errorf("gendocs: completion %s: %w", g.file, err)
		}
	}
	return nil
}
