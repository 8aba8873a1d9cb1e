// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"context"
	"fmt"
	"time"
)

// Input is one attachment: its decoded bytes and what the message declares
// about it. Nothing in it is trusted.
type Input struct {
	Data        []byte
	ContentType string // declared MIME type, lower-case, without parameters; may be empty or wrong
	Name        string // declared file name; may be empty
}

// Format is a document format this package reads.
type Format string

// Formats. The zero Format is "not a document this package reads".
const (
	PDF  Format = "pdf"
	DOCX Format = "docx"
	XLSX Format = "xlsx"
	PPTX Format = "pptx"
	ODT  Format = "odt"
	ODS  Format = "ods"
	ODP  Format = "odp"
	DOC  Format = "doc"
	XLS  Format = "xls"
	RTF  Format = "rtf"
	ZIP  Format = "zip"
	TNEF Format = "tnef"
	Text Format = "text" // plain text or HTML, inside an archive or TNEF
)

// Reason says why an attachment's text was not extracted, or not all of it.
// The values are stable: index records them ("flag:unextracted-timeout").
type Reason string

// Reasons.
const (
	ReasonTimeout     Reason = "timeout"     // the wall-time limit
	ReasonCPU         Reason = "cpu"         // the CPU-time limit
	ReasonMemory      Reason = "memory"      // the memory limit
	ReasonOutput      Reason = "output"      // the extractor wrote more than the output bound
	ReasonLimit       Reason = "limit"       // an archive bound: depth, entries or unpacked bytes
	ReasonEncrypted   Reason = "encrypted"   // password-protected
	ReasonMalformed   Reason = "malformed"   // the file does not parse, or its tool rejected it
	ReasonCrash       Reason = "crash"       // the extractor died (a signal, a panic)
	ReasonUnavailable Reason = "unavailable" // the format's tool is not installed, or the sandbox could not start
	ReasonCanceled    Reason = "canceled"    // the caller's context ended
)

// Result is what extraction found. Format is empty for an input that is no
// document this package reads (an image, an executable): it has no text and
// no Reason. Otherwise Text holds what could be read (possibly nothing) and
// Reason, when set, says why that is not the whole text. An inner file of an
// archive that fails sets the archive's Reason to its own.
type Result struct {
	Format    Format
	Text      string // valid UTF-8, no control characters but newline and tab
	Truncated bool   // Limits.MaxTextBytes was reached
	Reason    Reason
}

// Limits bound the work spent on one attachment, whichever way it is
// extracted. Zero fields take the defaults.
type Limits struct {
	// MaxInputBytes is the largest attachment read; a larger one is
	// extracted from its first MaxInputBytes (and is truncated). Default 64 MiB.
	MaxInputBytes int
	// MaxTextBytes caps the text returned. Default 4 MiB.
	MaxTextBytes int
	// MaxUnpackedBytes caps the bytes decompressed from ZIP archives and
	// OOXML and OpenDocument packages, all nesting levels together. Default
	// 128 MiB.
	MaxUnpackedBytes int64
	// MaxDepth caps the nesting of archives: a file inside a ZIP is at
	// depth 1, inside a ZIP inside that at depth 2. Default 4.
	MaxDepth int
	// MaxEntries caps the files looked at inside archives, all levels
	// together. Default 10000.
	MaxEntries int
}

// Defaults of [Limits] and [Options].
const (
	DefaultMaxInputBytes    = 64 << 20
	DefaultMaxTextBytes     = 4 << 20
	DefaultMaxUnpackedBytes = 128 << 20
	DefaultMaxDepth         = 4
	DefaultMaxEntries       = 10000
	DefaultTimeout          = 30 * time.Second
	DefaultCPUTime          = 10 * time.Second
	DefaultMemoryBytes      = 512 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxInputBytes <= 0 {
		l.MaxInputBytes = DefaultMaxInputBytes
	}
	if l.MaxTextBytes <= 0 {
		l.MaxTextBytes = DefaultMaxTextBytes
	}
	if l.MaxUnpackedBytes <= 0 {
		l.MaxUnpackedBytes = DefaultMaxUnpackedBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	return l
}

// Options configure a [Sandbox] or a [Local] extractor. The zero value is
// usable for Local; a Sandbox needs Command.
type Options struct {
	Limits
	// Timeout is the wall time one attachment may take, start-up of the
	// sandbox included. Default 30 s.
	Timeout time.Duration
	// CPUTime is the CPU time each process of one extraction may use (the
	// sandboxed extractor, and each tool it runs). Default 10 s.
	CPUTime time.Duration
	// MemoryBytes is the address space each process of one extraction may
	// add to what it had when it started (RLIMIT_AS). Default 512 MiB.
	MemoryBytes int64
	// Command is the argument vector that starts the sandboxed extractor:
	// a program that calls [ServeChild], such as the sealmail binary with
	// its hidden extract subcommand. Command[0] must be an absolute path.
	// Only [Sandbox] uses it.
	Command []string
	// Tools maps a tool name (pdftotext, catdoc, xls2csv) to its
	// path; a missing entry is looked up in PATH when the extractor is
	// made. A format whose tool is not found is not extracted
	// ([ReasonUnavailable]).
	Tools map[string]string
}

func (o Options) withDefaults() Options {
	o.Limits = o.Limits.withDefaults()
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.CPUTime <= 0 {
		o.CPUTime = DefaultCPUTime
	}
	if o.MemoryBytes <= 0 {
		o.MemoryBytes = DefaultMemoryBytes
	}
	return o
}

// Local extracts in the calling process: the Go parsers run in the caller's
// goroutine, and each external tool (pdftotext, catdoc, …) runs as a child
// under the same restrictions and limits a [Sandbox] has. A bug in a Go
// parser is contained only by the limits (a panic is recovered), so Local is
// for tests and trusted input; attachments from the network go through a
// [Sandbox].
type Local struct {
	opts  Options
	tools map[string]string
	pol   *policy
}

// NewLocal returns a Local extractor.
func NewLocal(opts Options) *Local {
	opts = opts.withDefaults()
	tools := findTools(opts.Tools)
	return &Local{opts: opts, tools: tools, pol: newPolicy(toolPaths(tools))}
}

// Extract returns the text of in. It never fails: what cannot be read is
// reported in Result.Reason.
func (l *Local) Extract(ctx context.Context, in Input) Result {
	f := Detect(in.Data, in.ContentType, in.Name)
	if f == "" {
		return Result{}
	}
	ctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	j := newJob(ctx, l.opts, &toolRunner{tools: l.tools, pol: l.pol, opts: l.opts})
	return j.run(in)
}

// run extracts in with the panic guard: a bug in a parser must not stop the
// caller.
func (j *job) run(in Input) (r Result) {
	defer func() {
		if p := recover(); p != nil {
			r = j.result()
			r.Reason = ReasonCrash
		}
	}()
	data := in.Data
	if len(data) > j.lim.MaxInputBytes {
		data = data[:j.lim.MaxInputBytes]
		j.truncated = true
	}
	j.format = j.file(data, in.ContentType, in.Name, 0)
	r = j.result()
	if r.Format == "" && r.Reason == "" && r.Text == "" {
		return Result{}
	}
	return r
}

func (j *job) result() Result {
	r := Result{Format: j.format, Text: j.out.String(), Truncated: j.truncated, Reason: j.reason}
	if r.Format == "" {
		r.Format = j.first
	}
	if r.Reason == "" && j.ctx.Err() != nil {
		r.Reason = ctxReason(j.ctx.Err())
	}
	return r
}

// String describes r without its text.
func (r Result) String() string {
	return fmt.Sprintf("extract{%s %d B truncated=%v reason=%q}", r.Format, len(r.Text), r.Truncated, r.Reason)
}
