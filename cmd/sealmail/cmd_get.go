// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/store"
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
--report prints the journal report the message arrived in.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			defer a.Close()
			m, err := a.Get(cmd.Context(), id)
			if errors.Is(err, store.ErrDeleted) {
				return errors.New(strings.TrimSuffix(err.Error(), ": "+store.ErrDeleted.Error()))
			}
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("message %d is not in the archive (see `sealmail list`)", id)
			}
			if err != nil {
				return fmt.Errorf("get %d: %w", id, err)
			}
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			for i, r := range m.Records {
				p, err := store.OpenPayload(r.Payload, r.PlainOffset, r.PlainLen, ids...)
				if store.IsNoIdentityMatch(err) {
					return fmt.Errorf("get %d: the identity in %s does not match this archive's recipients (see `sealmail status`)", id, o.identity)
				}
				if err != nil {
					return fmt.Errorf("get %d: record %d: %w", id, i+1, err)
				}
				switch {
				case o.envelope:
					if err := enc.Encode(p.Header.Envelope); err != nil {
						return err
					}
				case o.report:
					if p.Report != nil {
						_, err := out.Write(p.Report)
						return err
					}
				default:
					_, err := out.Write(p.Original)
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
