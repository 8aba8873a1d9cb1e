// SPDX-License-Identifier: Apache-2.0

package store

import (
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Intent is the caller's token for a change it announced before the store
// made it (the sequence number of an audit entry): a seal ([Options.OnSeal])
// or a compaction ([Store.Compact]). The store records the token in the
// catalog in the same transaction as the change, so that whether the change
// committed is never lost: [Options.OnIntent] reports it, at once, or at the
// next Open if a crash came first. Zero means no intent.
type Intent uint64

// metaIntents lists, big-endian uint64s, the intents whose change committed
// but whose outcome OnIntent has not yet taken (docs/format.md).
var metaIntents = []byte("intents")

func pendingIntents(tx *bolt.Tx) []Intent {
	b := tx.Bucket(bucketMeta).Get(metaIntents)
	out := make([]Intent, 0, len(b)/8)
	for i := 0; i+8 <= len(b); i += 8 {
		out = append(out, Intent(binary.BigEndian.Uint64(b[i:])))
	}
	return out
}

func putIntents(tx *bolt.Tx, is []Intent) error {
	meta := tx.Bucket(bucketMeta)
	if len(is) == 0 {
		return meta.Delete(metaIntents)
	}
	b := make([]byte, 0, 8*len(is))
	for _, i := range is {
		b = binary.BigEndian.AppendUint64(b, uint64(i))
	}
	return meta.Put(metaIntents, b)
}

// addIntent records i as pending in the transaction that makes its change.
func addIntent(tx *bolt.Tx, i Intent) error {
	if i == 0 {
		return nil
	}
	return putIntents(tx, append(pendingIntents(tx), i))
}

// intentDone reports the outcome of i to OnIntent and, once it took a
// committed one, forgets it. A failure is logged: Open reports it again.
func (s *Store) intentDone(i Intent, committed bool) {
	if i == 0 || s.opts.OnIntent == nil {
		return
	}
	if err := s.opts.OnIntent(i, committed); err != nil {
		s.log.Warn("report the outcome of an intent (reported again at the next start)", "intent", uint64(i), "err", err)
		return
	}
	if committed {
		if err := s.forgetIntent(i); err != nil {
			s.log.Warn("forget a reported intent (reported again at the next start)", "intent", uint64(i), "err", err)
		}
	}
}

// forgetIntent removes a reported intent. catMu must be held.
func (s *Store) forgetIntent(i Intent) error {
	return s.updateLocked(func(tx *bolt.Tx) error {
		is := pendingIntents(tx)
		return putIntents(tx, slices.DeleteFunc(is, func(j Intent) bool { return j == i }))
	})
}

// PendingIntents returns the intents whose change committed but whose
// outcome [Options.OnIntent] has not yet taken (a crash came in between;
// the next Open reports them).
func (s *Store) PendingIntents() ([]Intent, error) {
	var is []Intent
	err := s.db.View(func(tx *bolt.Tx) error { is = pendingIntents(tx); return nil })
	return is, err
}

// resolveIntents reports, at Open, the intents whose change committed
// before a crash that came before their outcome was reported.
func (s *Store) resolveIntents() error {
	is, err := s.PendingIntents()
	if err != nil {
		return err
	}
	for _, i := range is {
		if s.opts.OnIntent != nil {
			if err := s.opts.OnIntent(i, true); err != nil {
				return fmt.Errorf("report committed intent %d: %w", i, err)
			}
		}
		if err := s.forgetIntent(i); err != nil {
			return fmt.Errorf("forget intent %d: %w", i, err)
		}
	}
	return nil
}
