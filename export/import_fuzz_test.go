// SPDX-License-Identifier: Apache-2.0

package export

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// FuzzMboxSplit feeds arbitrary bytes to the mbox reader (it must end,
// never panic, and hand out no more bytes than it read) and writes two
// arbitrary messages with our mboxrd writer, which the reader must give
// back in the writer's normal form, in both variants' limits.
func FuzzMboxSplit(f *testing.F) {
	for _, s := range []string{
		"", "\n", "From x", "From a Mon Jan  2 15:04:05 2006\n\nFrom b\n", ">From x\n", ">>From x\n\n",
		"From a\n\n\nFrom b\nx\n\nFrom c\r\n\r\n", "a\r\nFrom b\r\n", "x\r", "\r\r\n",
	} {
		f.Add([]byte(s), []byte("Subject: s\n\nFrom y\n"))
	}
	f.Fuzz(func(t *testing.T, file, msg []byte) {
		for _, format := range []MboxFormat{MboxRD, MboxO} {
			r := NewMboxReader(bytes.NewReader(file), "", format, ReaderOptions{MaxMessageBytes: 1 << 10})
			total := 0
			for i := 0; ; i++ {
				if i > len(file)+1 {
					t.Fatalf("%s: more messages than bytes", format)
				}
				m, err := r.Next()
				if err == io.EOF {
					break
				}
				var ie *ItemError
				if errors.As(err, &ie) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				total += len(m.Raw)
			}
			if total > len(file) {
				t.Fatalf("%s: %d bytes out of %d in", format, total, len(file))
			}
		}

		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		it := Item{Raw: msg, Received: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)}
		for range 2 {
			if err := writeMboxMessage(w, it); err != nil {
				t.Fatal(err)
			}
		}
		w.Flush()
		r := NewMboxReader(bytes.NewReader(b.Bytes()), "", MboxRD, ReaderOptions{})
		want := mboxNormal(msg)
		for i := range 2 {
			m, err := r.Next()
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if !bytes.Equal(m.Raw, want) {
				t.Fatalf("message %d = %q, want %q", i, m.Raw, want)
			}
			if !m.Received.Equal(it.Received) {
				t.Fatalf("received %v", m.Received)
			}
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("third Next: %v, want EOF", err)
		}
	})
}
