// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// tools are the external programs this package runs, by format: poppler's
// pdftotext and catdoc's catdoc and xls2csv (Debian packages
// poppler-utils and catdoc). Each reads the attachment from a memfd on its
// standard input ("-" or /dev/stdin: xls2csv needs a seekable file) and
// writes UTF-8 text.
var tools = map[Format]struct {
	name string
	args []string
}{
	PDF: {"pdftotext", []string{"-enc", "UTF-8", "-nopgbrk", "-", "-"}},
	DOC: {"catdoc", []string{"-d", "utf-8", "-w"}},
	XLS: {"xls2csv", []string{"-s", "8859-1", "-d", "utf-8", "-q", "0", "/dev/stdin"}}, // 8-bit BIFF8 strings are Latin-1
}

// findTools resolves every tool's path: configured ones as given, the rest
// from PATH. A tool not found is left out.
func findTools(conf map[string]string) map[string]string {
	out := map[string]string{}
	for _, t := range tools {
		if p, ok := conf[t.name]; ok {
			out[t.name] = p
			continue
		}
		if p, err := exec.LookPath(t.name); err == nil {
			out[t.name] = p
		}
	}
	return out
}

func toolPaths(m map[string]string) []string {
	var out []string
	for _, p := range m {
		out = append(out, p)
	}
	return out
}

// toolEnv is a tool's whole environment: nothing of the caller's.
var toolEnv = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "LC_ALL=C.UTF-8"}

// maxStderr is how much of a tool's standard error is kept to classify a
// failure; the rest is read and dropped.
const maxStderr = 4 << 10

// toolRunner runs the external tools of one extractor.
type toolRunner struct {
	tools map[string]string // name → path
	pol   *policy           // nil inside the sandbox, whose restrictions tools inherit
	opts  Options
}

// tool writes the text a format's tool extracts from data.
func (j *job) tool(f Format, data []byte) {
	t := tools[f]
	out, reason := j.tools.run(j.ctx, t.name, t.args, data, j.lim.MaxTextBytes-j.out.Len())
	j.write(string(out))
	j.write("\n")
	if reason == ReasonOutput {
		j.truncated = true
	} else if reason != "" {
		j.fail(reason)
	}
}

// run runs one tool on data under the runner's limits and returns at most
// maxOut bytes of its output. A reason says why the output is not all of
// the text (ReasonOutput: more than maxOut).
func (r *toolRunner) run(ctx context.Context, name string, args []string, data []byte, maxOut int) ([]byte, Reason) {
	path := r.tools[name]
	if path == "" {
		return nil, ReasonUnavailable
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxReason(err)
	}
	in, err := memfd(data)
	if err != nil {
		return nil, ReasonUnavailable
	}
	defer in.Close()
	p, err := start(path, args, toolEnv, in, r.pol)
	if err != nil {
		return nil, ReasonUnavailable
	}
	// A tool inherits the limits of the sandbox it runs in until these
	// apply, a moment after exec.
	if err := p.limit(rlimits{cpu: r.opts.CPUTime, as: uint64(r.opts.MemoryBytes), fsize: 0, nofile: 64}); err != nil {
		p.kill()
		p.wait()
		return nil, ReasonUnavailable
	}
	stop := context.AfterFunc(ctx, p.kill)
	defer stop()
	errc := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(p.stderr, maxStderr))
		_, _ = io.Copy(io.Discard, p.stderr)
		errc <- b
	}()
	out, _ := io.ReadAll(io.LimitReader(p.stdout, int64(maxOut)+1))
	over := len(out) > maxOut
	if over {
		out = out[:maxOut]
		p.kill()
	}
	st := p.wait()
	stderr := <-errc
	switch {
	case ctx.Err() != nil:
		return out, ctxReason(ctx.Err())
	case over:
		return out, ReasonOutput
	}
	return out, classify(st, stderr, r.opts.CPUTime)
}

func ctxReason(err error) Reason {
	if errors.Is(err, context.DeadlineExceeded) {
		return ReasonTimeout
	}
	return ReasonCanceled
}

// classify turns how a process ended, and what it said on standard error,
// into a reason ("" for success).
func classify(st *os.ProcessState, stderr []byte, cpu time.Duration) Reason {
	msg := strings.ToLower(string(stderr))
	sig := killedBy(st)
	switch {
	case st != nil && st.Success():
		return ""
	case (sig == syscall.SIGXCPU || sig == syscall.SIGKILL) && cpuUsed(st) >= cpu-100*time.Millisecond:
		return ReasonCPU
	case strings.Contains(msg, "out of memory"), strings.Contains(msg, "bad_alloc"),
		strings.Contains(msg, "cannot allocate memory"), strings.Contains(msg, "memory exhausted"),
		strings.Contains(msg, "failed to allocate"), strings.Contains(msg, "address space collisions"): // the race detector's runtime
		return ReasonMemory
	case strings.Contains(msg, "incorrect password"), strings.Contains(msg, "encrypted"):
		return ReasonEncrypted
	case sig != 0:
		return ReasonCrash
	}
	return ReasonMalformed
}
