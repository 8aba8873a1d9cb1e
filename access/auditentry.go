// SPDX-License-Identifier: Apache-2.0

package access

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// auditTypePrefix starts the audit type of every [Event]: the reader's
// entries cannot be mistaken for the receiver's own (ingest, segment.*).
const auditTypePrefix = "access."

// AuditEntry is an [Event] as the receiver's audit log records it (through
// its /v1/audit/events endpoint): Type is "access." and the action, Actor
// the person, Fields the event's JSON form.
type AuditEntry struct {
	Type   string
	Actor  string
	Fields Event
}

// AuditEntry maps ev onto the receiver's audit log. The actor is "NAME
// (ROLE)" for a user, "root" for the local root principal, the command
// line's "cli:NAME(uid N)", or empty when nobody is known (a sign-in under
// a name that is not a user, a lockout of an address).
func (ev Event) AuditEntry() AuditEntry {
	actor := ""
	switch {
	case ev.User != "" && ev.Role != "":
		actor = ev.User + " (" + string(ev.Role) + ")"
	case ev.User != "":
		actor = ev.User
	case strings.HasPrefix(ev.Remote, "cli:"):
		actor = ev.Remote
	}
	return AuditEntry{Type: auditTypePrefix + string(ev.Action), Actor: actor, Fields: ev}
}

// AuditTypes lists the audit entry types [Event.AuditEntry] makes: the
// receiver's allow-list for the reader's events.
func AuditTypes() []string {
	var out []string
	for _, a := range Actions() {
		out = append(out, auditTypePrefix+string(a))
	}
	return out
}

// putOutbox appends ev to the audit outbox in tx.
func putOutbox(tx *bolt.Tx, ev Event) error {
	b := tx.Bucket(bucketOutbox)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	v, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return b.Put(binary.BigEndian.AppendUint64(nil, seq), v)
}

// ForwardOutbox sends the events kept in the audit outbox (by the command
// line, [StateOptions].AuditOutbox) to send, oldest first, deleting each
// once send accepted it. It stops at the first error and returns it; the
// events not sent stay for the next call. Delivery is at least once: after
// a crash between send and delete, the event is sent again (with the same
// time and fields).
func (s *State) ForwardOutbox(ctx context.Context, send func(context.Context, Event) error) (int, error) {
	n := 0
	for {
		var key []byte
		var ev Event
		err := s.db.View(func(tx *bolt.Tx) error {
			k, v := tx.Bucket(bucketOutbox).Cursor().First()
			if k == nil {
				return nil
			}
			key = append([]byte(nil), k...)
			return json.Unmarshal(v, &ev)
		})
		if err != nil {
			return n, fmt.Errorf("access: forward audit outbox: %w", err)
		}
		if key == nil {
			return n, nil
		}
		if err := send(ctx, ev); err != nil {
			return n, fmt.Errorf("access: forward audit outbox: %s of %s: %w", ev.Action, ev.Time.Format("2006-01-02T15:04:05Z"), err)
		}
		if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketOutbox).Delete(key) }); err != nil {
			return n, fmt.Errorf("access: forward audit outbox: %w", err)
		}
		n++
	}
}

// OutboxLen returns how many events wait in the audit outbox.
func (s *State) OutboxLen(ctx context.Context) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketOutbox).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("access: audit outbox: %w", err)
	}
	return n, nil
}
