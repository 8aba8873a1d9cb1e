// SPDX-License-Identifier: Apache-2.0

package mimepart

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// corpusDir is the shared read-only MIME corpus.
const corpusDir = "../../shared/corpus/mime"

// FuzzParse walks the whole part tree of any input, as the callers do
// (body parts, embedded messages in place and decoded), and checks the
// package's promises: no panic, offsets ordered and inside their parent,
// the bounds of Options kept, decoded strings valid UTF-8. Seeds are the
// messages of the shared MIME corpus up to 32 KiB and a few fragments.
func FuzzParse(f *testing.F) {
	n := 0
	err := filepath.WalkDir(corpusDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.Contains(d.Name(), "LICENSE") || strings.HasSuffix(d.Name(), ".md") {
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > 32<<10 {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f.Add(b)
		n++
		return nil
	})
	if err != nil || n < 100 {
		f.Fatalf("read corpus (../shared/corpus/mime): %d files, %v", n, err)
	}
	for _, s := range []string{
		"",
		"\n",
		"From x\n",
		"A: 1\r\n\tb\r\n\r",
		"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\n--b--\n",
		"Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n--b\n--b--",
		"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeA0KDQp5",
		"Content-Type: multipart/digest; boundary=\"\"\n\n--\n\n",
		"Subject: =?utf-7?Q?+AGE-?= =?gb2312?B?1tA=?= =?x?Q?\xff?=\n\nhi",
		"Content-Disposition: attachment; filename*0*=iso-8859-1''%E9; filename*1=x\n\n",
	} {
		f.Add([]byte(s))
	}
	opts := Options{MaxDepth: 6, MaxParts: 64, MaxHeaderFields: 50, MaxFieldBytes: 4096}
	f.Fuzz(func(t *testing.T, data []byte) {
		top := Parse(data, opts)
		count := 0
		var walk func(p *Part, buf []byte, lo, hi int)
		walk = func(p *Part, buf []byte, lo, hi int) {
			count++
			if !(lo <= p.HeaderStart && p.HeaderStart <= p.HeaderEnd && p.HeaderEnd <= p.BodyStart && p.BodyStart <= p.End && p.End <= hi && hi <= len(buf)) {
				t.Fatalf("part offsets %d %d %d %d outside [%d, %d] of %d bytes", p.HeaderStart, p.HeaderEnd, p.BodyStart, p.End, lo, hi, len(buf))
			}
			if p.Depth > opts.MaxDepth || len(p.Header) > opts.MaxHeaderFields {
				t.Fatalf("part at depth %d with %d fields, bounds %d and %d", p.Depth, len(p.Header), opts.MaxDepth, opts.MaxHeaderFields)
			}
			for _, f := range p.Header {
				if len(f.Value) > opts.MaxFieldBytes {
					t.Fatalf("field %s has %d bytes, bound %d", f.Name, len(f.Value), opts.MaxFieldBytes)
				}
				if s, _ := DecodeWords(f.Value); !utf8.ValidString(s) {
					t.Fatalf("DecodeWords(%q) = %q, not UTF-8", f.Value, s)
				}
			}
			for k, v := range p.Params {
				if s, _ := DecodeWords(v); !utf8.ValidString(s) {
					t.Fatalf("parameter %s = %q decodes to %q, not UTF-8", k, v, s)
				}
			}
			body, _ := DecodeTransfer(p.Header.Get("Content-Transfer-Encoding"), p.Body())
			if s, _ := DecodeCharset(p.Params["charset"], body); !utf8.ValidString(s) {
				t.Fatalf("DecodeCharset(%q) is not UTF-8", p.Params["charset"])
			}
			ParseDate(p.Header.Get("Date"))
			for _, c := range p.Parts() {
				if c.Depth != p.Depth+1 {
					t.Fatalf("body part at depth %d under depth %d", c.Depth, p.Depth)
				}
				walk(c, buf, p.BodyStart, p.End)
			}
			if p.ContentType == "message/rfc822" {
				if m := p.Message(); m != nil {
					walk(m, buf, p.BodyStart, p.End)
				}
				if m := p.Nested(body); m != nil {
					walk(m, body, 0, len(body))
				}
			}
		}
		walk(top, data, 0, len(data))
		if count > opts.MaxParts {
			t.Fatalf("walked %d parts, bound %d", count, opts.MaxParts)
		}
	})
}
