// SPDX-License-Identifier: Apache-2.0

package export

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MboxFormat is an mbox variant: how "From " lines inside messages were
// quoted.
type MboxFormat string

// mbox variants (qmail mbox(5)).
const (
	// MboxAuto reads as mboxrd unless told otherwise; see [DetectMboxFormat].
	MboxAuto MboxFormat = "auto"
	// MboxRD: the writer quoted every ^>*From line with one more '>'; the
	// reader removes one '>' from every ^>+From line. Exact.
	MboxRD MboxFormat = "mboxrd"
	// MboxO: the writer quoted ^From lines only; the reader removes the '>'
	// of ^>From lines only (a line that was ">From " in the original
	// comes back as "From ": mboxo cannot tell them apart).
	MboxO MboxFormat = "mboxo"
)

// ParseMboxFormat checks a --mbox-format value.
func ParseMboxFormat(s string) (MboxFormat, error) {
	switch f := MboxFormat(s); f {
	case "", MboxAuto:
		return MboxAuto, nil
	case MboxRD, MboxO:
		return f, nil
	}
	return "", fmt.Errorf("mbox format %q: want auto, mboxrd or mboxo", s)
}

// detectBytes is how much of an mbox DetectMboxFormat reads.
const detectBytes = 64 << 20

// DetectMboxFormat looks at the first 64 MiB of r for a line that only an
// mboxrd writer produces (^>>+From : a quoted ">From " line) and returns
// MboxRD if it finds one. Otherwise it returns MboxRD as well: the two
// variants read every other line the same way, so the choice matters only
// for ^>>+From lines, and an mboxo file holds those only when an original
// did. Use --mbox-format mboxo for files written by an mboxo tool whose
// messages contain such lines. It returns the variant and whether the
// sample proved it.
func DetectMboxFormat(r io.Reader) (MboxFormat, bool, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, detectBytes), 64<<10)
	start := true
	for {
		line, err := br.ReadSlice('\n')
		if start && len(line) > 2 && line[0] == '>' && line[1] == '>' {
			if startsFrom(bytes.TrimLeft(line, ">")) {
				return MboxRD, true, nil
			}
		}
		start = err == nil
		if err == bufio.ErrBufferFull {
			start = false
			continue
		}
		if err == io.EOF {
			return MboxRD, false, nil
		}
		if err != nil {
			return "", false, err
		}
	}
}

// MboxReader splits an mbox into messages, streaming: memory holds one
// message (at most [ReaderOptions.MaxMessageBytes]) and a 64 KiB buffer,
// whatever the size of the file.
//
// A message starts at a "From " line at the start of the file or after an
// empty line (so an unquoted "From " line inside a body, which a sloppy
// writer may leave, stays in its message). The "From " line and the empty
// line before the next one are not part of the message; everything else is
// returned as the file has it (LF or CRLF), with the quoting of the variant
// undone.
type MboxReader struct {
	br     *bufio.Reader
	closer io.Closer
	format MboxFormat
	folder string
	max    int64

	off     int64 // bytes consumed
	size    int64 // of the file, when known
	pending []byte
	pendOff int64 // offset of the pending "From " line
	eof     bool
	buf     bytes.Buffer
}

// NewMboxReader reads an mbox from r; folder names it (for reports and
// envelopes). format must be MboxRD or MboxO (resolve MboxAuto with
// [DetectMboxFormat] first; NewMboxReader treats it as MboxRD).
func NewMboxReader(r io.Reader, folder string, format MboxFormat, opts ReaderOptions) *MboxReader {
	if format != MboxO {
		format = MboxRD
	}
	m := &MboxReader{br: bufio.NewReaderSize(r, 64<<10), format: format, folder: folder, max: opts.max()}
	if c, ok := r.(io.Closer); ok {
		m.closer = c
	}
	return m
}

// OpenMbox opens the mbox file at path; format MboxAuto is resolved with
// [DetectMboxFormat]. The folder is the file's name without an .mbox or
// .mbx extension.
func OpenMbox(path string, format MboxFormat, opts ReaderOptions) (*MboxReader, MboxFormat, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("import: open mbox: %w", err)
	}
	if format == MboxAuto || format == "" {
		format, _, err = DetectMboxFormat(f)
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err != nil {
			f.Close()
			return nil, "", fmt.Errorf("import: read mbox %s: %w", path, err)
		}
	}
	folder := filepath.Base(path)
	for _, ext := range []string{".mbox", ".mbx"} {
		folder = strings.TrimSuffix(folder, ext)
	}
	m := NewMboxReader(f, folder, format, opts)
	if fi, err := f.Stat(); err == nil {
		m.size = fi.Size()
	}
	return m, format, nil
}

// Progress returns the bytes read and the file's size (0 when unknown).
func (m *MboxReader) Progress() (done, total int64) { return m.off, m.size }

// Close closes the underlying file, if the reader opened it or was given
// an io.Closer.
func (m *MboxReader) Close() error {
	if m.closer != nil {
		return m.closer.Close()
	}
	return nil
}

// readLine returns the next line with its line end, and whether the line
// is whole (false: the first 64 KiB of a longer line; the rest follows).
func (m *MboxReader) readLine() ([]byte, bool, error) {
	line, err := m.br.ReadSlice('\n')
	m.off += int64(len(line))
	if err == bufio.ErrBufferFull {
		return line, false, nil
	}
	return line, true, err
}

func startsFrom(b []byte) bool { return bytes.HasPrefix(b, []byte("From ")) }

func isEmptyLine(b []byte) bool {
	return len(b) == 1 && b[0] == '\n' || len(b) == 2 && b[0] == '\r' && b[1] == '\n'
}

// Next returns the next message. A message larger than the limit is read
// past and reported as an *ItemError wrapping ErrTooLarge.
func (m *MboxReader) Next() (*Message, error) {
	if m.pending == nil {
		if m.eof {
			return nil, io.EOF
		}
		// The start of the file: skip anything before the first "From "
		// line (there should be nothing).
		for {
			start := m.off
			line, whole, err := m.readLine()
			if len(line) > 0 && startsFrom(line) {
				m.pending, m.pendOff = append([]byte(nil), line...), start
				for !whole && err == nil {
					_, whole, err = m.readLine() // the rest of an over-long separator line
				}
				if err != nil && err != io.EOF {
					return nil, fmt.Errorf("import: read mbox: %w", err)
				}
				m.eof = err == io.EOF
				break
			}
			for !whole && err == nil {
				_, whole, err = m.readLine()
			}
			if err == io.EOF {
				m.eof = true
				return nil, io.EOF
			}
			if err != nil {
				return nil, fmt.Errorf("import: read mbox: %w", err)
			}
		}
	}
	pos := m.pendOff
	received := parseFromLineDate(m.pending)
	m.pending = nil
	m.buf.Reset()
	var (
		size      int64
		tooLarge  bool
		prevEmpty bool // the previous whole line was empty
		atStart   = true
		lastEmpty int // length of the last line if it was empty
	)
	for !m.eof {
		lineStart := m.off
		line, whole, err := m.readLine()
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("import: read mbox at offset %d: %w", m.off, err)
		}
		if err == io.EOF {
			m.eof = true
		}
		if len(line) == 0 {
			break
		}
		if atStart && prevEmpty && startsFrom(line) {
			// The next message: this "From " line is its separator.
			m.pending, m.pendOff = append([]byte(nil), line...), lineStart
			for !whole && err == nil {
				_, whole, err = m.readLine() // the rest of an over-long separator line
			}
			if err != nil && err != io.EOF {
				return nil, fmt.Errorf("import: read mbox: %w", err)
			}
			if err == io.EOF {
				m.eof = true
			}
			break
		}
		if atStart {
			line = m.unquote(line)
		}
		if whole {
			prevEmpty = atStart && isEmptyLine(line)
			if prevEmpty {
				lastEmpty = len(line)
			} else {
				lastEmpty = 0
			}
		} else {
			prevEmpty, lastEmpty = false, 0
		}
		atStart = whole
		size += int64(len(line))
		if size > m.max {
			tooLarge = true
			m.buf.Reset()
			continue
		}
		m.buf.Write(line)
	}
	if tooLarge {
		return nil, &ItemError{Folder: m.folder, Position: fmt.Sprintf("offset %d", pos),
			Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, m.max)}
	}
	raw := m.buf.Bytes()
	if prevEmpty {
		// The empty line that separates messages (mbox(5): every message
		// ends with one) is not part of the message.
		raw = raw[:len(raw)-lastEmpty]
	}
	return &Message{Raw: bytes.Clone(raw), Folder: m.folder, Received: received, Position: fmt.Sprintf("offset %d", pos)}, nil
}

// unquote undoes the variant's "From " quoting of one line start.
func (m *MboxReader) unquote(line []byte) []byte {
	if len(line) < 6 || line[0] != '>' {
		return line
	}
	switch m.format {
	case MboxO:
		if startsFrom(line[1:]) {
			return line[1:]
		}
	default:
		if startsFrom(bytes.TrimLeft(line, ">")) {
			return line[1:]
		}
	}
	return line
}

// parseFromLineDate reads the date of a "From sender date" line; zero when
// it has none that parses.
func parseFromLineDate(line []byte) time.Time {
	s := strings.TrimRight(string(line), "\r\n")
	s = strings.TrimPrefix(s, "From ")
	s = strings.TrimLeft(s, " ")
	i := strings.IndexByte(s, ' ')
	if i < 0 {
		return time.Time{}
	}
	s = strings.TrimSpace(s[i+1:])
	for _, layout := range []string{
		time.ANSIC, time.UnixDate, "Mon Jan _2 15:04:05 2006 -0700", "Mon Jan _2 15:04:05 -0700 2006",
		"Mon Jan _2 15:04 2006", "Mon, _2 Jan 2006 15:04:05 -0700",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

var errNotMbox = errors.New("not an mbox: it does not start with a \"From \" line")

// CheckMbox tells whether path looks like an mbox (starts with "From "),
// for a clear error before a long import of the wrong file.
func CheckMbox(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	b := make([]byte, 5)
	if _, err := io.ReadFull(f, b); err != nil || !startsFrom(b) {
		return fmt.Errorf("import: %s: %w", path, errNotMbox)
	}
	return nil
}
