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
}

func newCodec(recipients []age.Recipient) (*codec, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	return &codec{recipients: recipients, enc: enc}, nil
}

// seal builds the plaintext (header line, then data parts in order),
// compresses it and encrypts it for every recipient.
func (c *codec) seal(h *PayloadHeader, parts ...[]byte) ([]byte, error) {
	line, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("marshal record header: %w", err)
	}
	n := len(line) + 1
	for _, p := range parts {
		n += len(p)
	}
	plain := make([]byte, 0, n)
	plain = append(append(plain, line...), '\n')
	for _, p := range parts {
		plain = append(plain, p...)
	}
	z := c.enc.EncodeAll(plain, make([]byte, 0, len(plain)/2+64))
	var out bytes.Buffer
	out.Grow(len(z) + 512)
	w, err := age.Encrypt(&out, c.recipients...)
	if err != nil {
		return nil, fmt.Errorf("encrypt record: %w", err)
	}
	if _, err := w.Write(z); err != nil {
		return nil, fmt.Errorf("encrypt record: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypt record: %w", err)
	}
	return out.Bytes(), nil
}

// maxPlaintext bounds decompression so that a hostile payload cannot exhaust
// memory.
const maxPlaintext = 1 << 31

// OpenPayload decrypts and decompresses a record payload with the reader's
// identities, and checks the original's SHA-256 against the header.
func OpenPayload(payload []byte, identities ...age.Identity) (*Payload, error) {
	r, err := age.Decrypt(bytes.NewReader(payload), identities...)
	if err != nil {
		return nil, fmt.Errorf("decrypt record: %w", err)
	}
	dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxPlaintext))
	if err != nil {
		return nil, fmt.Errorf("decompress record: %w", err)
	}
	defer dec.Close()
	plain, err := io.ReadAll(io.LimitReader(dec, maxPlaintext))
	if err != nil {
		return nil, fmt.Errorf("decompress record: %w", err)
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
	if p.Header.Version != 1 {
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
	return p, nil
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
