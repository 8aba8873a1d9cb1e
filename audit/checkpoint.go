// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// checkpointTitle is the first line of the checkpoint text form.
const checkpointTitle = "sealmail audit checkpoint v1"

// Checkpoint is a signed statement "in archive Archive, entry Seq of the
// audit log has hash Head". It commits to every entry up to Seq, because each
// entry's hash covers the previous entry's hash.
//
// The log writes each checkpoint as an entry of type "checkpoint" right after
// entry Seq (so that entry has sequence Seq+1). Its text form
// ([Checkpoint.MarshalText]) is what an operator copies off the host —
// printed, mailed, committed elsewhere — and later hands to [Verify] as an
// external checkpoint.
type Checkpoint struct {
	// Archive is the archive id from the log's header.
	Archive string
	// Seq is the sequence number of the last entry covered; 0 for an empty
	// log, whose Head is then the genesis hash.
	Seq uint64
	// Head is the hash of entry Seq's line.
	Head Hash
	// Time is when the checkpoint was made (UTC).
	Time time.Time
	// Key is the Ed25519 public key that made Sig.
	Key ed25519.PublicKey
	// Sig is the Ed25519 signature over [Checkpoint.SignedText].
	Sig []byte
}

// SignedText returns the bytes the signature covers: the text form up to and
// including the "key:" line, each line ending in "\n":
//
//	sealmail audit checkpoint v1
//	archive: <archive id>
//	seq: <decimal>
//	head: <64 lowercase hex>
//	time: <RFC 3339 with nanoseconds, UTC>
//	key: <64 lowercase hex>
func (c Checkpoint) SignedText() []byte {
	var b bytes.Buffer
	b.WriteString(checkpointTitle + "\n")
	b.WriteString("archive: " + c.Archive + "\n")
	b.WriteString("seq: " + strconv.FormatUint(c.Seq, 10) + "\n")
	b.WriteString("head: " + c.Head.String() + "\n")
	b.WriteString("time: " + c.Time.UTC().Format(time.RFC3339Nano) + "\n")
	b.WriteString("key: " + hex.EncodeToString(c.Key) + "\n")
	return b.Bytes()
}

// MarshalText returns the text form: [Checkpoint.SignedText] followed by
// "sig: <standard base64>\n". It is stable across versions of this package.
func (c Checkpoint) MarshalText() ([]byte, error) {
	if err := checkArchiveID(c.Archive); err != nil {
		return nil, fmt.Errorf("marshal checkpoint: %w", err)
	}
	if len(c.Key) != ed25519.PublicKeySize || len(c.Sig) != ed25519.SignatureSize {
		return nil, errors.New("marshal checkpoint: missing key or signature")
	}
	b := c.SignedText()
	b = append(b, "sig: "...)
	b = base64.StdEncoding.AppendEncode(b, c.Sig)
	return append(b, '\n'), nil
}

// UnmarshalText parses the form [Checkpoint.MarshalText] writes, so that a
// checkpoint survives a JSON round trip.
func (c *Checkpoint) UnmarshalText(b []byte) error {
	cp, err := ParseCheckpoint(b)
	if err != nil {
		return err
	}
	*c = cp
	return nil
}

func (c Checkpoint) String() string {
	b, err := c.MarshalText()
	if err != nil {
		return fmt.Sprintf("unsigned checkpoint seq %d head %s", c.Seq, c.Head)
	}
	return string(b)
}

// ParseCheckpoint parses the text form written by [Checkpoint.MarshalText].
// Because people copy it by hand, it tolerates CRLF line ends, trailing
// blanks on a line and blank lines before and after; everything else must be
// exact. It does not check the signature: call [Checkpoint.Verify].
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	var lines []string
	for l := range strings.SplitSeq(string(text), "\n") {
		lines = append(lines, strings.TrimRight(l, " \t\r"))
	}
	for len(lines) > 0 && lines[0] == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	keys := []string{"", "archive", "seq", "head", "time", "key", "sig"}
	if len(lines) != len(keys) {
		return Checkpoint{}, fmt.Errorf("parse checkpoint: %d lines, want %d", len(lines), len(keys))
	}
	if lines[0] != checkpointTitle {
		return Checkpoint{}, fmt.Errorf("parse checkpoint: first line %q, want %q", lines[0], checkpointTitle)
	}
	vals := make([]string, len(keys))
	for i := 1; i < len(keys); i++ {
		v, ok := strings.CutPrefix(lines[i], keys[i]+": ")
		if !ok {
			return Checkpoint{}, fmt.Errorf("parse checkpoint: line %d: want %q", i+1, keys[i]+": …")
		}
		vals[i] = v
	}
	var c Checkpoint
	var err error
	c.Archive = vals[1]
	if err := checkArchiveID(c.Archive); err != nil {
		return Checkpoint{}, fmt.Errorf("parse checkpoint: %w", err)
	}
	if c.Seq, err = parseDecimal(vals[2]); err != nil {
		return Checkpoint{}, fmt.Errorf("parse checkpoint: seq: %w", err)
	}
	if c.Head, err = ParseHash(vals[3]); err != nil {
		return Checkpoint{}, fmt.Errorf("parse checkpoint: %w", err)
	}
	if c.Time, err = parseUTC(vals[4]); err != nil {
		return Checkpoint{}, fmt.Errorf("parse checkpoint: time: %w", err)
	}
	if c.Key, err = parseKey(vals[5]); err != nil {
		return Checkpoint{}, fmt.Errorf("parse checkpoint: %w", err)
	}
	if c.Sig, err = base64.StdEncoding.Strict().DecodeString(vals[6]); err != nil || len(c.Sig) != ed25519.SignatureSize {
		return Checkpoint{}, fmt.Errorf("parse checkpoint: sig: want %d bytes of standard base64", ed25519.SignatureSize)
	}
	return c, nil
}

// ParseCheckpoints parses a text holding any number of checkpoints in text
// form, one after another (an anchors file to which each new checkpoint is
// appended). Each starts at a line "sealmail audit checkpoint v1"; blank
// lines between them are ignored. It returns them in file order.
func ParseCheckpoints(text []byte) ([]Checkpoint, error) {
	var (
		cps   []Checkpoint
		block []string
		start int
	)
	flush := func() error {
		if len(block) == 0 {
			return nil
		}
		c, err := ParseCheckpoint([]byte(strings.Join(block, "\n")))
		if err != nil {
			return fmt.Errorf("checkpoint at line %d: %w", start, err)
		}
		cps = append(cps, c)
		block = block[:0]
		return nil
	}
	n := 0
	for l := range strings.SplitSeq(string(text), "\n") {
		n++
		if strings.TrimRight(l, " \t\r") == checkpointTitle {
			if err := flush(); err != nil {
				return nil, err
			}
			start = n
		} else if len(block) == 0 && strings.TrimSpace(l) != "" {
			return nil, fmt.Errorf("parse checkpoints: line %d: want %q", n, checkpointTitle)
		}
		if len(block) > 0 || strings.TrimSpace(l) != "" {
			block = append(block, l)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return cps, nil
}

// parseDecimal parses an unsigned decimal without sign or leading zeros.
func parseDecimal(s string) (uint64, error) {
	if len(s) > 1 && s[0] == '0' || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("%q: want a canonical decimal number", s)
	}
	return strconv.ParseUint(s, 10, 64)
}

// parseUTC parses an RFC 3339 time that must be in UTC ("Z") and in the
// canonical RFC3339Nano form, so that the signed text can be rebuilt exactly.
func parseUTC(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	if t.UTC().Format(time.RFC3339Nano) != s {
		return time.Time{}, fmt.Errorf("%q: want canonical RFC 3339 in UTC", s)
	}
	return t.UTC(), nil
}

func parseKey(s string) (ed25519.PublicKey, error) {
	if len(s) != 2*ed25519.PublicKeySize || strings.ToLower(s) != s {
		return nil, fmt.Errorf("key %q: want %d lowercase hex digits", s, 2*ed25519.PublicKeySize)
	}
	k, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", s, err)
	}
	return ed25519.PublicKey(k), nil
}

// Verify checks the signature with c.Key. If trusted is not nil, c.Key must
// also equal it; pass the key from signing.pub or from a checkpoint held
// outside the host. Errors wrap [ErrBadSignature].
func (c Checkpoint) Verify(trusted ed25519.PublicKey) error {
	if len(c.Key) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: no key", ErrBadSignature)
	}
	if trusted != nil && !c.Key.Equal(trusted) {
		return fmt.Errorf("%w: signed by key %x, want %x", ErrBadSignature, []byte(c.Key), []byte(trusted))
	}
	if !ed25519.Verify(c.Key, c.SignedText(), c.Sig) {
		return fmt.Errorf("%w: seq %d", ErrBadSignature, c.Seq)
	}
	return nil
}

// sign fills c.Key and c.Sig.
func (c *Checkpoint) sign(priv ed25519.PrivateKey) {
	c.Key = priv.Public().(ed25519.PublicKey)
	c.Sig = ed25519.Sign(priv, c.SignedText())
}

// checkpointFields is the "fields" object of a checkpoint entry.
type checkpointFields struct {
	Archive string `json:"archive"`
	Seq     uint64 `json:"seq"`
	Head    Hash   `json:"head"`
	Time    string `json:"time"`
	Key     string `json:"key"`
	Sig     string `json:"sig"`
}

func (c Checkpoint) fieldsJSON() []byte {
	b, err := json.Marshal(checkpointFields{
		Archive: c.Archive,
		Seq:     c.Seq,
		Head:    c.Head,
		Time:    c.Time.UTC().Format(time.RFC3339Nano),
		Key:     hex.EncodeToString(c.Key),
		Sig:     base64.StdEncoding.EncodeToString(c.Sig),
	})
	if err != nil {
		panic(fmt.Sprintf("marshal checkpoint fields: %v", err))
	}
	return b
}

// checkpointFromEntry decodes the checkpoint carried by a checkpoint entry.
func checkpointFromEntry(e Entry) (Checkpoint, error) {
	if e.Type != TypeCheckpoint {
		return Checkpoint{}, fmt.Errorf("entry seq %d has type %q, not a checkpoint", e.Seq, e.Type)
	}
	var f checkpointFields
	dec := json.NewDecoder(bytes.NewReader(e.rawFields))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint fields: %w", err)
	}
	c := Checkpoint{Archive: f.Archive, Seq: f.Seq, Head: f.Head}
	var err error
	if c.Time, err = parseUTC(f.Time); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint fields: time: %w", err)
	}
	if c.Key, err = parseKey(f.Key); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint fields: %w", err)
	}
	if c.Sig, err = base64.StdEncoding.Strict().DecodeString(f.Sig); err != nil || len(c.Sig) != ed25519.SignatureSize {
		return Checkpoint{}, fmt.Errorf("checkpoint fields: sig: want %d bytes of standard base64", ed25519.SignatureSize)
	}
	return c, nil
}
