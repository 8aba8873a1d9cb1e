// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/archive"
)

type initOptions struct {
	recipients  []string
	identityOut string
	asJSON      bool
}

func newInitCommand(g *globalOptions) *cobra.Command {
	o := &initOptions{}
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a new archive",
		Long: `Create a new archive in --data.

Messages are encrypted for the given age recipients (age1…, or post-quantum
age1pq1…). The daemon holds only these public keys: it can write the archive
but never read it. Without --recipient, init generates a post-quantum hybrid
identity, writes it to --identity-out (default DIR/identity.txt, mode 0600)
and records only its recipient. Move that identity off the host.

--json prints one object: archive (id), dir, recipients, identity_file (when
one was generated).` + exitCodes(""),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInit(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringArrayVar(&o.recipients, "recipient", nil, "age recipient to encrypt for (repeatable)")
	c.Flags().StringVar(&o.identityOut, "identity-out", "", "where to write a generated identity (default DIR/identity.txt)")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the result as one JSON object")
	return c
}

func runInit(ctx context.Context, g *globalOptions, o *initOptions, out, errOut io.Writer) error {
	if archive.Exists(g.data) {
		return fmt.Errorf("an archive already exists in %s: nothing changed (use another --data)", g.data)
	}
	recipients := o.recipients
	var identity *age.HybridIdentity
	if len(recipients) == 0 {
		var err error
		if identity, err = age.GenerateHybridIdentity(); err != nil {
			return fmt.Errorf("generate identity: %w", err)
		}
		recipients = []string{identity.Recipient().String()}
		if o.identityOut == "" {
			o.identityOut = filepath.Join(g.data, "identity.txt")
		}
	} else if o.identityOut != "" {
		return usageError{errors.New("--identity-out only applies when init generates the identity (no --recipient)")}
	}
	if err := os.MkdirAll(g.data, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", g.data, err)
	}
	// An existing directory (made by a package, say) gets the mode that
	// serve requires: it will hold the keys and the catalog.
	if err := os.Chmod(g.data, 0o700); err != nil {
		return fmt.Errorf("chmod 700 %s: %w", g.data, err)
	}
	if identity != nil {
		f, err := os.OpenFile(o.identityOut, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("write identity: %w (choose another --identity-out)", err)
		}
		_, err = fmt.Fprintf(f, "# created: %s\n# public key: %s\n%s\n", time.Now().UTC().Format(time.RFC3339), identity.Recipient(), identity)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write identity %s: %w", o.identityOut, err)
		}
	}
	a, err := archive.Create(g.data, recipients, archive.Options{})
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	st, err := a.Status(ctx)
	if cerr := a.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if o.asJSON {
		if err := printJSON(out, struct {
			Archive      string   `json:"archive"`
			Dir          string   `json:"dir"`
			Recipients   []string `json:"recipients"`
			IdentityFile string   `json:"identity_file,omitempty"`
		}{st.Archive, g.data, recipients, o.identityOut}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "created archive %s in %s\n", st.Archive, g.data)
		for _, r := range recipients {
			fmt.Fprintf(out, "encrypting for %s\n", r)
		}
	}
	if identity != nil {
		fmt.Fprintf(errOut, "\nWARNING: the identity that decrypts this archive is in %s.\n"+
			"Anyone who can read it can read every archived message. Move it off this host\n"+
			"(an offline medium, a hardware token, a password manager), keep a backup: without it\n"+
			"the archive cannot be read by anyone.\n", o.identityOut)
	}
	return nil
}
