// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"context"
	"testing"
)

// BenchmarkExtract measures throughput (MB/s of attachment bytes) per
// format, in-process (Local: the Go parsers, or the tool in its restricted
// child) and in the sandbox (one child process per attachment, start-up
// included). Run: go test -run '^$' -bench BenchmarkExtract ./extract/
func BenchmarkExtract(b *testing.B) {
	exe := testSandboxCommand(b)
	sb, err := NewSandbox(Options{Command: exe})
	if err != nil {
		b.Fatal(err)
	}
	local := NewLocal(Options{})
	for _, c := range corpus {
		data := readTestdata(b, "corpus/"+c.file)
		for _, ex := range []struct {
			name string
			ex   interface {
				Extract(context.Context, Input) Result
			}
		}{{"local", local}, {"sandbox", sb}} {
			b.Run(c.file+"/"+ex.name, func(b *testing.B) {
				if c.tool != "" {
					needTool(b, c.tool, "poppler-utils catdoc")
				}
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if r := ex.ex.Extract(context.Background(), Input{Data: data, Name: c.file}); r.Reason != "" {
						b.Fatal(r)
					}
				}
			})
		}
	}
}
