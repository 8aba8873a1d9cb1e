// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// proc is a restricted child process in its own process group, started by
// [start]. Its goroutine owns it: it waits for the process and then kills
// what is left of the group (a tool the process started).
type proc struct {
	pid    int
	stdin  *os.File // the parent's end; nil when the child reads a memfd
	stdout *os.File
	stderr *os.File

	mu      sync.Mutex
	done    chan struct{}
	state   *os.ProcessState
	release chan struct{} // closed by limit or wait: the child may be reaped
	once    sync.Once
}

// start runs path with args and env, restricted by pol (nil: no new
// restrictions, as inside a sandbox that has them already). in, if not
// nil, is the child's standard input (a memfd); otherwise a pipe is made.
//
// The child is started from a goroutine locked to a new OS thread: pol is
// applied to that thread, the child inherits it from its first
// instruction, and the thread is never unlocked, so it ends (taking the
// restrictions with it) when the goroutine does, after the child has been
// waited for. The child is killed if that thread dies first (Pdeathsig).
func start(path string, args, env []string, in *os.File, pol *policy) (*proc, error) {
	p := &proc{done: make(chan struct{}), release: make(chan struct{})}
	var childIn, outR, outW, errR, errW *os.File
	var err error
	closeAll := func(fs ...*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	if in == nil {
		if childIn, p.stdin, err = os.Pipe(); err != nil {
			return nil, err
		}
	}
	if outR, outW, err = os.Pipe(); err != nil {
		closeAll(childIn, p.stdin)
		return nil, err
	}
	if errR, errW, err = os.Pipe(); err != nil {
		closeAll(childIn, p.stdin, outR, outW)
		return nil, err
	}
	stdin := childIn
	if in != nil {
		stdin = in
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		if pol != nil {
			if err := pol.apply(); err != nil {
				started <- err
				return
			}
		}
		cmd := &exec.Cmd{
			Path: path, Args: append([]string{path}, args...), Env: env,
			Stdin: stdin, Stdout: outW, Stderr: errW,
			SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		// Not reaped before limit: until then the pid cannot be reused, so
		// prlimit cannot reach another process.
		<-p.release
		_ = cmd.Wait() // the state says how it ended
		p.mu.Lock()
		p.state = cmd.ProcessState
		// The group outlives its leader while a tool it started runs; the
		// pid cannot be reused until the group is empty.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		close(p.done)
		p.mu.Unlock()
	}()
	err = <-started
	closeAll(childIn, outW, errW)
	if err != nil {
		closeAll(p.stdin, outR, errR)
		return nil, err
	}
	p.stdout, p.stderr = outR, errR
	return p, nil
}

// kill kills the process group, unless the child has been waited for.
func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
}

// wait waits for the child and closes the parent's ends.
func (p *proc) wait() *os.ProcessState {
	p.once.Do(func() { close(p.release) })
	<-p.done
	for _, f := range []*os.File{p.stdin, p.stdout, p.stderr} {
		if f != nil {
			f.Close()
		}
	}
	return p.state
}

// rlimits are applied to a started child with prlimit(2), soft and hard.
type rlimits struct {
	cpu    time.Duration // RLIMIT_CPU, rounded up to seconds; SIGKILL one second later
	as     uint64        // RLIMIT_AS in bytes
	fsize  uint64        // RLIMIT_FSIZE: the largest file it may write (a memfd)
	nofile uint64
}

// limit applies l; a child that has exited already (a zombie: ESRCH) needs
// none. It then lets the child be reaped.
func (p *proc) limit(l rlimits) error {
	defer p.once.Do(func() { close(p.release) })
	cpu := uint64((l.cpu + time.Second - 1) / time.Second)
	for _, r := range []struct {
		res        int
		soft, hard uint64
	}{
		{unix.RLIMIT_CPU, cpu, cpu + 1}, // SIGXCPU, then SIGKILL
		{unix.RLIMIT_AS, l.as, l.as},
		{unix.RLIMIT_FSIZE, l.fsize, l.fsize},
		{unix.RLIMIT_NOFILE, l.nofile, l.nofile},
		{unix.RLIMIT_CORE, 0, 0},
	} {
		err := unix.Prlimit(p.pid, r.res, &unix.Rlimit{Cur: r.soft, Max: r.hard}, nil)
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("prlimit %d: %w", r.res, err)
		}
	}
	return nil
}

// vmSize returns the child's address-space size (VmSize), the base its
// memory limit is added to: a Go runtime reserves address space at start.
func (p *proc) vmSize() (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmSize:")); ok {
			kb, err := strconv.ParseUint(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmSize")
}

// cpuUsed is the CPU time a finished child used, its waited-for children
// included.
func cpuUsed(st *os.ProcessState) time.Duration {
	if st == nil {
		return 0
	}
	return st.UserTime() + st.SystemTime()
}

// killedBy returns the signal that ended the child, or 0.
func killedBy(st *os.ProcessState) syscall.Signal {
	if st == nil {
		return 0
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal()
	}
	return 0
}

// memfd returns a memory file holding data, positioned at 0: a
// seekable standard input that needs no file system.
func memfd(data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("extract-input", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("memfd: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("memfd: %w", err)
	}
	return f, nil
}
