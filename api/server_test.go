// SPDX-License-Identifier: Apache-2.0

package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/audit"
)

// serveTest runs a control socket for a fresh archive in a directory that
// every user may enter (for the refused-peer test).
func serveTest(t *testing.T, opts Options, tune func(*Server)) (a *archive.Archive, dir, sock string) {
	t.Helper()
	id, _ := age.GenerateX25519Identity()
	dir = filepath.Join(t.TempDir(), "archive")
	a, err := archive.Create(dir, []string{id.Recipient().String()}, archive.Options{MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	sockDir := t.TempDir()
	os.Chmod(sockDir, 0o755)
	os.Chmod(filepath.Dir(sockDir), 0o755)
	sock = filepath.Join(sockDir, SocketName)
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(a, opts)
	if tune != nil {
		tune(s)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	return a, dir, sock
}

func get(t *testing.T, sock, path string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: 30 * time.Second}
	resp, err := c.Get("http://sealmail" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func auditEntries(t *testing.T, dir, op string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	err := audit.Read(context.Background(), filepath.Join(dir, "audit"), audit.Filter{Types: []string{audit.TypeAPICall}}, func(e audit.Entry) error {
		if e.Fields["op"] == op {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPprofBehindFlag: profiles are 404 by default; with Options.Pprof
// they are served and every request is audited.
func TestPprofBehindFlag(t *testing.T) {
	t.Parallel()
	_, dir, sock := serveTest(t, Options{}, nil)
	if code, _ := get(t, sock, "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ without the flag = %d, want 404", code)
	}
	if n := len(auditEntries(t, dir, "pprof")); n != 0 {
		t.Errorf("%d pprof audit entries without the flag", n)
	}
	_, dir, sock = serveTest(t, Options{Pprof: true}, nil)
	code, body := get(t, sock, "/debug/pprof/?debug=1")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/ with the flag = %d %.80q", code, body)
	}
	es := auditEntries(t, dir, "pprof")
	if len(es) != 1 || !strings.HasPrefix(es[0].Actor, "socket:") {
		t.Errorf("pprof audit entries = %+v, want one by the socket peer", es)
	}
}

// otherUID is the uid of the peer asOther sends as.
func otherUID() uint32 {
	if os.Getuid() == 0 {
		return 65534
	}
	return uint32(os.Getuid())
}

// asOther returns a function that sends a raw HTTP/1.0 request to sock as
// otherUID and returns the reply: as nobody (through the system python3)
// when the test runs as root, else as the test's own user.
func asOther(t *testing.T, sock string) func(req string) string {
	t.Helper()
	if os.Getuid() != 0 {
		return func(req string) string {
			c, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, req)
			b, _ := io.ReadAll(c)
			return string(b)
		}
	}
	// The system python3: a pyenv shim under /root is not executable by
	// nobody.
	py, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		py, err = exec.LookPath("python3")
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 missing (.ci/run installs it)")
		}
		t.Skip("python3 missing")
	}
	os.Chmod(sock, 0o666)
	return func(req string) string {
		cmd := exec.Command(py, "-c", `import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode())
b=b""
while True:
    d=s.recv(65536)
    if not d: break
    b+=d
sys.stdout.write(b.decode())`, sock, req)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("request as nobody: %v: %s", err, out)
		}
		return string(out)
	}
}

// TestRefusedPeerAudited: a peer that is not allowed gets 403 and an audit
// entry; a burst of refusals gives one entry.
func TestRefusedPeerAudited(t *testing.T) {
	t.Parallel()
	// The daemon runs as some other uid than every peer here.
	_, dir, sock := serveTest(t, Options{}, func(s *Server) { s.self = 4242 })
	request := asOther(t, sock)
	for range 3 {
		if out := request("GET /v1/status HTTP/1.0\r\nHost: x\r\n\r\n"); !strings.Contains(out, " 403 ") {
			t.Fatalf("GET /v1/status as a refused peer: %.100q, want 403", out)
		}
	}
	es := auditEntries(t, dir, "refused")
	if len(es) != 1 || es[0].Fields["path"] != "/v1/status" || !strings.HasPrefix(es[0].Actor, "socket:") {
		t.Fatalf("refusal audit entries = %+v, want one for /v1/status", es)
	}
}

// TestServicePeer: a configured service user reaches the reader's
// endpoints (the feed) and no others, and may name the person it reads for
// (the read is audited as that person's, via the service); nobody else
// may name one. No endpoint takes index documents (the old /v1/index).
func TestServicePeer(t *testing.T) {
	t.Parallel()
	a, dir, sock := serveTest(t, Options{ServiceUIDs: []uint32{otherUID()}}, func(s *Server) { s.self = 4242 })
	ctx := archive.WithActor(context.Background(), "test")
	env := &sealmail.Envelope{MailFrom: "a@example.com", ClientIP: "192.0.2.1", Received: time.Now()}
	if _, err := a.Ingest(ctx, env, []byte("Subject: x\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	request := asOther(t, sock)
	status := func(out string) string {
		line, _, _ := strings.Cut(out, "\r\n")
		return line
	}
	for _, tc := range []struct{ req, want string }{
		{"GET /v1/feed?after=0 HTTP/1.0\r\n\r\n", "200"},
		{"POST /v1/verify HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", "403"},
		{"POST /v1/import HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", "403"},
		{"POST /v1/index HTTP/1.0\r\nContent-Length: 11\r\n\r\n{\"docs\":[]}", "404"},
		{"GET /v1/messages/1 HTTP/1.0\r\n" + OnBehalfOfHeader + ": alice (officer)\r\n\r\n", "200"},
	} {
		if out := request(tc.req); !strings.Contains(status(out), " "+tc.want+" ") {
			t.Errorf("service peer: %.40q = %q, want %s", tc.req, status(out), tc.want)
		}
	}
	es := auditEntries(t, dir, "get")
	if len(es) != 1 || es[0].Actor != "alice (officer)" || !strings.Contains(fmt.Sprint(es[0].Fields["via"]), fmt.Sprintf("uid %d", otherUID())) {
		t.Errorf("get audit entries = %+v, want one by alice (officer) via the service", es)
	}
	if os.Getuid() == 0 {
		// Root is no service user: it may not name a person.
		req, _ := http.NewRequest(http.MethodGet, "http://sealmail/v1/messages/1", nil)
		req.Header.Set(OnBehalfOfHeader, "mallory (officer)")
		if code := do(t, sock, req); code != http.StatusForbidden {
			t.Errorf("root naming a person: %d, want 403", code)
		}
		// Nor can root index documents: there is no such endpoint.
		req, _ = http.NewRequest(http.MethodPost, "http://sealmail/v1/index", strings.NewReader(`{"docs":[{"id":1,"raw":"U3ViamVjdDogZm9yZ2Vk"}]}`))
		if code := do(t, sock, req); code != http.StatusNotFound {
			t.Errorf("POST /v1/index as root: %d, want 404", code)
		}
	}
}

func do(t *testing.T, sock string, req *http.Request) int {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestControlSocketTimeouts: a client that sends half a request header is
// disconnected (a slow peer cannot hold a connection and a goroutine).
func TestControlSocketTimeouts(t *testing.T) {
	t.Parallel()
	_, _, sock := serveTest(t, Options{}, func(s *Server) {
		if s.http.ReadHeaderTimeout == 0 || s.http.ReadTimeout == 0 || s.http.IdleTimeout == 0 {
			t.Errorf("control socket timeouts: header %v, read %v, idle %v; want all set", s.http.ReadHeaderTimeout, s.http.ReadTimeout, s.http.IdleTimeout)
		}
		s.http.ReadHeaderTimeout = 200 * time.Millisecond // keep the test short
	})
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: x\r\n")
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = bufio.NewReader(c).ReadString('\n')
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection with a half header still open after 20 s")
	}
}

// FuzzParseAuditQuery: any query string either parses into a filter with
// a non-negative limit or is refused, never a panic.
func FuzzParseAuditQuery(f *testing.F) {
	for _, s := range []string{"", "before=12&actor=olga&type=search&type=export&since=2026-01-02T03:04:05Z&until=2026-02-01T00:00:00Z&limit=10",
		"before=-1", "limit=x", "since=yesterday", "type=&actor=%ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		fl, limit, err := ParseAuditQuery(q)
		if err != nil {
			return
		}
		if limit < 0 || fl.Actor != q.Get("actor") || len(fl.Types) != len(q["type"]) {
			t.Errorf("%q: filter %+v limit %d", raw, fl, limit)
		}
	})
}
