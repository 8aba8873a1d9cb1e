// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// loadConn is a minimal SMTP client for load tests: it reports reply codes
// instead of failing the test, as attackers and retrying senders need.
type loadConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialLoad(from, addr string, timeout time.Duration) (*loadConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(timeout))
	s := &loadConn{c: c, r: bufio.NewReader(c)}
	if code, err := s.reply(); err != nil || code != 220 {
		c.Close()
		return nil, fmt.Errorf("greeting %d: %v", code, err)
	}
	return s, nil
}

func (s *loadConn) reply() (int, error) {
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if len(line) < 4 {
			return 0, fmt.Errorf("short reply %q", line)
		}
		if line[3] == ' ' {
			return strconv.Atoi(line[:3])
		}
	}
}

func (s *loadConn) cmd(line string) (int, error) {
	if _, err := fmt.Fprintf(s.c, "%s\r\n", line); err != nil {
		return 0, err
	}
	return s.reply()
}

func (s *loadConn) startTLS() error {
	if code, err := s.cmd("STARTTLS"); err != nil || code != 220 {
		return fmt.Errorf("STARTTLS %d: %v", code, err)
	}
	tc := tls.Client(s.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		return err
	}
	s.c, s.r = tc, bufio.NewReader(tc)
	_, err := s.cmd("EHLO load.test")
	return err
}

// send runs one transaction and returns the reply code to the content.
func (s *loadConn) send(size int64, content []byte) (int, error) {
	mail := "MAIL FROM:<journal@example.org>"
	if size > 0 {
		mail += fmt.Sprintf(" SIZE=%d", size)
	}
	if code, err := s.cmd(mail); err != nil || code != 250 {
		return code, err
	}
	if code, err := s.cmd("RCPT TO:<journal@archive.test>"); err != nil || code != 250 {
		return code, err
	}
	if code, err := s.cmd("DATA"); err != nil || code != 354 {
		return code, err
	}
	if _, err := s.c.Write(content); err != nil {
		return 0, err
	}
	if _, err := s.c.Write([]byte(".\r\n")); err != nil {
		return 0, err
	}
	return s.reply()
}

// bulkMessage returns a message of about n bytes whose body is base64 of
// random bytes (incompressible, like attachments), lines of 76.
func bulkMessage(n int, subject string) []byte {
	raw := make([]byte, n*3/4)
	rand.Read(raw)
	enc := base64.StdEncoding.EncodeToString(raw)
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: a@example.org\r\nTo: b@example.org\r\nSubject: %s\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n", subject)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.Bytes()
}

// TestLoadJournalingSurvivesAbuse runs a real daemon while slow clients
// hold connections, clients send huge command lines and others guess AUTH
// passwords, and checks that every message of a journaling source
// (journal.sources) is accepted on the first try throughout. Bounded: the
// abuse stops when the journaling client is done.
func TestLoadJournalingSurvivesAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	t.Parallel()
	dir, _ := initArchive(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "sealmail.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`[smtp]
max_connections = 20
reserved_connections = 5
max_connections_per_ip = 3
max_session_time = "1m"
auth_failures_per_ip = 3
[smtp.users]
exchange = %q
[journal]
sources = ["127.0.0.2/32"]
[storage]
min_free = "0"
`, hash)), 0o600)
	d := startDaemon(t, dir, "--config", cfg)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var refusedSlow, longLineClosed, authThrottled atomic.Int64
	attack := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				f()
			}
		}()
	}
	// Slow clients: one byte of a command, then silence, from 4 addresses
	// (12 of the 15 unreserved slots by max_connections_per_ip).
	for i := range 30 {
		from := fmt.Sprintf("127.0.1.%d", i%4+1)
		attack(func() {
			s, err := dialLoad(from, d.addr, time.Minute)
			if err != nil {
				refusedSlow.Add(1)
				time.Sleep(50 * time.Millisecond)
				return
			}
			defer s.c.Close()
			s.c.Write([]byte("E"))
			select {
			case <-ctx.Done():
			case <-time.After(30 * time.Second):
			}
		})
	}
	// Long command lines.
	line := []byte("NOOP " + strings.Repeat("x", 1<<20) + "\r\n")
	for i := range 3 {
		from := fmt.Sprintf("127.0.2.%d", i+1)
		attack(func() {
			s, err := dialLoad(from, d.addr, 10*time.Second)
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				return
			}
			defer s.c.Close()
			go s.c.Write(line)
			if code, _ := s.reply(); code == 500 {
				longLineClosed.Add(1)
			}
		})
	}
	// AUTH guessing after STARTTLS.
	for i := range 3 {
		from := fmt.Sprintf("127.0.3.%d", i+1)
		attack(func() {
			s, err := dialLoad(from, d.addr, 10*time.Second)
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				return
			}
			defer s.c.Close()
			if _, err := s.cmd("EHLO guess.test"); err != nil || s.startTLS() != nil {
				return
			}
			for range 3 {
				code, err := s.cmd("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00exchange\x00guess")))
				if err != nil {
					return
				}
				if code == 454 {
					authThrottled.Add(1)
				}
			}
		})
	}

	// The journaling source: every message accepted at once.
	const messages = 15
	for i := range messages {
		time.Sleep(100 * time.Millisecond)
		s, err := dialLoad("127.0.0.2", d.addr, 60*time.Second)
		if err != nil {
			t.Fatalf("journal message %d: connect: %v (stderr: %.2000s)", i, err, d.stderr)
		}
		if _, err := s.cmd("EHLO exchange.test"); err != nil {
			t.Fatal(err)
		}
		msg := bulkMessage(64<<10, fmt.Sprintf("journal %d", i))
		code, err := s.send(int64(len(msg)), msg)
		if err != nil || code != 250 {
			t.Fatalf("journal message %d: reply %d, %v", i, code, err)
		}
		s.cmd("QUIT")
		s.c.Close()
	}
	stop()
	wg.Wait()
	t.Logf("abuse during the run: %d slow connections refused, %d long lines answered 500, %d AUTH attempts throttled",
		refusedSlow.Load(), longLineClosed.Load(), authThrottled.Load())
	if refusedSlow.Load() == 0 || longLineClosed.Load() == 0 || authThrottled.Load() == 0 {
		t.Errorf("the abuse did not reach the limits (refused %d, 500 %d, 454 %d): the test tests nothing",
			refusedSlow.Load(), longLineClosed.Load(), authThrottled.Load())
	}
	out, errOut, code := cli(t, nil, "list", "--data", dir)
	if code != 0 {
		t.Fatalf("list: %s", errOut)
	}
	if n := bytes.Count(out, []byte("\n")); n < messages {
		t.Errorf("archive lists %d messages, want %d:\n%s", n, messages, out)
	}
	d.stop()
}

// BenchmarkFrontDoorMemory is issue #12's memory benchmark: 200 sessions
// each send a 10 MiB message (SIZE declared, retrying after 452) to a real
// daemon with the default in-flight budget; it reports the daemon's peak
// RSS (VmHWM) and fails above budget + 200 MB. Run it alone:
//
//	go test -run '^$' -bench FrontDoorMemory -benchtime 1x ./cmd/sealmail
func BenchmarkFrontDoorMemory(b *testing.B) {
	const (
		sessions = 200
		size     = 10 << 20
		budget   = 512 << 20
	)
	bin, err := buildOnce()
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(b.TempDir(), "archive")
	if out, err := exec.Command(bin, "init", "--data", dir).CombinedOutput(); err != nil {
		b.Fatalf("init: %v: %s", err, out)
	}
	cfgFile := filepath.Join(b.TempDir(), "sealmail.toml")
	os.WriteFile(cfgFile, []byte("[smtp]\nmax_connections = 300\nmax_connections_per_ip = -1\nmax_in_flight = \"512MiB\"\n[storage]\nmin_free = \"0\"\n"), 0o600)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "serve", "--data", dir, "--smtp", addr, "--config", cfgFile)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Process.Kill()
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i == 300 {
			b.Fatalf("daemon did not listen: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	msgs := make([][]byte, 8)
	for i := range msgs {
		msgs[i] = bulkMessage(size, fmt.Sprintf("big %d", i))
	}
	for range b.N {
		var busy, fails atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for i := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := append([]byte(fmt.Sprintf("X-Session: %d\r\n", i)), msgs[i%len(msgs)]...)
				for try := 0; try < 1000; try++ {
					s, err := dialLoad("", addr, 5*time.Minute)
					if err != nil {
						time.Sleep(200 * time.Millisecond)
						continue
					}
					s.cmd("EHLO bench.test")
					code, err := s.send(int64(len(msg)), msg)
					s.c.Close()
					if err == nil && code == 250 {
						return
					}
					if code == 452 {
						busy.Add(1)
					}
					time.Sleep(time.Duration(100+try*50) * time.Millisecond)
				}
				fails.Add(1)
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		var hwm, rss int64
		for _, line := range strings.Split(string(status), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "VmHWM:" {
				hwm, _ = strconv.ParseInt(f[1], 10, 64)
			}
			if len(f) >= 2 && f[0] == "VmRSS:" {
				rss, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
		peakMB := float64(hwm) / 1024
		b.Logf("%d sessions × %d MiB in %v: peak RSS %.0f MB, RSS at the end %.0f MB, %d replies 452, %.1f MiB/s",
			sessions, size>>20, elapsed.Round(time.Second), peakMB, float64(rss)/1024, busy.Load(), float64(sessions)*size/(1<<20)/elapsed.Seconds())
		b.ReportMetric(peakMB, "peak-RSS-MB")
		b.ReportMetric(float64(rss)/1024, "end-RSS-MB")
		b.ReportMetric(float64(busy.Load()), "452-replies")
		b.ReportMetric(float64(sessions)*size/(1<<20)/elapsed.Seconds(), "MiB/s")
		if fails.Load() > 0 {
			b.Errorf("%d sessions never got their message accepted", fails.Load())
		}
		if limit := float64(budget)/(1<<20) + 200; peakMB > limit {
			b.Errorf("peak RSS %.0f MB, want at most budget + 200 MB = %.0f MB", peakMB, limit)
		}
	}
}
