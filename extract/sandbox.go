// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Sandbox extracts each attachment in a new child process (Options.Command,
// which calls [ServeChild]) that runs under the restrictions described at
// [policy] and these limits, and is killed when it overruns one:
//
//   - wall time Options.Timeout, start-up included (the process group is
//     killed: the child and any tool it runs);
//   - CPU time Options.CPUTime per process (RLIMIT_CPU);
//   - address space Options.MemoryBytes beyond the child's size at start
//     (RLIMIT_AS), and each tool's to Options.MemoryBytes;
//   - output: the child's answer is read up to twice MaxTextBytes;
//   - no files written (RLIMIT_FSIZE allows only the memfd a tool reads);
//     64 file descriptors; no core dumps.
//
// The child gets an empty environment but PATH, a locale and Go runtime
// settings: no credential of the caller reaches it. A Sandbox is safe for
// concurrent use; each call of Extract runs one child, so the caller bounds
// the concurrency.
type Sandbox struct {
	opts  Options
	tools map[string]string
	pol   *policy
}

// NewSandbox checks opts.Command and the tools and returns a Sandbox. It
// does not start a child: [Sandbox.Check] does.
func NewSandbox(opts Options) (*Sandbox, error) {
	opts = opts.withDefaults()
	if len(opts.Command) == 0 || !filepath.IsAbs(opts.Command[0]) {
		return nil, fmt.Errorf("extract: sandbox command %q: need an absolute path", opts.Command)
	}
	if _, err := os.Stat(opts.Command[0]); err != nil {
		return nil, fmt.Errorf("extract: sandbox command: %w", err)
	}
	tools := findTools(opts.Tools)
	return &Sandbox{opts: opts, tools: tools, pol: newPolicy(append([]string{opts.Command[0]}, toolPaths(tools)...))}, nil
}

// Status says which restrictions and limits are in force, for the logs
// and the status page. Missing tools are named.
type Status struct {
	Landlock string // "ABI 7 (files, tcp, signals, abstract sockets)" or "unavailable"
	Seccomp  string
	Limits   string
	Missing  []string // tools not found: their formats are not extracted
}

// Status reports what is in force.
func (s *Sandbox) Status() Status {
	st := Status{Limits: fmt.Sprintf("wall %s, cpu %s, memory %d MiB, text %d MiB",
		s.opts.Timeout, s.opts.CPUTime, s.opts.MemoryBytes>>20, s.opts.MaxTextBytes>>20)}
	st.Landlock, st.Seccomp = s.pol.describe()
	for _, t := range tools {
		if s.tools[t.name] == "" {
			st.Missing = append(st.Missing, t.name)
		}
	}
	return st
}

// Check runs one child on a small document and returns an error if it
// cannot start or does not answer as it should: a misconfigured Command, or
// a kernel that refuses the restrictions.
func (s *Sandbox) Check(ctx context.Context) error {
	r, err := s.extract(ctx, Input{Data: []byte(`{\rtf1 sandbox check}`), Name: "check.rtf"})
	if err != nil {
		return err
	}
	if r.Text != "sandbox check" || r.Format != RTF {
		return fmt.Errorf("extract: sandbox check: got %v", r)
	}
	return nil
}

// Extract returns the text of in, extracted in a child process. It never
// fails: a child that cannot start, overruns a limit or dies is reported in
// Result.Reason.
func (s *Sandbox) Extract(ctx context.Context, in Input) Result {
	f := Detect(in.Data, in.ContentType, in.Name)
	if f == "" {
		return Result{}
	}
	r, err := s.extract(ctx, in)
	if err != nil {
		return Result{Format: f, Reason: ReasonUnavailable}
	}
	if r.Format == "" && r.Reason != "" {
		r.Format = f
	}
	return r
}

// request is the header the child reads before the attachment's bytes.
type request struct {
	Version     int               `json:"v"`
	Size        int               `json:"size"`
	ContentType string            `json:"type"`
	Name        string            `json:"name"`
	Limits      Limits            `json:"limits"`
	TimeoutMS   int64             `json:"timeout_ms"`
	CPUMS       int64             `json:"cpu_ms"`
	MemoryBytes int64             `json:"memory"`
	Tools       map[string]string `json:"tools"`
}

// response is the child's answer.
type response struct {
	Format    Format `json:"format"`
	Text      string `json:"text"`
	Truncated bool   `json:"truncated"`
	Reason    Reason `json:"reason"`
}

const (
	protocolVersion = 1
	readyByte       = 'R' // the child is up and its limits may be set
	maxHeader       = 64 << 10
)

// extract runs one child. An error means the child could not be started
// or set up; everything after that is a Result.
func (s *Sandbox) extract(ctx context.Context, in Input) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{Reason: ctxReason(err)}, nil
	}
	data := in.Data
	truncated := false
	if len(data) > s.opts.MaxInputBytes {
		data, truncated = data[:s.opts.MaxInputBytes], true
	}
	wall, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	env := append([]string{"GOMAXPROCS=1", "GOTRACEBACK=single", "GOMEMLIMIT=" + strconv.FormatInt(s.opts.MemoryBytes/2, 10)}, toolEnv...)
	p, err := start(s.opts.Command[0], s.opts.Command[1:], env, nil, s.pol)
	if err != nil {
		return Result{}, fmt.Errorf("extract: start sandbox: %w", err)
	}
	stop := context.AfterFunc(wall, p.kill)
	defer stop()
	errc := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(p.stderr, maxStderr))
		_, _ = io.Copy(io.Discard, p.stderr)
		errc <- b
	}()
	out := bufio.NewReader(p.stdout)
	ready, err := out.ReadByte()
	if err != nil || ready != readyByte {
		p.kill()
		st := p.wait()
		stderr := <-errc
		if wall.Err() != nil {
			return Result{Reason: ctxReason(wall.Err())}, nil
		}
		return Result{}, fmt.Errorf("extract: sandbox did not start (%v): %s", st, firstLine(stderr))
	}
	vm, err := p.vmSize()
	if err == nil {
		err = p.limit(rlimits{cpu: s.opts.CPUTime, as: vm + uint64(s.opts.MemoryBytes), fsize: uint64(s.opts.MaxInputBytes), nofile: 64})
	}
	if err != nil {
		p.kill()
		p.wait()
		<-errc
		return Result{}, fmt.Errorf("extract: limit sandbox: %w", err)
	}
	req := request{
		Version: protocolVersion, Size: len(data), ContentType: in.ContentType, Name: in.Name,
		Limits: s.opts.Limits, TimeoutMS: s.opts.Timeout.Milliseconds(), CPUMS: s.opts.CPUTime.Milliseconds(),
		MemoryBytes: s.opts.MemoryBytes, Tools: s.tools,
	}
	go func() {
		hdr, _ := json.Marshal(req)
		// Errors here (the child died) are seen in its exit status.
		if _, err := p.stdin.Write(append(hdr, '\n')); err == nil {
			_, _ = p.stdin.Write(data)
		}
		p.stdin.Close()
	}()
	maxOut := int64(2*s.opts.MaxTextBytes + 64<<10) // JSON escapes at most double the text
	body, _ := io.ReadAll(io.LimitReader(out, maxOut+1))
	over := int64(len(body)) > maxOut
	if over {
		p.kill()
	}
	st := p.wait()
	stderr := <-errc
	switch {
	case ctx.Err() != nil:
		return Result{Reason: ctxReason(ctx.Err())}, nil
	case wall.Err() != nil:
		return Result{Reason: ReasonTimeout}, nil
	case over:
		return Result{Reason: ReasonOutput}, nil
	}
	if reason := classify(st, stderr, s.opts.CPUTime); reason != "" {
		return Result{Reason: reason}, nil
	}
	var resp response
	if err := json.Unmarshal(body, &resp); err != nil {
		return Result{Reason: ReasonCrash}, nil
	}
	return checked(resp, s.opts.MaxTextBytes, truncated), nil
}

// checked validates a child's answer: the child has read hostile input, so
// its answer is input too.
func checked(resp response, maxText int, truncated bool) Result {
	r := Result{Format: resp.Format, Truncated: resp.Truncated || truncated, Reason: resp.Reason}
	if _, ok := byExtFormat[r.Format]; !ok && r.Format != "" {
		r.Format = ""
	}
	if !knownReason[r.Reason] {
		r.Reason = ReasonCrash
	}
	j := &job{lim: Limits{MaxTextBytes: maxText}}
	j.write(resp.Text)
	r.Text = j.out.String()
	r.Truncated = r.Truncated || j.truncated
	return r
}

var knownReason = map[Reason]bool{
	"": true, ReasonTimeout: true, ReasonCPU: true, ReasonMemory: true, ReasonOutput: true, ReasonLimit: true,
	ReasonEncrypted: true, ReasonMalformed: true, ReasonCrash: true, ReasonUnavailable: true, ReasonCanceled: true,
}

var byExtFormat = map[Format]bool{
	PDF: true, DOCX: true, XLSX: true, PPTX: true, ODT: true, ODS: true, ODP: true, DOC: true, XLS: true,
	RTF: true, ZIP: true, TNEF: true, Text: true,
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	return s
}

// ServeChild is the sandboxed side of [Sandbox]: the program named by
// Options.Command calls it with its standard input and output and exits
// with the status it returns. It reads one request and the attachment,
// extracts it, and writes the result. It relies on the restrictions the
// parent set before it started; it adds none itself.
func ServeChild(stdin io.Reader, stdout io.Writer) int {
	start := time.Now()
	w := bufio.NewWriter(stdout)
	if err := w.WriteByte(readyByte); err != nil {
		return 1
	}
	if err := w.Flush(); err != nil {
		return 1
	}
	r := bufio.NewReaderSize(stdin, 64<<10)
	line, err := r.ReadSlice('\n')
	if err != nil || len(line) > maxHeader {
		fmt.Fprintln(os.Stderr, "extract child: bad request header")
		return 2
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil || req.Version != protocolVersion {
		fmt.Fprintln(os.Stderr, "extract child: bad request header")
		return 2
	}
	opts := Options{
		Limits: req.Limits, Timeout: time.Duration(req.TimeoutMS) * time.Millisecond,
		CPUTime: time.Duration(req.CPUMS) * time.Millisecond, MemoryBytes: req.MemoryBytes,
	}.withDefaults()
	if req.Size < 0 || req.Size > opts.MaxInputBytes {
		fmt.Fprintln(os.Stderr, "extract child: bad request size")
		return 2
	}
	data := make([]byte, req.Size)
	if _, err := io.ReadFull(r, data); err != nil {
		fmt.Fprintln(os.Stderr, "extract child: short input")
		return 2
	}
	// Stop a little before the parent kills the group, so that a slow tool
	// is reported as a timeout with the text found so far.
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(opts.Timeout*9/10))
	defer cancel()
	j := newJob(ctx, opts, &toolRunner{tools: req.Tools, opts: opts})
	res := j.run(Input{Data: data, ContentType: req.ContentType, Name: req.Name})
	out, err := json.Marshal(response(res))
	if err != nil {
		return 1
	}
	if _, err := w.Write(out); err != nil {
		return 1
	}
	if err := w.Flush(); err != nil {
		return 1
	}
	return 0
}
