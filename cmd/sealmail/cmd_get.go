// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
)

type getOptions struct {
	identity string
	envelope bool
	report   bool
}

func newGetCommand(g *globalOptions) *cobra.Command {
	o := &getOptions{}
	c := &cobra.Command{
		Use:   "get ID",
		Short: "Write an archived message to standard output, byte-exact",
		Long: `Write message ID to standard output exactly as it was received.

The archive is decrypted here, with --identity; the daemon never sees it.
--envelope prints instead every stored envelope as one JSON object per line
(the first delivery, then each further one of the same original);
--report prints the journal report the message arrived in.` + exitCodes("",
			"4 no message ID in the archive, or it was deleted (the error says when and why)"),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			id, err := sealmail.ParseMessageID(args[0])
			if err != nil {
				return usageError{err}
			}
			if o.envelope && o.report {
				return usageError{errors.New("--envelope and --report exclude each other")}
			}
			ids, err := loadIdentities(o.identity, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			a, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer closeArchive(a, &err)
			m, err := a.Get(cmd.Context(), id)
			if errors.Is(err, archive.ErrNotFound) {
				return fmt.Errorf("message %d is not in the archive (see `sealmail list`): %w", id, archive.ErrNotFound)
			}
			if err != nil {
				return err // a deleted message's error says when and why
			}
			out := cmd.OutOrStdout()
			for i := range m.Records {
				original, r, err := m.DecryptRecord(i, ids)
				if errors.Is(err, archive.ErrNoIdentityMatch) {
					return fmt.Errorf("get %d: the identity in %s does not match this archive's recipients (see `sealmail status`)", id, o.identity)
				}
				if err != nil {
					return fmt.Errorf("get %d: %w", id, err)
				}
				switch {
				case o.envelope:
					if err := printJSON(out, r.Envelope); err != nil {
						return err
					}
				case o.report:
					if r.Report != nil {
						_, err := out.Write(r.Report)
						return err
					}
				default:
					_, err := out.Write(original)
					return err
				}
			}
			if o.report {
				return fmt.Errorf("message %d did not arrive in a journal report", id)
			}
			return nil
		},
	}
	c.Flags().StringVar(&o.identity, "identity", "", "age identity file that decrypts the archive (required)")
	c.Flags().BoolVar(&o.envelope, "envelope", false, "print the stored envelopes as JSON lines")
	c.Flags().BoolVar(&o.report, "report", false, "print the journal report as received")
	return c
}
