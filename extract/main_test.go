// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain lets the test binary be the sandboxed child: "extract-child"
// serves as sealmail's hidden subcommand does, "extract-probe KIND …" is a
// hostile child that tries to break out of the sandbox or its limits.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "extract-child":
			os.Exit(ServeChild(os.Stdin, os.Stdout))
		case "extract-probe":
			os.Exit(probe(os.Args[2:]))
		}
	}
	os.Exit(m.Run())
}

// probe answers the protocol like ServeChild, but instead of extracting it
// does what args[0] says and reports what happened as the text.
func probe(args []string) int {
	w := bufio.NewWriter(os.Stdout)
	w.WriteByte(readyByte)
	w.Flush()
	r := bufio.NewReader(os.Stdin)
	if _, err := r.ReadSlice('\n'); err != nil {
		return 2
	}
	io.Copy(io.Discard, r)
	var report []string
	note := func(what string, err error) { report = append(report, fmt.Sprintf("%s=%v", what, errName(err))) }
	switch args[0] {
	case "escape": // args: a readable file outside the input, a TCP address that listens
		_, err := os.ReadFile(args[1])
		note("read", err)
		_, err = os.ReadDir("/")
		note("readdir", err)
		note("write", os.WriteFile(os.TempDir()+"/extract-probe", []byte("x"), 0o600))
		_, err = net.DialTimeout("tcp", args[2], time.Second)
		note("dial", err)
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err == nil {
			unix.Close(fd)
		}
		note("socket", err)
		note("exec", exec.Command("/bin/sh", "-c", "true").Run())
		// A tool the sandbox may run inherits the restrictions: it cannot
		// open the file either.
		tool := exec.Command(args[3], args[1], "-")
		tool.Stdin = strings.NewReader("") // not /dev/null: no file may be opened
		out, err := tool.CombinedOutput()
		note("tool", err)
		report = append(report, "toolsaid="+strings.ReplaceAll(strings.TrimSpace(string(out)), " ", "_"))
	case "env":
		report = os.Environ()
	case "alloc":
		var keep [][]byte
		for range 256 {
			b := make([]byte, 64<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
		report = append(report, fmt.Sprintf("allocated %d chunks", len(keep)))
	case "spin":
		for x := 0; ; x++ {
			if x < 0 {
				break
			}
		}
	case "sleep":
		time.Sleep(time.Hour)
	case "flood":
		b := make([]byte, 1<<20)
		for range 64 {
			if _, err := w.Write(b); err != nil {
				return 1
			}
		}
		w.Flush()
		return 0
	}
	out, _ := json.Marshal(response{Format: RTF, Text: strings.Join(report, " ")})
	w.Write(out)
	w.Flush()
	return 0
}

func errName(err error) string {
	var errno unix.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &errno):
		return unix.ErrnoName(errno)
	case strings.Contains(err.Error(), "exit status"):
		return "exit"
	}
	return "error"
}
