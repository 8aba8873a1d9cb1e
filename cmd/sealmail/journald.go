// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// journalSocket is where systemd-journald takes native log records.
const journalSocket = "/run/systemd/journal/socket"

// journalStream reports whether stderr is the stream systemd connected to
// the journal (JOURNAL_STREAM names its device and inode), as
// systemd.exec(5) says a program should check before it logs natively.
func journalStream(stderr *os.File) bool {
	dev, ino, ok := strings.Cut(os.Getenv("JOURNAL_STREAM"), ":")
	if !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(stderr.Fd()), &st); err != nil {
		return false
	}
	return dev == strconv.FormatUint(st.Dev, 10) && ino == strconv.FormatUint(st.Ino, 10)
}

// newJournalHandler returns a slog.Handler that sends each record to the
// journal as one datagram of the native protocol
// (systemd.io/JOURNAL_NATIVE_PROTOCOL): MESSAGE, PRIORITY,
// SYSLOG_IDENTIFIER and every attribute as a field of its own (key in
// upper case, groups joined by _), so that `journalctl -o json` and
// field matches (`journalctl SEGMENT=00000007`) see them. A record the
// journal does not take is written to fallback instead.
func newJournalHandler(level slog.Leveler, fallback io.Writer) (slog.Handler, error) {
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: journalSocket, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &journalHandler{j: &journalConn{c: c, fallback: slog.NewTextHandler(fallback, &slog.HandlerOptions{Level: level})}, level: level}, nil
}

// journalConn is shared by a handler and those WithAttrs/WithGroup make.
type journalConn struct {
	mu       sync.Mutex
	c        *net.UnixConn
	fallback slog.Handler
}

type journalHandler struct {
	j      *journalConn
	level  slog.Leveler
	fields []byte // encoded attributes from WithAttrs
	prefix string // groups from WithGroup, "A_B_"
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	var b bytes.Buffer
	journalField(&b, "MESSAGE", r.Message)
	journalField(&b, "PRIORITY", strconv.Itoa(priority(r.Level)))
	journalField(&b, "SYSLOG_IDENTIFIER", "sealmail")
	b.Write(h.fields)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.prefix, a)
		return true
	})
	h.j.mu.Lock()
	_, err := h.j.c.Write(b.Bytes())
	h.j.mu.Unlock()
	if err != nil {
		// Too large for a datagram, or the journal is gone: stderr,
		// which systemd also sends to the journal, as text.
		return h.j.fallback.Handle(ctx, r)
	}
	return nil
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b bytes.Buffer
	b.Write(h.fields)
	for _, a := range as {
		appendAttr(&b, h.prefix, a)
	}
	return &journalHandler{j: h.j, level: h.level, fields: b.Bytes(), prefix: h.prefix}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &journalHandler{j: h.j, level: h.level, fields: h.fields, prefix: h.prefix + fieldName(name) + "_"}
}

// priority maps a slog level to a syslog priority (journald's PRIORITY).
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

func appendAttr(b *bytes.Buffer, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += fieldName(a.Key) + "_"
		}
		for _, g := range a.Value.Group() {
			appendAttr(b, p, g)
		}
		return
	}
	journalField(b, prefix+fieldName(a.Key), a.Value.String())
}

// fieldName makes a journal field name of an attribute key: upper case
// letters, digits and underscores, not starting with an underscore (those
// are the journal's own) or a digit.
func fieldName(key string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(key) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), "_")
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		s = "F_" + s
	}
	return s
}

// journalField appends one field: KEY=value and a newline, or, for a value
// with a newline in it, KEY, a newline, the value's length as 64-bit
// little-endian, the value and a newline.
func journalField(b *bytes.Buffer, key, value string) {
	if !strings.Contains(value, "\n") {
		b.WriteString(key)
		b.WriteByte('=')
		b.WriteString(value)
		b.WriteByte('\n')
		return
	}
	b.WriteString(key)
	b.WriteByte('\n')
	b.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(value))))
	b.WriteString(value)
	b.WriteByte('\n')
}
