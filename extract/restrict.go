// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// policy is what a sandboxed process may do, applied to one OS thread just
// before it starts the process ([policy.apply]), so that the process runs
// restricted from its first instruction and every process it starts
// inherits the restrictions:
//
//   - no_new_privs (no set-uid gains; required for the rest);
//   - Landlock, where the kernel has it: read and execute only the listed
//     executables, read only the system library directories they load
//     from and their data directories; no other file, nothing written,
//     created or removed anywhere; no TCP bind or connect (ABI 4); no
//     signals to or abstract sockets of processes outside the sandbox
//     (ABI 6);
//   - seccomp, where the kernel has it: socket creation and the system
//     calls a parser never needs (ptrace, mount, namespaces, BPF, keyrings,
//     io_uring, kernel modules, …) fail with EPERM; a foreign system call
//     ABI kills the process.
//
// Open file descriptors (the pipes and the memfd that carry input and
// output) are not restricted by Landlock: they are the sandbox's only view.
type policy struct {
	exec     []string // executables: read and execute
	read     []string // directories and files: read only
	landlock int      // Landlock ABI version in force; 0: none
	seccomp  []unix.SockFilter
}

// systemDirs are what dynamically linked tools need to start and find
// their data: the loader and libraries, the loader cache, locales, and
// the data of poppler and catdoc.
var systemDirs = []string{
	"/usr/lib", "/lib", "/lib64", "/usr/lib64", "/etc/ld.so.cache",
	"/usr/share/poppler", "/usr/share/catdoc", "/usr/share/locale",
}

func newPolicy(exec []string) *policy {
	p := &policy{exec: exec, landlock: landlockABI()}
	for _, d := range systemDirs {
		if _, err := os.Stat(d); err == nil {
			p.read = append(p.read, d)
		}
	}
	if prog, err := seccompProgram(); err == nil && seccompAvailable() {
		p.seccomp = prog
	}
	return p
}

// apply restricts the calling OS thread. The caller has locked its
// goroutine to the thread and never unlocks it, so the thread ends with the
// goroutine and its restrictions never reach other goroutines.
func (p *policy) apply() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if p.landlock > 0 {
		if err := p.applyLandlock(); err != nil {
			return fmt.Errorf("landlock: %w", err)
		}
	}
	if p.seccomp != nil {
		prog := unix.SockFprog{Len: uint16(len(p.seccomp)), Filter: &p.seccomp[0]}
		// No SECCOMP_FILTER_FLAG_TSYNC: this thread only.
		if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog))); e != 0 {
			return fmt.Errorf("seccomp: %w", e)
		}
		runtime.KeepAlive(p.seccomp)
	}
	return nil
}

// Landlock access rights by ABI version (linux/landlock.h).
const (
	llFSv1 = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_READ_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	llRead     = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	llReadFile = unix.LANDLOCK_ACCESS_FS_READ_FILE
	llExec     = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE
)

// landlockABI returns the kernel's Landlock ABI version, 0 if it has none
// (not built in, or not enabled at boot).
func landlockABI() int {
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return 0
	}
	return int(v)
}

func (p *policy) applyLandlock() error {
	fs := uint64(llFSv1)
	if p.landlock >= 2 {
		fs |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if p.landlock >= 3 {
		fs |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if p.landlock >= 5 {
		fs |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	attr := unix.LandlockRulesetAttr{Handled_access_fs: fs}
	size := unsafe.Sizeof(attr.Handled_access_fs)
	if p.landlock >= 4 {
		attr.Handled_access_net = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
		size += unsafe.Sizeof(attr.Handled_access_net)
	}
	if p.landlock >= 6 {
		attr.Scoped = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL
		size += unsafe.Sizeof(attr.Scoped)
	}
	fd, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if e != 0 {
		return fmt.Errorf("create ruleset: %w", e)
	}
	defer func() { _ = unix.Close(int(fd)) }()
	add := func(path string, access uint64) error {
		pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		defer func() { _ = unix.Close(pfd) }()
		var st unix.Stat_t
		if err := unix.Fstat(pfd, &st); err != nil {
			return fmt.Errorf("stat %s: %w", path, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			access &^= unix.LANDLOCK_ACCESS_FS_READ_DIR // file rules take file rights only
		}
		rule := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(pfd)}
		if _, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&rule)), 0, 0, 0); e != 0 {
			return fmt.Errorf("add rule %s: %w", path, e)
		}
		return nil
	}
	for _, x := range p.exec {
		if err := add(x, llExec); err != nil {
			return err
		}
	}
	for _, d := range p.read {
		access := uint64(llRead)
		if d == "/usr/lib" || d == "/lib" || d == "/lib64" || d == "/usr/lib64" {
			access |= unix.LANDLOCK_ACCESS_FS_EXECUTE // the loader maps libraries executable
		}
		if err := add(d, access); err != nil {
			return err
		}
	}
	if _, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); e != 0 {
		return fmt.Errorf("restrict self: %w", e)
	}
	return nil
}

// seccompDenied are the system calls a sandboxed process may not make.
// Everything else is allowed: an allow-list would break with each Go
// runtime and tool release, and Landlock already confines the file system.
var seccompDenied = []uintptr{
	unix.SYS_SOCKET, unix.SYS_SOCKETPAIR, unix.SYS_CONNECT, unix.SYS_BIND, unix.SYS_LISTEN,
	unix.SYS_ACCEPT, unix.SYS_ACCEPT4,
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV, unix.SYS_PIDFD_GETFD,
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_CHROOT, unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_FSOPEN, unix.SYS_FSMOUNT, unix.SYS_FSCONFIG, unix.SYS_FSPICK, unix.SYS_MOVE_MOUNT, unix.SYS_OPEN_TREE,
	unix.SYS_MOUNT_SETATTR, unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY, unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN,
	unix.SYS_USERFAULTFD, unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE,
	unix.SYS_DELETE_MODULE, unix.SYS_REBOOT, unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_ACCT,
	unix.SYS_FANOTIFY_INIT, unix.SYS_QUOTACTL, unix.SYS_SYSLOG, unix.SYS_VHANGUP,
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX,
}

// auditArch is the AUDIT_ARCH_* of this build; 0 where seccomp is not
// supported by this package.
func auditArch() uint32 {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64
	}
	return 0
}

var errNoSeccomp = errors.New("extract: seccomp not supported on " + runtime.GOARCH)

// seccompProgram assembles the filter: check the architecture (a 32-bit
// or x32 call would bypass the table), then deny the listed calls.
func seccompProgram() ([]unix.SockFilter, error) {
	arch := auditArch()
	if arch == 0 {
		return nil, errNoSeccomp
	}
	const (
		offNR   = 0 // struct seccomp_data: nr, arch, instruction_pointer, args
		offArch = 4
		errno   = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	)
	n := uint8(len(seccompDenied))
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: arch, SkipTrue: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS},
		bpf.LoadAbsolute{Off: offNR, Size: 4},
	}
	if runtime.GOARCH == "amd64" {
		// x32 system calls have bit 30 set.
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: 0x40000000, SkipTrue: n + 1})
	}
	for i, nr := range seccompDenied {
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(nr), SkipTrue: n - uint8(i)})
	}
	prog = append(prog, bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW}, bpf.RetConstant{Val: errno})
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("extract: assemble seccomp filter: %w", err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

// seccompAvailable reports whether the kernel has seccomp filters with
// the actions the filter returns.
func seccompAvailable() bool {
	for _, action := range []uint32{unix.SECCOMP_RET_ERRNO, unix.SECCOMP_RET_KILL_PROCESS} {
		a := action
		if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&a))); e != 0 {
			return false
		}
	}
	return true
}

// Enforced describes the restrictions a policy puts in force, for logs and
// status: "landlock ABI 7 (files, tcp, scope), seccomp (54 calls denied)".
func (p *policy) describe() (landlock, seccomp string) {
	switch {
	case p.landlock == 0:
		landlock = "unavailable"
	case p.landlock < 4:
		landlock = fmt.Sprintf("ABI %d (files)", p.landlock)
	case p.landlock < 6:
		landlock = fmt.Sprintf("ABI %d (files, tcp)", p.landlock)
	default:
		landlock = fmt.Sprintf("ABI %d (files, tcp, signals, abstract sockets)", p.landlock)
	}
	seccomp = "unavailable"
	if p.seccomp != nil {
		seccomp = fmt.Sprintf("%d system calls denied, sockets included", len(seccompDenied))
	}
	return landlock, seccomp
}
