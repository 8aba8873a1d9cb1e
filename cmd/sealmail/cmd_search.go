// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sealmail/sealmail/reader"
)

func newSearchCommand(g *globalOptions) *cobra.Command {
	var (
		asJSON, count, oldest bool
		limit, offset         int
	)
	c := &cobra.Command{
		Use:   "search QUERY",
		Short: "Search archived messages",
		Long: `Search archived messages, newest first. The query language:

  from: to: cc: bcc:    an address, a domain (from:@example.com) or a word of a name
                        (to: covers To, Cc, Bcc and the envelope recipients)
  subject: body: attachment: filename: message-id:
  after:YYYY-MM-DD (inclusive)  before:YYYY-MM-DD (exclusive)  has:attachment
  larger:10M  smaller:500K
  flag:unextracted      an attachment whose text could not be extracted (fully);
                        flag:unextracted-timeout, -memory, -encrypted, -malformed, …
  bare words (ANDed), "quoted phrases", AND OR NOT, -term, ( )
  stem:word             any form of the word's English stem (stem:befriend finds
                        befriended, befriending); otherwise a word finds that word only
  (a phrase is exact in subject, names, addresses and attachment names; in the
  body and attachment text it finds all of its words)
  (bare words and attachment: also search the text of PDF, Word, Excel, OOXML,
  OpenDocument, RTF, ZIP and winmail.dat attachments where the index extracts it)

Examples:
  sealmail search 'from:@contoso.com subject:invoice after:2025-01-01'
  sealmail search --count 'to:bob@example.com OR cc:bob@example.com'

The reader service searches (see ` + "`sealmail access`" + `); every search is audited.
It prints to standard error how far its index covers the archive: mail
archived but not indexed yet is not found yet.

--json prints one object per line: id, date, from, subject, size, has_attachment;
with --count, one object: total.` + exitCodes(", a query that does not parse", noReaderCode),
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if limit < 0 || offset < 0 {
				return usageError{fmt.Errorf("--limit and --offset must not be negative")}
			}
			if limit > reader.MaxSearchLimit {
				return usageError{fmt.Errorf("--limit %d: at most %d (page with --offset)", limit, reader.MaxSearchLimit)}
			}
			q := strings.Join(args, " ")
			if err := reader.CheckQuery(q); err != nil {
				return usageError{fmt.Errorf("search: %w", err)}
			}
			c, err := connectReader(g)
			if err != nil {
				return err
			}
			defer c.Close()
			o := reader.SearchOptions{Limit: limit, Offset: offset, Oldest: oldest}
			if count {
				o.Limit = 1
			}
			res, err := c.Search(cmd.Context(), q, o)
			if err != nil {
				return readerError(fmt.Errorf("search: %w", err))
			}
			if !res.Coverage.CaughtUp || res.Coverage.NotIndexed > 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), coverageNote(res.Coverage))
			}
			out := cmd.OutOrStdout()
			if count {
				if asJSON {
					return printJSON(out, struct {
						Total int `json:"total"`
					}{res.Total})
				}
				_, err := fmt.Fprintln(out, res.Total)
				return err
			}
			if asJSON {
				for _, h := range res.Hits {
					if err := printJSON(out, struct {
						ID            uint64    `json:"id"`
						Date          time.Time `json:"date"`
						From          string    `json:"from"`
						Subject       string    `json:"subject"`
						Size          int64     `json:"size"`
						HasAttachment bool      `json:"has_attachment"`
					}{uint64(h.ID), h.Date, h.From, h.Subject, h.Size, h.HasAttachment}); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDATE\tFROM\tSUBJECT")
			for _, h := range res.Hits {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", h.ID, h.Date.Format("2006-01-02 15:04"), h.From, h.Subject)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d of %d matches\n", len(res.Hits), res.Total)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	c.Flags().BoolVar(&count, "count", false, "print only the number of matches")
	c.Flags().BoolVar(&oldest, "oldest", false, "oldest first")
	c.Flags().IntVar(&limit, "limit", 50, "at most N results")
	c.Flags().IntVar(&offset, "offset", 0, "skip the first N results")
	return c
}
