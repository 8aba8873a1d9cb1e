package smtp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

type EnhancedCode [3]int

// SMTPError specifies the error code, enhanced error code (if any) and
// message returned by the server.
type SMTPError struct {
	Code         int
	EnhancedCode EnhancedCode
	Message      string
}

// NoEnhancedCode is used to indicate that enhanced error code should not be
// included in response.
//
// Note that RFC 2034 requires an enhanced code to be included in all 2xx, 4xx
// and 5xx responses. This constant is exported for use by extensions, you
// should probably use EnhancedCodeNotSet instead.
var NoEnhancedCode = EnhancedCode{-1, -1, -1}

// EnhancedCodeNotSet is a nil value of EnhancedCode field in SMTPError, used
// to indicate that backend failed to provide enhanced status code. X.0.0 will
// be used (X is derived from error code).
var EnhancedCodeNotSet = EnhancedCode{0, 0, 0}

func (err *SMTPError) Error() string {
	s := fmt.Sprintf("SMTP error %03d", err.Code)
	if err.Message != "" {
		s += ": " + err.Message
	}
	return s
}

func (err *SMTPError) Temporary() bool {
	return err.Code/100 == 4
}

var ErrDataTooLarge = &SMTPError{
	Code:         552,
	EnhancedCode: EnhancedCode{5, 3, 4},
	Message:      "Maximum message size exceeded",
}

// dataReader reads DATA content (RFC 5321 §4.2.5, §4.5.2): it removes the
// leading dot of every line that starts with one and ends at the line that
// is a single dot. Lines end only with CRLF; a bare CR or LF is content.
// It works on the bufio.Reader's buffer a line piece at a time (no per-byte
// state machine) and never reads past the end-of-data line, so pipelined
// commands after it stay buffered for the command reader.
type dataReader struct {
	r *bufio.Reader

	lineStart bool // the next byte starts a line (initially, and after CRLF)
	prevCR    bool // the last content byte returned was CR, mid-line
	eof       bool // the end-of-data line was consumed

	limited bool
	n       int64 // Maximum bytes remaining
}

func newDataReader(c *Conn) *dataReader {
	dr := &dataReader{
		r:         c.text.R,
		lineStart: true,
	}

	if c.server.MaxMessageBytes > 0 {
		dr.limited = true
		dr.n = int64(c.server.MaxMessageBytes)
	}

	return dr
}

func (r *dataReader) Read(b []byte) (n int, err error) {
	for !r.eof {
		if r.lineStart {
			// At most 3 bytes decide: ".\r\n" ends DATA, another "."
			// is removed (only the dot: ".\rX" gives "\rX").
			if n > 0 && r.r.Buffered() < 3 {
				// Do not wait for more input with content in hand.
				return n, nil
			}
			p, perr := r.r.Peek(3)
			if len(p) == 0 {
				return n, unexpectedEOF(perr)
			}
			if p[0] == '.' {
				if len(p) == 3 && p[1] == '\r' && p[2] == '\n' {
					r.r.Discard(3)
					r.eof = true
					break
				}
				if len(p) < 3 {
					// The connection ended inside the line.
					return n, unexpectedEOF(perr)
				}
				r.r.Discard(1)
			}
			r.lineStart = false
			r.prevCR = false
			continue
		}
		if n == len(b) {
			return n, nil
		}
		if r.limited && r.n <= 0 {
			return n, ErrDataTooLarge
		}
		want := r.r.Buffered()
		if want == 0 {
			if n > 0 {
				return n, nil
			}
			want = 1 // block for input
		}
		want = min(want, len(b)-n)
		if r.limited && int64(want) > r.n {
			want = int(r.n)
		}
		p, perr := r.r.Peek(want)
		if len(p) == 0 {
			return n, unexpectedEOF(perr)
		}
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			// RFC 5321 §2.3.8: only CRLF ends a line.
			crlf := (i > 0 && p[i-1] == '\r') || (i == 0 && r.prevCR)
			p = p[:i+1]
			r.lineStart = crlf
			r.prevCR = false
		} else {
			r.prevCR = p[len(p)-1] == '\r'
		}
		copy(b[n:], p)
		n += len(p)
		if r.limited {
			r.n -= int64(len(p))
		}
		r.r.Discard(len(p))
	}
	return n, io.EOF
}

func unexpectedEOF(err error) error {
	if err == nil || err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
