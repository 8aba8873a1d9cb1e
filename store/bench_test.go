// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
)

// BenchmarkAppend measures durable appends of 10 KB messages from 16
// concurrent writers (as 16 SMTP sessions would), with the post-quantum
// recipient the CLI creates by default.
func BenchmarkAppend(b *testing.B) {
	for _, pq := range []bool{false, true} {
		b.Run(fmt.Sprintf("pq=%v", pq), func(b *testing.B) {
			var rcpt string
			if pq {
				id, _ := age.GenerateHybridIdentity()
				rcpt = id.Recipient().String()
			} else {
				id, _ := age.GenerateX25519Identity()
				rcpt = id.Recipient().String()
			}
			s, err := Create(b.TempDir(), []string{rcpt}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			body := make([]byte, 10<<10)
			for i := range body {
				body[i] = "abcdefghijklmnopqrstuvwxyz \r\n"[rand.IntN(29)]
			}
			var n atomic.Int64
			b.SetBytes(int64(len(body)))
			b.SetParallelism(8) // 16 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m := &Message{Original: append(fmt.Appendf(nil, "Message-ID: <%d@bench>\r\n", n.Add(1)), body...), Received: time.Now()}
					if _, err := s.Append(context.Background(), m); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
