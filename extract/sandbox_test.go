// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testSandbox returns a sandbox whose child is this test binary (see
// TestMain) started with args.
func testSandbox(t *testing.T, opts Options, args ...string) *Sandbox {
	t.Helper()
	opts.Command = append(testSandboxCommand(t)[:1], args...)
	s, err := NewSandbox(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testSandboxCommand is the command that makes this test binary a child.
func testSandboxCommand(t testing.TB) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe, "extract-child"}
}

// rtfInput is a small document, so that Detect lets it into a sandbox.
var rtfInput = Input{Data: []byte(`{\rtf1 probe}`), Name: "probe.rtf"}

func TestSandboxStatus(t *testing.T) {
	t.Parallel()
	st := testSandbox(t, Options{}, "extract-child").Status()
	t.Logf("sandbox: landlock %s; seccomp %s; limits %s; missing tools %v", st.Landlock, st.Seccomp, st.Limits, st.Missing)
	if os.Getenv("CI") != "" && (st.Landlock == "unavailable" || st.Seccomp == "unavailable") {
		t.Errorf("CI's kernel has Landlock and seccomp, but the sandbox reports landlock %q, seccomp %q", st.Landlock, st.Seccomp)
	}
}

func TestSandboxCorpus(t *testing.T) {
	t.Parallel()
	s := testSandbox(t, Options{}, "extract-child")
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	checkCorpus(t, s)
}

// TestSandboxEscape: a child cannot read a file outside its input, list a
// directory, write a file, reach a listening TCP port, make any socket or
// run a program other than the tools; a tool it runs is as confined.
func TestSandboxEscape(t *testing.T) {
	t.Parallel()
	needTool(t, "pdftotext", "poppler-utils")
	secret := filepath.Join(t.TempDir(), "secret.pdf")
	if err := os.WriteFile(secret, readTestdata(t, "corpus/sample.pdf"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan bool, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err == nil
	}()
	s := testSandbox(t, Options{}, "extract-probe", "escape", secret, l.Addr().String(), "/usr/bin/pdftotext")
	if st := s.Status(); st.Landlock == "unavailable" || st.Seccomp == "unavailable" {
		t.Skipf("kernel lacks the restrictions: landlock %s, seccomp %s", st.Landlock, st.Seccomp)
	}
	r := s.Extract(context.Background(), rtfInput)
	t.Logf("probe: %s", r.Text)
	for _, want := range []string{"read=EACCES", "readdir=EACCES", "write=EACCES", "dial=EPERM", "socket=EPERM", "exec=EACCES", "tool=exit"} {
		if !strings.Contains(r.Text, want) {
			t.Errorf("probe report %q lacks %q", r.Text, want)
		}
	}
	if !strings.Contains(r.Text, "Couldn't_open_file") {
		t.Errorf("pdftotext in the sandbox did not fail to open %s: %q", secret, r.Text)
	}
	l.Close()
	if <-accepted {
		t.Error("the sandboxed child connected to a TCP listener")
	}
}

// TestSandboxEnv: nothing of the caller's environment reaches the child.
func TestSandboxEnv(t *testing.T) {
	t.Setenv("SEALMAIL_PASSPHRASE", "hunter2")
	r := testSandbox(t, Options{}, "extract-probe", "env").Extract(context.Background(), rtfInput)
	if strings.Contains(r.Text, "hunter2") || !strings.Contains(r.Text, "PATH=") {
		t.Errorf("child environment %q: want PATH and no passphrase", r.Text)
	}
}

// TestSandboxLimits: a child that overruns a limit is killed and the
// overrun is the reason.
func TestSandboxLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		probe string
		opts  Options
		want  Reason
	}{
		{"alloc", Options{MemoryBytes: 256 << 20}, ReasonMemory},
		{"spin", Options{CPUTime: time.Second, Timeout: 30 * time.Second}, ReasonCPU},
		{"sleep", Options{Timeout: time.Second}, ReasonTimeout},
		{"flood", Options{Limits: Limits{MaxTextBytes: 1 << 20}}, ReasonOutput},
	}
	for _, tt := range tests {
		t.Run(tt.probe, func(t *testing.T) {
			t.Parallel()
			begin := time.Now()
			r := testSandbox(t, tt.opts, "extract-probe", tt.probe).Extract(context.Background(), rtfInput)
			if r.Reason != tt.want || r.Text != "" {
				t.Errorf("probe %s: Extract = %v %q, want reason %q and no text", tt.probe, r, r.Text, tt.want)
			}
			if d := time.Since(begin); d > 20*time.Second {
				t.Errorf("probe %s took %v", tt.probe, d)
			}
		})
	}
}

// TestSandboxHostile runs the hostile inputs through the sandbox.
func TestSandboxHostile(t *testing.T) {
	t.Parallel()
	needTool(t, "pdftotext", "poppler-utils")
	// The bombs get a small unpacked bound: with the default (128 MiB) a
	// child built with the race detector, as this test binary is, can reach
	// its memory limit first, which bounds it as well but is another reason.
	small := Limits{MaxUnpackedBytes: 16 << 20}
	for _, tt := range []struct {
		file    string
		timeout time.Duration
		limits  Limits
		want    Reason
	}{{"hostile/bomb.zip", 0, small, ReasonLimit}, {"hostile/deep.zip", 0, small, ReasonLimit}, {"hostile/huge.pdf", 3 * time.Second, Limits{}, ReasonTimeout}} {
		s := testSandbox(t, Options{Timeout: tt.timeout, Limits: tt.limits}, "extract-child")
		r := s.Extract(context.Background(), Input{Data: readTestdata(t, tt.file), Name: filepath.Base(tt.file)})
		if r.Reason != tt.want {
			t.Errorf("Extract(%s) = %v, want reason %q", tt.file, r, tt.want)
		}
	}
}

// TestSandboxCanceled: the caller's context ends the child.
func TestSandboxCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	r := testSandbox(t, Options{}, "extract-probe", "sleep").Extract(ctx, rtfInput)
	if r.Reason != ReasonCanceled {
		t.Errorf("Extract = %v, want canceled", r)
	}
}

// TestSandboxBadCommand: a child that does not speak the protocol is
// reported, not trusted.
func TestSandboxBadCommand(t *testing.T) {
	t.Parallel()
	s, err := NewSandbox(Options{Command: []string{"/bin/true"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err == nil {
		t.Error("Check with /bin/true succeeded")
	}
	if r := s.Extract(context.Background(), rtfInput); r.Reason != ReasonUnavailable {
		t.Errorf("Extract = %v, want unavailable", r)
	}
	if _, err := NewSandbox(Options{Command: []string{"relative"}}); err == nil {
		t.Error("NewSandbox accepted a relative command")
	}
}
