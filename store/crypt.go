// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/sealmail/sealmail"
)

// PayloadHeader is the JSON line that starts every record's plaintext. It is
// inside the encryption: it may hold addresses.
type PayloadHeader struct {
	Version  int                `json:"v"`
	Kind     string             `json:"kind"` // message, envelope, tombstone
	Received time.Time          `json:"received"`
	Size     int64              `json:"size"`   // bytes of the original message
	SHA256   string             `json:"sha256"` // hex SHA-256 of the original message
	Envelope *sealmail.Envelope `json:"envelope,omitempty"`
	// ReportSize is the length of the journal report that follows the
	// original (message records) or the header line (envelope records).
	ReportSize int64 `json:"report_size,omitempty"`
	// ReportCut (version 2, message entries) says the journal report
	// held the original verbatim at this offset and is stored without
	// those bytes; readers splice the original back in. ReportSize is then
	// the length of what is stored.
	ReportCut *int64 `json:"report_cut,omitempty"`
	// Reason and Audit explain a tombstone.
	Reason string `json:"reason,omitempty"`
	Audit  uint64 `json:"audit,omitempty"`
}

// Payload is a decrypted record.
type Payload struct {
	Header   PayloadHeader
	Original []byte // message records only
	Report   []byte // nil when no journal report was kept
}

// codec compresses and encrypts payloads. It is safe for concurrent use.
type codec struct {
	recipients []age.Recipient
	enc        *zstd.Encoder
	plain      sync.Pool // *[]byte: compress's plaintext buffers
}

// maxPooledPlain is the largest plaintext buffer compress keeps for reuse.
const maxPooledPlain = 1 << 20

func newCodec(recipients []age.Recipient) (*codec, error) {
	// One encoder per CPU: EncodeAll calls beyond the concurrency queue,
	// and a session queued there holds its whole message (issue #12).
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	return &codec{recipients: recipients, enc: enc}, nil
}

// compress builds an entry's plaintext (header line, then data parts in
// order) and compresses it into one zstd frame. It runs in the caller's
// goroutine, so that sessions compress in parallel.
func (c *codec) compress(h *PayloadHeader, parts ...[]byte) ([]byte, error) {
	line, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("marshal record header: %w", err)
	}
	n := len(line) + 1
	for _, p := range parts {
		n += len(p)
	}
	var plain []byte
	if b, ok := c.plain.Get().(*[]byte); ok && cap(*b) >= n {
		plain = (*b)[:0]
	} else {
		plain = make([]byte, 0, n)
	}
	plain = append(append(plain, line...), '\n')
	for _, p := range parts {
		plain = append(plain, p...)
	}
	frame := c.enc.EncodeAll(plain, make([]byte, 0, len(plain)/2+64))
	if cap(plain) <= maxPooledPlain {
		c.plain.Put(&plain)
	}
	return frame, nil
}

// encrypt makes one age file of the concatenated frames.
func (c *codec) encrypt(frames [][]byte) ([]byte, error) { return c.begin().finish(frames) }

// encryptor is an age file begun: its header is written — a new file key,
// wrapped for every recipient — and its payload is not. The wrap is the
// costly, asymmetric step, and it does not depend on the payload, so the
// writer has the next record's encryptor made while it waits for a commit's
// fsync (DESIGN.md, "Cost to design for"). One file key is wrapped per
// record, not per message.
type encryptor struct {
	out bytes.Buffer
	w   io.WriteCloser
	err error
}

// begin starts an age file for the codec's recipients.
func (c *codec) begin() *encryptor {
	e := &encryptor{}
	e.w, e.err = age.Encrypt(&e.out, c.recipients...)
	if e.err != nil {
		e.err = fmt.Errorf("encrypt record: %w", e.err)
	}
	return e
}

// finish writes the concatenated frames as the payload and returns the
// whole age file. An encryptor is used once.
func (e *encryptor) finish(frames [][]byte) ([]byte, error) {
	if e.err != nil {
		return nil, e.err
	}
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	e.out.Grow(n + n/(64<<10)*16 + 16)
	for _, f := range frames {
		if _, err := e.w.Write(f); err != nil {
			return nil, fmt.Errorf("encrypt record: %w", err)
		}
	}
	if err := e.w.Close(); err != nil {
		return nil, fmt.Errorf("encrypt record: %w", err)
	}
	return e.out.Bytes(), nil
}

// maxPlaintext bounds decompression so that a hostile payload cannot exhaust
// memory.
const maxPlaintext = 1 << 31

// OpenPayload decrypts the entry whose zstd frame is at [off, off+n) of a
// record's plaintext, using the reader's identities, and checks the
// original's SHA-256 against the entry's header. Only the age chunks that
// hold the frame are decrypted.
func OpenPayload(payload []byte, off, n int64, identities ...age.Identity) (*Payload, error) {
	r, err := DecryptRecord(payload, identities...)
	if err != nil {
		return nil, err
	}
	return r.Entry(off, n)
}

// DecryptedRecord is a record's payload with its file key unwrapped: each
// entry read from it decrypts only the age chunks that hold its frame. The
// unwrapping (an asymmetric operation) is done once for all its entries.
type DecryptedRecord struct {
	ra   io.ReaderAt
	size int64
}

// DecryptRecord unwraps a record payload's file key with the identities.
// An error for identities that are not the archive's satisfies
// [IsNoIdentityMatch].
func DecryptRecord(payload []byte, identities ...age.Identity) (*DecryptedRecord, error) {
	ra, size, err := age.DecryptReaderAt(bytes.NewReader(payload), int64(len(payload)), identities...)
	if err != nil {
		return nil, fmt.Errorf("decrypt record: %w", err)
	}
	return &DecryptedRecord{ra: ra, size: size}, nil
}

// Entry decrypts and decompresses the entry whose zstd frame is at
// [off, off+n) of the record's plaintext and checks the original's
// SHA-256 against the entry's header. It may be called concurrently.
func (r *DecryptedRecord) Entry(off, n int64) (*Payload, error) {
	if off < 0 || n <= 0 || off+n > r.size {
		return nil, fmt.Errorf("entry at %d+%d beyond record plaintext of %d bytes: %w", off, n, r.size, ErrCorrupt)
	}
	frame := make([]byte, n)
	if _, err := r.ra.ReadAt(frame, off); err != nil && !(errors.Is(err, io.EOF) && off+n == r.size) {
		return nil, fmt.Errorf("decrypt record: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxPlaintext))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	plain, err := dec.DecodeAll(frame, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress entry: %w", err)
	}
	return parsePlaintext(plain)
}

func parsePlaintext(plain []byte) (*Payload, error) {
	i := bytes.IndexByte(plain, '\n')
	if i < 0 {
		return nil, fmt.Errorf("record plaintext: no header line: %w", ErrCorrupt)
	}
	p := &Payload{}
	if err := json.Unmarshal(plain[:i], &p.Header); err != nil {
		return nil, fmt.Errorf("record plaintext header: %v: %w", err, ErrCorrupt)
	}
	switch {
	case p.Header.Version == 1 && p.Header.ReportCut == nil:
	case p.Header.Version == 2 && p.Header.ReportCut != nil && p.Header.Kind == KindMessage.String():
	case p.Header.Version == 1 || p.Header.Version == 2:
		return nil, fmt.Errorf("record plaintext header: version %d with report_cut %v: %w", p.Header.Version, p.Header.ReportCut != nil, ErrCorrupt)
	default:
		return nil, fmt.Errorf("record plaintext header: version %d: %w", p.Header.Version, ErrUnsupportedVersion)
	}
	data := plain[i+1:]
	var origLen int64
	if p.Header.Kind == KindMessage.String() {
		origLen = p.Header.Size
	}
	if origLen < 0 || p.Header.ReportSize < 0 || origLen+p.Header.ReportSize != int64(len(data)) {
		return nil, fmt.Errorf("record plaintext: %d data bytes, header says %d+%d: %w",
			len(data), origLen, p.Header.ReportSize, ErrCorrupt)
	}
	if origLen > 0 || p.Header.Kind == KindMessage.String() {
		p.Original = data[:origLen]
		if sum := sha256.Sum256(p.Original); hex.EncodeToString(sum[:]) != p.Header.SHA256 {
			return nil, fmt.Errorf("record plaintext: original SHA-256 mismatch: %w", ErrCorrupt)
		}
	}
	if p.Header.ReportSize > 0 {
		p.Report = data[origLen:]
	}
	if cut := p.Header.ReportCut; cut != nil {
		stored := data[origLen:]
		if *cut < 0 || *cut > int64(len(stored)) {
			return nil, fmt.Errorf("record plaintext: report cut at %d of %d bytes: %w", *cut, len(stored), ErrCorrupt)
		}
		r := make([]byte, 0, len(stored)+len(p.Original))
		p.Report = append(append(append(r, stored[:*cut]...), p.Original...), stored[*cut:]...)
	}
	return p, nil
}

// cutOriginal returns the report without the original's bytes, and where
// they were, when the report holds the original verbatim (an Exchange
// journal report attaches it as message/rfc822, usually unencoded), so that
// a message entry stores those bytes once (issue #12: half the memory and
// space for a journal report). It returns the report itself and nil
// otherwise.
func cutOriginal(report, original []byte) ([]byte, *int64) {
	if len(original) == 0 || len(report) < len(original) {
		return report, nil
	}
	// Look for a short prefix (SIMD IndexByte underneath), then compare.
	probe := original[:min(len(original), 256)]
	for from := 0; from <= len(report)-len(original); {
		i := bytes.Index(report[from:], probe)
		if i < 0 {
			break
		}
		i += from
		if bytes.HasPrefix(report[i:], original) {
			cut := int64(i)
			out := make([]byte, 0, len(report)-len(original))
			return append(append(out, report[:i]...), report[i+len(original):]...), &cut
		}
		from = i + 1
	}
	return report, nil
}

// keyedDigest is the dedup key of an original: HMAC-SHA-256 with the
// archive's digest key, so that the catalog does not reveal whether it holds
// a given message to someone without the key.
func keyedDigest(key, original []byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write(original)
	var d [32]byte
	copy(d[:], m.Sum(nil))
	return d
}

// IsNoIdentityMatch reports whether err says that none of the identities
// could decrypt a record.
func IsNoIdentityMatch(err error) bool {
	var e *age.NoIdentityMatchError
	return errors.As(err, &e)
}
