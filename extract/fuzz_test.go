// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"
)

// seeds adds the generated corpus (small files) to a fuzz target.
func seeds(f *testing.F) {
	paths, _ := filepath.Glob("testdata/corpus/*")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && len(b) <= 64<<10 {
			f.Add(b)
		}
	}
}

// FuzzFile runs every in-process parser (OOXML, OpenDocument, RTF, ZIP,
// TNEF, text; no external tool) on arbitrary bytes: no panic, the bounds
// hold, the text is clean.
func FuzzFile(f *testing.F) {
	seeds(f)
	f.Add(buildTNEF([]byte(`{\rtf1 x}`), "a.txt", []byte("hello")))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		lim := Limits{MaxTextBytes: 64 << 10, MaxUnpackedBytes: 8 << 20}.withDefaults()
		j := newJob(ctx, Options{Limits: lim}, &toolRunner{}) // no tools: external formats are "unavailable"
		j.file(data, "", "fuzz", 0)                           // no recover: a panic fails the run
		checkText(t, j.out.String(), lim.MaxTextBytes)
		if j.unpacked > lim.MaxUnpackedBytes {
			t.Fatalf("unpacked %d bytes, bound %d", j.unpacked, lim.MaxUnpackedBytes)
		}
	})
}

// FuzzRTF checks the RTF reader alone.
func FuzzRTF(f *testing.F) {
	f.Add([]byte(`{\rtf1\ansi\ansicpg1251{\fonttbl{\f1\fcharset128 MS Mincho;}}\f1\'82\'a0 \u1087?\uc2\u-4064 ab{\*\htmltag <p>}\bin3 xyz}`))
	f.Add(readTestdata(f, "corpus/sample.rtf"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _ := rtfText(data, 32<<10)
		if len(s) > 32<<10 {
			t.Fatalf("rtfText returned %d bytes, bound %d", len(s), 32<<10)
		}
	})
}

// FuzzTNEF checks the TNEF and compressed-RTF readers alone.
func FuzzTNEF(f *testing.F) {
	f.Add(buildTNEF([]byte(`{\rtf1 x}`), "a.txt", []byte("hello")))
	f.Add(tnefOf(f, "../../shared/corpus/mime/mimekit/tnef/ukr.eml"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _ := parseTNEF(data)
		if m.rtf != nil {
			out, _ := decompressRTF(m.rtf, 1<<20)
			if len(out) > 1<<20 {
				t.Fatalf("decompressRTF returned %d bytes, bound %d", len(out), 1<<20)
			}
		}
		if out, _ := decompressRTF(data, 1<<20); len(out) > 1<<20 {
			t.Fatalf("decompressRTF returned %d bytes, bound %d", len(out), 1<<20)
		}
	})
}

func checkText(t *testing.T, s string, max int) {
	t.Helper()
	if len(s) > max {
		t.Fatalf("text %d bytes, bound %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		t.Fatalf("text is not valid UTF-8: %q", s)
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			t.Fatalf("text holds control character %U", r)
		}
	}
}
