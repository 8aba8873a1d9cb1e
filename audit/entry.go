// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Format constants; docs/format.md ("Audit log format") specifies them.
const (
	// Magic is the value of the "magic" key in every file header.
	Magic = "sealmail-audit"
	// Version is the format version this package writes and reads.
	Version = 1
	// MaxLineBytes bounds one line (header or entry) without its newline.
	// Append rejects larger entries, so the log never holds a line a reader
	// must buffer without limit.
	MaxLineBytes = 64 << 10

	maxActorBytes = 256
	maxTypeBytes  = 64
)

// Hash is a SHA-256 value: the hash of one line of the log, or the genesis
// value. Its text form is 64 lowercase hex digits.
type Hash [sha256.Size]byte

// hashLine returns the hash of a line: SHA-256 over its bytes without the
// terminating newline.
func hashLine(line []byte) Hash { return Hash(sha256.Sum256(line)) }

// String returns the lowercase hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zero bytes (no hash).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText implements [encoding.TextMarshaler].
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler]. It accepts exactly 64
// lowercase hex digits, so that a hash has one text form.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ParseHash parses the form written by [Hash.String].
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("hash %q: want %d hex digits", s, 2*len(h))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return h, fmt.Errorf("hash %q: want lowercase hex", s)
		}
	}
	_, err := hex.Decode(h[:], []byte(s))
	return h, err
}

// Entry is one line of the log as written or read back. Its JSON encoding
// (for `audit show --json`) uses the line's key names plus "hash".
type Entry struct {
	// Seq numbers entries 1, 2, … without gaps across all files.
	Seq uint64 `json:"seq"`
	// Time is when the entry was appended, in UTC.
	Time time.Time `json:"time"`
	// Type is the event type (see the Type… constants).
	Type string `json:"type"`
	// Actor is who caused the operation; may be empty.
	Actor string `json:"actor"`
	// Fields are the structured facts. Read back, numbers are json.Number;
	// from [Log.Append] it is the caller's map itself, or nil when the
	// caller passed a struct. [Entry.DecodeFields] decodes them into a
	// struct.
	Fields map[string]any `json:"fields"`
	// Prev is the hash of the previous line: the previous entry, or for
	// Seq 1 the genesis hash (the hash of the first file's header line).
	Prev Hash `json:"prev"`
	// Hash is the hash of this entry's own line. It is not stored in the
	// line; the next entry's Prev repeats it.
	Hash Hash `json:"hash"`

	rawFields json.RawMessage
}

// DecodeFields decodes the entry's fields into v, a pointer to the struct
// that describes its type's facts (or any other target of
// [encoding/json.Unmarshal]). Keys v does not know are ignored, so that a
// reader of an older entry type accepts newer facts.
func (e Entry) DecodeFields(v any) error {
	raw := e.rawFields
	if raw == nil {
		b, err := json.Marshal(e.Fields)
		if err != nil {
			return fmt.Errorf("audit: entry %d fields: %w", e.Seq, err)
		}
		raw = b
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("audit: entry %d (%s) fields: %w", e.Seq, e.Type, err)
	}
	return nil
}

// entryJSON is the decoding shape of an entry line. Pointers tell a missing
// key from a zero value.
type entryJSON struct {
	Seq    *uint64         `json:"seq"`
	Time   *string         `json:"time"`
	Type   *string         `json:"type"`
	Actor  *string         `json:"actor"`
	Fields json.RawMessage `json:"fields"`
	Prev   *Hash           `json:"prev"`
}

// ParseEntry parses one entry line (without or with its terminating newline)
// and computes its [Entry.Hash]. It checks the line's own syntax only; chain
// and sequence checks are [Verify]'s.
func ParseEntry(line []byte) (Entry, error) { return parseEntry(line, true) }

// parseEntry is ParseEntry; without withFields it checks that fields is a
// JSON object but leaves Entry.Fields nil (Verify needs no map).
func parseEntry(line []byte, withFields bool) (Entry, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if len(line) > MaxLineBytes {
		return Entry{}, fmt.Errorf("entry: line of %d bytes exceeds %d", len(line), MaxLineBytes)
	}
	var j entryJSON
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Entry{}, fmt.Errorf("entry: %w", err)
	}
	if dec.More() {
		return Entry{}, errors.New("entry: data after JSON object")
	}
	switch {
	case j.Seq == nil || *j.Seq == 0:
		return Entry{}, errors.New("entry: missing or zero seq")
	case j.Time == nil:
		return Entry{}, errors.New("entry: missing time")
	case j.Type == nil:
		return Entry{}, errors.New("entry: missing type")
	case j.Actor == nil:
		return Entry{}, errors.New("entry: missing actor")
	case j.Fields == nil:
		return Entry{}, errors.New("entry: missing fields")
	case j.Prev == nil:
		return Entry{}, errors.New("entry: missing prev")
	}
	if err := checkType(*j.Type); err != nil {
		return Entry{}, fmt.Errorf("entry: %w", err)
	}
	if err := checkActor(*j.Actor); err != nil {
		return Entry{}, fmt.Errorf("entry: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, *j.Time)
	if err != nil {
		return Entry{}, fmt.Errorf("entry: time: %w", err)
	}
	if _, off := t.Zone(); off != 0 {
		return Entry{}, fmt.Errorf("entry: time %q: want UTC", *j.Time)
	}
	var fields map[string]any
	if withFields {
		if fields, err = decodeFields(j.Fields); err != nil {
			return Entry{}, fmt.Errorf("entry: fields: %w", err)
		}
	} else if j.Fields[0] != '{' {
		return Entry{}, errors.New("entry: fields: want a JSON object")
	}
	return Entry{
		Seq:       *j.Seq,
		Time:      t.UTC(),
		Type:      *j.Type,
		Actor:     *j.Actor,
		Fields:    fields,
		Prev:      *j.Prev,
		Hash:      hashLine(line),
		rawFields: j.Fields,
	}, nil
}

func decodeFields(raw json.RawMessage) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("want a JSON object")
	}
	return m, nil
}

// checkType accepts 1–64 bytes of [a-z0-9._-].
func checkType(s string) error {
	if s == "" || len(s) > maxTypeBytes {
		return fmt.Errorf("type %q: want 1 to %d bytes", s, maxTypeBytes)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("type %q: want only a-z 0-9 . _ -", s)
		}
	}
	return nil
}

func checkActor(s string) error {
	if len(s) > maxActorBytes || !utf8.ValidString(s) {
		return fmt.Errorf("actor: want at most %d bytes of UTF-8", maxActorBytes)
	}
	return nil
}

// preparedEvent is an event whose variable-free parts are already encoded, so
// that the JSON work happens in the caller's goroutine and the writer only
// splices in seq, time and prev.
type preparedEvent struct {
	typ    string
	tail   []byte // `"type":…,"actor":…,"fields":{…},"prev":"`
	fields json.RawMessage
	actor  string
}

func prepareEvent(e Event) (preparedEvent, error) {
	if err := checkType(e.Type); err != nil {
		return preparedEvent{}, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	if err := checkActor(e.Actor); err != nil {
		return preparedEvent{}, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	fields := []byte("{}")
	if e.Fields != nil {
		b, err := json.Marshal(e.Fields)
		if err != nil {
			return preparedEvent{}, fmt.Errorf("%w: fields: %w", ErrInvalidEvent, err)
		}
		switch {
		case len(b) > 0 && b[0] == '{':
			fields = b
		case string(b) == "null": // a nil map or pointer: no facts
		default:
			return preparedEvent{}, fmt.Errorf("%w: fields: %s is not a JSON object", ErrInvalidEvent, b[:min(len(b), 20)])
		}
	}
	typ, _ := json.Marshal(e.Type)
	actor, _ := json.Marshal(e.Actor)
	tail := make([]byte, 0, len(typ)+len(actor)+len(fields)+40)
	tail = append(tail, `,"type":`...)
	tail = append(tail, typ...)
	tail = append(tail, `,"actor":`...)
	tail = append(tail, actor...)
	tail = append(tail, `,"fields":`...)
	tail = append(tail, fields...)
	tail = append(tail, `,"prev":"`...)
	// seq (20) + time (~40) + prev (64) + punctuation.
	if len(tail)+160 > MaxLineBytes {
		return preparedEvent{}, fmt.Errorf("%w: entry exceeds %d bytes", ErrInvalidEvent, MaxLineBytes)
	}
	return preparedEvent{typ: e.Type, tail: tail, fields: fields, actor: e.Actor}, nil
}

// appendLine appends the canonical entry line for p (without newline) to dst:
//
//	{"seq":N,"time":"T","type":…,"actor":…,"fields":{…},"prev":"HEX"}
func (p preparedEvent) appendLine(dst []byte, seq uint64, t time.Time, prev Hash) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	dst = append(dst, p.tail...)
	dst = hex.AppendEncode(dst, prev[:])
	dst = append(dst, `"}`...)
	return dst
}

// header is the first line of every file.
type header struct {
	Magic   string `json:"magic"`
	Version int    `json:"version"`
	Archive string `json:"archive"`
	File    int    `json:"file"`
	Created string `json:"created"`
}

func (h header) marshal() []byte {
	b, err := json.Marshal(h)
	if err != nil {
		panic(fmt.Sprintf("marshal header: %v", err))
	}
	return b
}

// parseHeader parses a header line. An unknown version yields
// ErrUnsupportedVersion before any other field is judged.
func parseHeader(line []byte) (header, error) {
	var probe struct {
		Magic   string `json:"magic"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		return header{}, fmt.Errorf("header: %w", err)
	}
	if probe.Magic != Magic {
		return header{}, fmt.Errorf("header: magic %q, want %q", probe.Magic, Magic)
	}
	if probe.Version > Version {
		return header{}, fmt.Errorf("header version %d: %w", probe.Version, ErrUnsupportedVersion)
	}
	if probe.Version < 1 {
		return header{}, fmt.Errorf("header: version %d is not a format version", probe.Version)
	}
	var h header
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return header{}, fmt.Errorf("header: %w", err)
	}
	if err := checkArchiveID(h.Archive); err != nil {
		return header{}, fmt.Errorf("header: %w", err)
	}
	if h.File < 1 {
		return header{}, fmt.Errorf("header: file number %d", h.File)
	}
	if _, err := time.Parse(time.RFC3339Nano, h.Created); err != nil {
		return header{}, fmt.Errorf("header: created: %w", err)
	}
	return h, nil
}

// checkArchiveID accepts 1–128 printable ASCII characters without spaces, so
// the id fits on one line of the checkpoint text form.
func checkArchiveID(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("archive id %q: want 1 to 128 characters", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("archive id %q: want printable ASCII without spaces", s)
		}
	}
	return nil
}
