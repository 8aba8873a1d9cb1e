// SPDX-License-Identifier: Apache-2.0

// Command smtpload is the ingest benchmark's load generator for what
// Postfix's smtp-source cannot do: it sends the messages of a directory
// (a Maildir that bench/gen_mail.py wrote, so the realistic mix) over SMTP
// from several sessions, optionally at a fixed total rate, and measures
// each message's latency from the end of DATA to the server's reply.
//
//	go run ./bench/smtpload -addr 127.0.0.1:2625 -dir DIR/Maildir -sessions 16 [-rate 1000] [-n 20000]
//
// It prints one JSON object: messages sent, bytes, seconds, messages per
// second, and latency percentiles in milliseconds. Every session stops at
// the first error, and the run at -timeout. Loopback targets intended.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2625", "SMTP server")
	dir := flag.String("dir", "", "directory of messages (every regular file under it, e.g. a Maildir)")
	sessions := flag.Int("sessions", 16, "concurrent SMTP sessions, each over one connection")
	rate := flag.Float64("rate", 0, "total messages per second to aim at (0: as fast as the server answers)")
	n := flag.Int("n", 0, "messages to send (0: every file once; more cycles through them)")
	timeout := flag.Duration("timeout", 5*time.Minute, "stop the run after this long")
	flag.Parse()
	if err := run(*addr, *dir, *sessions, *rate, *n, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "smtpload:", err)
		os.Exit(1)
	}
}

// result is what the run prints.
type result struct {
	Messages  int     `json:"messages"`
	Bytes     int64   `json:"bytes"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"msgs_per_s"`
	// Latency from the end of DATA (the last content bytes and the final
	// "." written) to the reply, in milliseconds.
	P50 float64 `json:"latency_p50_ms"`
	P90 float64 `json:"latency_p90_ms"`
	P99 float64 `json:"latency_p99_ms"`
	Max float64 `json:"latency_max_ms"`
}

func run(addr, dir string, sessions int, rate float64, n int, timeout time.Duration) error {
	if dir == "" || sessions < 1 {
		return errors.New("-dir and -sessions ≥ 1 are required")
	}
	msgs, err := load(dir)
	if err != nil {
		return err
	}
	if n == 0 {
		n = len(msgs)
	}
	deadline := time.Now().Add(timeout)
	start := time.Now()
	lat := make([][]time.Duration, sessions)
	sent := make([]int64, sessions)
	errs := make([]error, sessions)
	var wg sync.WaitGroup
	for s := range sessions {
		wg.Go(func() {
			// Session s sends messages s, s+sessions, …; at a fixed rate
			// message k is due at start + k/rate.
			var mine []int
			for k := s; k < n; k += sessions {
				mine = append(mine, k)
			}
			lat[s], sent[s], errs[s] = session(addr, msgs, mine, rate, start, deadline)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	res := result{Seconds: elapsed.Seconds()}
	for s := range sessions {
		all = append(all, lat[s]...)
		res.Bytes += sent[s]
		if errs[s] != nil {
			err = errors.Join(err, fmt.Errorf("session %d: %w", s, errs[s]))
		}
	}
	res.Messages = len(all)
	res.PerSecond = float64(res.Messages) / elapsed.Seconds()
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	res.P50, res.P90, res.P99, res.Max = pct(0.50), pct(0.90), pct(0.99), pct(1)
	out, jerr := json.Marshal(res)
	if jerr != nil {
		return jerr
	}
	fmt.Println(string(out))
	return err
}

// load reads every regular file under dir, in name order.
func load(dir string) ([][]byte, error) {
	var msgs [][]byte
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		// SMTP sends lines ending in CRLF; net/smtp's DATA writer turns a
		// bare LF into CRLF, so the server stores CRLF lines.
		msgs = append(msgs, b)
		return nil
	})
	if err == nil && len(msgs) == 0 {
		err = fmt.Errorf("no files under %s", dir)
	}
	return msgs, err
}

// session sends the messages with the given indexes over one connection
// and returns each one's latency and the bytes sent.
func session(addr string, msgs [][]byte, mine []int, rate float64, start, deadline time.Time) ([]time.Duration, int64, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, 0, err
	}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, 0, err
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	defer func() { _ = c.Close() }() // after Quit, or on an error already returned
	if err := c.Hello("load.test"); err != nil {
		return nil, 0, err
	}
	var lat []time.Duration
	var bytesSent int64
	for _, k := range mine {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(k) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		m := msgs[k%len(msgs)]
		if err := c.Mail("bench@load.test"); err != nil {
			return lat, bytesSent, err
		}
		if err := c.Rcpt("archive@bench.test"); err != nil {
			return lat, bytesSent, err
		}
		w, err := c.Data()
		if err != nil {
			return lat, bytesSent, err
		}
		if _, err := w.Write(m); err != nil {
			return lat, bytesSent, err
		}
		if !bytes.HasSuffix(m, []byte("\n")) {
			if _, err := w.Write([]byte("\r\n")); err != nil {
				return lat, bytesSent, err
			}
		}
		// Close writes what is buffered of the content (at most 4 KiB) and
		// the final ".", then waits for the reply.
		t := time.Now()
		if err := w.Close(); err != nil {
			return lat, bytesSent, err
		}
		lat = append(lat, time.Since(t))
		bytesSent += int64(len(m))
	}
	return lat, bytesSent, c.Quit()
}
