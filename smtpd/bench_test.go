// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/sealmail/sealmail"
)

// countIngester accepts everything and keeps nothing.
type countIngester struct{ n sealmail.MessageID }

func (c *countIngester) Admit(_ context.Context, _ int64) error { return nil }

func (c *countIngester) Ingest(_ context.Context, _ *sealmail.Envelope, _ []byte) (sealmail.MessageID, error) {
	c.n++
	return c.n, nil
}

// BenchmarkTransaction measures one MAIL/RCPT/content transaction of a
// 10 KiB message on an open loopback connection, without storage cost.
func BenchmarkTransaction(b *testing.B) {
	for _, mode := range []string{"DATA", "BDAT"} {
		b.Run(mode, func(b *testing.B) {
			_, addr := startServer(b, &countIngester{}, Options{Logger: slog.New(slog.DiscardHandler)}, false)
			msg := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-\r\n"), 160)
			stuffed := dotStuff(msg)
			c := dialRaw(b, addr)
			c.expect(220, "")
			c.cmd("EHLO bench.test", 250, "")
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if mode == "DATA" {
					c.send("MAIL FROM:<s@example.org>\r\nRCPT TO:<j@archive.test>\r\nDATA\r\n")
					c.expect(250, "")
					c.expect(250, "")
					c.expect(354, "")
					c.send(stuffed)
				} else {
					c.send(fmt.Sprintf("MAIL FROM:<s@example.org>\r\nRCPT TO:<j@archive.test>\r\nBDAT %d LAST\r\n%s", len(msg), msg))
					c.expect(250, "")
					c.expect(250, "")
				}
				c.expect(250, "2.0.0 Ok: queued as")
			}
		})
	}
}
