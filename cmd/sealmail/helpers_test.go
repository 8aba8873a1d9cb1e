// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"sealmail": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// buildOnce builds sealmail without the race detector, for tests that run
// the daemon as a real process (kill -9, restarts, load).
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "sealmail-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "sealmail")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func sealmailBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// needTool fails (in CI) or skips (elsewhere) when a Debian tool is missing.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name)
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing: apt-get install %s (.ci/run installs it)", name, pkg)
	}
	t.Skipf("%s is missing: apt-get install %s", name, pkg)
	return ""
}

// cli runs the sealmail binary and returns stdout, stderr and the exit code.
func cli(t *testing.T, stdin []byte, args ...string) ([]byte, string, int) {
	t.Helper()
	cmd := exec.Command(sealmailBinary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run sealmail %v: %v", args, err)
	}
	return out.Bytes(), errb.String(), code
}

// daemon is a running `sealmail serve`.
type daemon struct {
	t      *testing.T
	dir    string
	cmd    *exec.Cmd
	stderr *lockedWriter
	addr   string // SMTP address
	done   chan struct{}
}

// initArchive creates an archive in a new temp dir; it returns the dir and
// the identity file.
func initArchive(t *testing.T, args ...string) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "archive")
	_, errOut, code := cli(t, nil, append([]string{"init", "--data", dir}, args...)...)
	if code != 0 {
		t.Fatalf("sealmail init: exit %d: %s", code, errOut)
	}
	return dir, filepath.Join(dir, "identity.txt")
}

// startDaemon runs `sealmail serve` on a free loopback port and waits until
// it answers on the control socket.
func startDaemon(t *testing.T, dir string, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, dir: dir, stderr: &lockedWriter{w: new(bytes.Buffer)}, done: make(chan struct{})}
	d.cmd = exec.Command(sealmailBinary(t), append([]string{"serve", "--data", dir, "--smtp", "127.0.0.1:0"}, args...)...)
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			t.Fatalf("daemon exited at start: %s", d.stderr)
		default:
		}
		out, _, code := cli(t, nil, "status", "--json", "--data", dir)
		if code == 0 {
			var st struct {
				Daemon    bool     `json:"daemon"`
				Listeners []string `json:"listeners"`
			}
			if json.Unmarshal(out, &st) == nil && st.Daemon {
				for _, l := range st.Listeners {
					if a, ok := strings.CutPrefix(l, "smtp "); ok {
						d.addr = a
						return d
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("daemon did not come up: %s", d.stderr)
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		// SIGQUIT makes the Go runtime print every goroutine: the log then
		// shows where shutdown hung.
		d.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
			d.cmd.Process.Kill()
		}
		d.t.Fatalf("daemon did not stop within 60s after SIGTERM: %s", d.stderr)
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		d.t.Fatalf("daemon exit code %d after SIGTERM: %s", code, d.stderr)
	}
}

func (d *daemon) kill() {
	select {
	case <-d.done:
	default:
		d.cmd.Process.Kill()
		<-d.done
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// String returns what was written so far.
func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprint(l.w)
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// smtpConn is a minimal SMTP client that sends message bytes exactly as
// given (DATA with dot-stuffing only, or BDAT), unlike net/smtp, which
// rewrites bare LF.
type smtpConn struct {
	c     net.Conn
	r     *bufio.Reader
	chunk bool // server offers CHUNKING
}

func dialSMTP(addr string, starttls bool) (*smtpConn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	s := &smtpConn{c: c, r: bufio.NewReader(c)}
	if code, msg, err := s.reply(); err != nil || code != 220 {
		c.Close()
		return nil, fmt.Errorf("greeting %d %s: %v", code, msg, err)
	}
	if err := s.ehlo(); err != nil {
		c.Close()
		return nil, err
	}
	if starttls {
		if code, msg, err := s.cmd("STARTTLS"); err != nil || code != 220 {
			c.Close()
			return nil, fmt.Errorf("STARTTLS: %d %s %v", code, msg, err)
		}
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		s.c, s.r = tc, bufio.NewReader(tc)
		if err := s.ehlo(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *smtpConn) ehlo() error {
	code, msg, err := s.cmd("EHLO client.test")
	if err != nil || code != 250 {
		return fmt.Errorf("EHLO: %d %s %v", code, msg, err)
	}
	s.chunk = strings.Contains(msg, "CHUNKING")
	return nil
}

// reply reads one possibly multi-line reply.
func (s *smtpConn) reply() (int, string, error) {
	s.c.SetReadDeadline(time.Now().Add(120 * time.Second))
	var lines []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return 0, strings.Join(lines, "\n"), err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 {
			return 0, line, fmt.Errorf("short reply %q", line)
		}
		lines = append(lines, line[4:])
		if line[3] == ' ' {
			code, err := strconv.Atoi(line[:3])
			return code, strings.Join(lines, "\n"), err
		}
	}
}

func (s *smtpConn) cmd(line string) (int, string, error) {
	if _, err := io.WriteString(s.c, line+"\r\n"); err != nil {
		return 0, "", err
	}
	return s.reply()
}

// send transfers one message and returns the final reply.
func (s *smtpConn) send(from string, to []string, data []byte, bdat bool) (int, string, error) {
	if code, msg, err := s.cmd("MAIL FROM:<" + from + ">"); err != nil || code != 250 {
		return code, msg, err
	}
	for _, r := range to {
		if code, msg, err := s.cmd("RCPT TO:<" + r + ">"); err != nil || code != 250 {
			return code, msg, err
		}
	}
	if bdat && s.chunk {
		// Several chunks, the last one flagged LAST, as Exchange sends.
		for len(data) > 0 {
			n := min(len(data), 64<<10)
			last := ""
			if n == len(data) {
				last = " LAST"
			}
			if _, err := fmt.Fprintf(s.c, "BDAT %d%s\r\n", n, last); err != nil {
				return 0, "", err
			}
			if _, err := s.c.Write(data[:n]); err != nil {
				return 0, "", err
			}
			data = data[n:]
			code, msg, err := s.reply()
			if err != nil || code != 250 || last != "" {
				return code, msg, err
			}
		}
		return s.cmd("BDAT 0 LAST")
	}
	if code, msg, err := s.cmd("DATA"); err != nil || code != 354 {
		return code, msg, err
	}
	w := bufio.NewWriterSize(s.c, 64<<10)
	w.Write(dotStuff(data))
	w.WriteString(".\r\n")
	if err := w.Flush(); err != nil {
		return 0, "", err
	}
	return s.reply()
}

func (s *smtpConn) close() {
	s.cmd("QUIT")
	s.c.Close()
}

// dotStuff applies RFC 5321 §4.5.2 transparency: a line (after CRLF) that
// starts with "." gets another. data must end with CRLF.
func dotStuff(data []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(data) + 64)
	bol := true
	for i, c := range data {
		if bol && c == '.' {
			b.WriteByte('.')
		}
		b.WriteByte(c)
		bol = c == '\n' && i > 0 && data[i-1] == '\r'
	}
	return b.Bytes()
}

// queuedID extracts the message id from "2.0.0 Ok: queued as 42".
func queuedID(msg string) (uint64, error) {
	i := strings.LastIndex(msg, " ")
	return strconv.ParseUint(strings.TrimSpace(msg[i+1:]), 10, 64)
}

func contextT(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// readerProc is a running `sealmail access`.
type readerProc struct {
	t      *testing.T
	state  string
	sock   string
	https  string // the HTTPS address it listens on
	cmd    *exec.Cmd
	stderr *lockedWriter
	done   chan struct{}
}

var httpsListening = regexp.MustCompile(`msg="sealmail reader serving" https=(\S+)`)

// startReader runs `sealmail access` for the archive in dir (a daemon must
// serve it) with a new state directory, or the one given, on a free
// loopback port, and waits until its socket answers. args go to
// `sealmail access` (--identity FILE; none: locked).
func startReader(t *testing.T, dir, state string, args ...string) *readerProc {
	t.Helper()
	if state == "" {
		state = filepath.Join(t.TempDir(), "state")
	}
	r := &readerProc{t: t, state: state, sock: filepath.Join(state, "reader.sock"), stderr: &lockedWriter{w: new(bytes.Buffer)}, done: make(chan struct{})}
	r.cmd = exec.Command(sealmailBinary(t), append([]string{"access", "--data", dir, "--state", state, "--listen", "127.0.0.1:0"}, args...)...)
	r.cmd.Stderr = r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(r.kill)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			t.Fatalf("reader exited at start: %s", r.stderr)
		default:
		}
		if m := httpsListening.FindStringSubmatch(r.stderr.String()); m != nil {
			if _, _, code := cli(t, nil, "access", "status", "--json", "--reader", r.sock); code == 0 {
				r.https = m[1]
				return r
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("reader did not come up: %s", r.stderr)
	return nil
}

// cli runs a command against this reader.
func (r *readerProc) cli(args ...string) ([]byte, string, int) {
	r.t.Helper()
	return cli(r.t, nil, append(args, "--reader", r.sock)...)
}

// caughtUp waits until the reader's index covers what the archive holds
// now (`sealmail reindex` waits for that).
func (r *readerProc) caughtUp() {
	r.t.Helper()
	if out, errOut, code := r.cli("reindex", "--json"); code != 0 {
		r.t.Fatalf("reindex: exit %d: %s%s\nreader: %s", code, out, errOut, r.stderr)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (r *readerProc) stop() {
	r.t.Helper()
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		r.cmd.Process.Kill()
		r.t.Fatalf("reader did not stop within 60s after SIGTERM: %s", r.stderr)
	}
	if code := r.cmd.ProcessState.ExitCode(); code != 0 {
		r.t.Fatalf("reader exit code %d after SIGTERM: %s", code, r.stderr)
	}
}

func (r *readerProc) kill() {
	select {
	case <-r.done:
	default:
		r.cmd.Process.Kill()
		<-r.done
	}
}
