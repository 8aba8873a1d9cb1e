// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"
)

// errFull stops a parser once the text bound is reached; errLimit once an
// archive bound is.
var (
	errFull  = errors.New("extract: text bound reached")
	errLimit = errors.New("extract: archive bound reached")
)

// job is one extraction: the bounds shared by every nesting level and the
// text found so far. It runs in one goroutine.
type job struct {
	ctx   context.Context
	lim   Limits
	tools *toolRunner

	out       strings.Builder
	unpacked  int64 // bytes decompressed so far, all levels
	entries   int   // archive entries looked at so far
	format    Format
	first     Format // the format of the outermost file
	truncated bool
	reason    Reason
}

func newJob(ctx context.Context, opts Options, tools *toolRunner) *job {
	return &job{ctx: ctx, lim: opts.Limits, tools: tools}
}

// fail records the first reason; later ones are dropped.
func (j *job) fail(r Reason) {
	if j.reason == "" {
		j.reason = r
	}
}

// full reports whether no more text fits.
func (j *job) full() bool { return j.out.Len() >= j.lim.MaxTextBytes }

// stopped reports whether extraction must end: the text is full or the
// deadline passed.
func (j *job) stopped() bool { return j.full() || j.ctx.Err() != nil }

// write appends text, cleaned (valid UTF-8, control characters but newline
// and tab turned into spaces), within the text bound.
func (j *job) write(s string) {
	if s == "" || j.full() {
		return
	}
	room := j.lim.MaxTextBytes - j.out.Len()
	for len(s) > 0 && room > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n <= 1:
			r = '\uFFFD'
		case r < 0x20 && r != '\n' && r != '\t', r == 0x7f:
			r = ' '
		}
		if utf8.RuneLen(r) > room {
			break
		}
		j.out.WriteRune(r)
		room -= utf8.RuneLen(r)
		s = s[n:]
	}
	if len(s) > 0 {
		j.truncated = true
	}
}

// line writes s and a newline.
func (j *job) line(s string) {
	if s == "" {
		return
	}
	j.write(s)
	j.write("\n")
}

// file extracts one file at nesting depth depth and returns its format.
func (j *job) file(data []byte, contentType, name string, depth int) Format {
	if j.stopped() {
		return ""
	}
	f := Detect(data, contentType, name)
	if f == ZIP || f == DOCX || f == XLSX || f == PPTX || f == ODT || f == ODS || f == ODP {
		f = j.zipKind(data, f)
	}
	if j.first == "" {
		j.first = f
	}
	switch f {
	case PDF, DOC, XLS:
		j.tool(f, data)
	case DOCX, XLSX, PPTX:
		j.ooxml(f, data)
	case ODT, ODS, ODP:
		j.odf(data)
	case RTF:
		j.rtf(data)
	case ZIP:
		j.zip(data, depth)
	case TNEF:
		j.tnef(data, depth)
	case Text:
		j.text(data, name, contentType)
	}
	return f
}

// text writes a plain text or HTML file.
func (j *job) text(data []byte, name, contentType string) {
	s := decodeText(data)
	n := strings.ToLower(name)
	if contentType == "text/html" || strings.HasSuffix(n, ".htm") || strings.HasSuffix(n, ".html") {
		s = HTMLText(s)
	}
	j.line(s)
}

// decodeText reads bytes of unknown encoding: UTF-8 when valid (a BOM
// dropped), UTF-16 with a BOM, else windows-1252.
func decodeText(b []byte) string {
	switch {
	case len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf:
		b = b[3:]
	case len(b) >= 2 && (b[0] == 0xff && b[1] == 0xfe || b[0] == 0xfe && b[1] == 0xff):
		return utf16Text(b[2:], b[0] == 0xfe)
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return decodeCodepage(1252, b)
}
