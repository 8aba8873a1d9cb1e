// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/store"
)

type verifyOptions struct {
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

It runs while the daemon runs (through the control socket). Exit code 3
when a problem is found.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&o.identity, "identity", "", "age identity: also decrypt and check every message")
	c.Flags().StringArrayVar(&o.checkpoints, "checkpoint", nil, "file with checkpoints from `sealmail audit checkpoint` (repeatable)")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	return c
}

func readCheckpoints(files []string) ([]audit.Checkpoint, error) {
	var out []audit.Checkpoint
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		cps, err := audit.ParseCheckpoints(b)
		if err != nil {
			return nil, fmt.Errorf("checkpoint file %s: %w", f, err)
		}
		out = append(out, cps...)
	}
	return out, nil
}

func runVerify(ctx context.Context, g *globalOptions, o *verifyOptions, out, errOut io.Writer) error {
	external, err := readCheckpoints(o.checkpoints)
	if err != nil {
		return usageError{err}
	}
	a, err := connect(ctx, g)
	if err != nil {
		return err
	}
	defer a.Close()
	rep, err := a.Verify(ctx, external)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	var decrypted int
	if o.identity != "" {
		if decrypted, err = verifyContent(ctx, g, a, o.identity, errOut, func(p string) { rep.Problems = append(rep.Problems, p) }); err != nil {
			return err
		}
	}
	if o.asJSON {
		if err := json.NewEncoder(out).Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "archive %s\n", rep.Archive)
		fmt.Fprintf(out, "segments: %d (%d sealed), %d records, %d entries, %s\n", rep.Segments, rep.Sealed, rep.Records, rep.Entries, humanBytes(rep.Bytes))
		fmt.Fprintf(out, "audit log: %d entries, %d signed checkpoints, head %s; extends %d of %d external checkpoints\n",
			rep.AuditEntries, rep.Checkpoints, rep.AuditHead, rep.External, len(external))
		if o.identity != "" {
			fmt.Fprintf(out, "decrypted and checked: %d messages\n", decrypted)
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

// verifyContent decrypts every record of every message and checks the
// original's SHA-256 (OpenPayload) and keyed digest.
func verifyContent(ctx context.Context, g *globalOptions, a archiveAPI, identity string, errOut io.Writer, problem func(string)) (int, error) {
	ids, err := loadIdentities(identity, errOut)
	if err != nil {
		return 0, err
	}
	var key []byte
	if b, err := os.ReadFile(filepath.Join(g.data, "digest.key")); err == nil {
		key, _ = hex.DecodeString(strings.TrimSpace(string(b)))
	} else {
		fmt.Fprintf(errOut, "note: %v: keyed digests not checked\n", err)
	}
	rows, err := a.List(ctx, archive.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rows {
		m, err := a.Get(ctx, sealmail.MessageID(r.ID))
		if err != nil {
			problem(fmt.Sprintf("message %d: %v", r.ID, err))
			continue
		}
		var original []byte
		for i, rec := range m.Records {
			p, err := store.OpenPayload(rec.Payload, rec.PlainOffset, rec.PlainLen, ids...)
			if store.IsNoIdentityMatch(err) {
				return n, fmt.Errorf("the identity in %s does not match this archive's recipients", identity)
			}
			if err != nil {
				problem(fmt.Sprintf("message %d receipt %d: %v", r.ID, i+1, err))
				continue
			}
			if i == 0 {
				original = p.Original
			}
		}
		if key != nil && original != nil && len(m.Records) > 0 {
			if d := store.KeyedDigest(key, original); !bytes.Equal(d[:], m.Records[0].Digest) {
				problem(fmt.Sprintf("message %d: the decrypted original's keyed digest differs from the stored one", r.ID))
			}
		}
		n++
	}
	return n, nil
}
