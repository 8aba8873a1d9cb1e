// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/sealmail/sealmail/extract"
)

// TestExtractSandbox runs the real sealmail binary as the extraction
// sandbox's child: the check, and a PDF through pdftotext inside it.
func TestExtractSandbox(t *testing.T) {
	t.Parallel()
	needTool(t, "pdftotext", "poppler-utils")
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := extract.NewSandbox(extract.Options{Command: []string{bin, extractChildArg}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sb.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	pdf, err := os.ReadFile("../../extract/testdata/corpus/sample.pdf")
	if err != nil {
		t.Fatal(err)
	}
	r := sb.Extract(ctx, extract.Input{Data: pdf, Name: "a.pdf"})
	if r.Reason != "" || !strings.Contains(r.Text, "sealpdf") {
		t.Errorf("Extract(sample.pdf) = %v %q", r, r.Text)
	}
	t.Logf("sandbox: %+v", sb.Status())
}
