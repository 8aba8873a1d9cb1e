// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/sealmail/sealmail/audit"
)

// MaxEventFields bounds the fields of one event the reader service posts.
const MaxEventFields = 48 << 10

// RecordEvent appends an event of the reader service (a sign-in, a search,
// an export, an unlock, an erasure request or approval) to the audit log
// and returns its seq once it is durable. Only the types of
// [audit.ReaderTypes] and those under [audit.AccessPrefix] are accepted:
// never a type the receiver or the reader interprets when it reads the log
// back (ingest, holds, deletions, seals, recovery). The actor is the
// context's (the person); fields must be a JSON object, to which the
// service the event came through is added as "via".
func (a *Archive) RecordEvent(ctx context.Context, typ string, fields json.RawMessage) (uint64, error) {
	if !readerType(typ) {
		return 0, invalid("audit event type %q: the reader may post %s and %s…", typ,
			strings.Join(audit.ReaderTypes(), ", "), audit.AccessPrefix)
	}
	if len(fields) > MaxEventFields {
		return 0, invalid("audit event %s: fields of %d bytes, at most %d", typ, len(fields), MaxEventFields)
	}
	m := map[string]json.RawMessage{}
	dec := json.NewDecoder(bytes.NewReader(fields))
	if len(bytes.TrimSpace(fields)) > 0 {
		if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
			return 0, invalid("audit event %s: fields must be one JSON object", typ)
		}
	}
	if via := viaOf(ctx); via != "" {
		v, _ := json.Marshal(via)
		m["via"] = v
	}
	e, err := a.audit.Append(ctx, audit.Event{Type: typ, Actor: actorOf(ctx), Fields: m})
	if err != nil {
		return 0, err
	}
	return e.Seq, nil
}

// readerType reports whether the reader may post events of type typ.
func readerType(typ string) bool {
	if slices.Contains(audit.ReaderTypes(), typ) {
		return true
	}
	action, ok := strings.CutPrefix(typ, audit.AccessPrefix)
	if !ok || action == "" || len(typ) > 64 {
		return false
	}
	for _, c := range action {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
