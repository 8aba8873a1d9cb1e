// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/sealmail/sealmail"
)

// The store keeps two things about legal holds, both for the archive above
// it: the hold definitions, as one opaque document (meta/holds), and which
// messages each hold covers (the hold_members bucket), as the reader
// service evaluated the holds' queries against its index and posted them.
// Membership only grows; releasing a hold drops all of it at once.

// metaHolds is the meta key under which the archive keeps its legal holds,
// as opaque bytes the store does not interpret (docs/format.md).
var metaHolds = []byte("holds")

// Holds returns the stored legal-hold document, nil if none.
func (s *Store) Holds() ([]byte, error) {
	var b []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b = bytes.Clone(tx.Bucket(bucketMeta).Get(metaHolds))
		return nil
	})
	return b, err
}

// SetHolds replaces the stored legal-hold document, durably, and drops the
// membership of the holds named in release in the same transaction.
func (s *Store) SetHolds(b []byte, release ...string) error {
	if s.opts.ReadOnly {
		return fmt.Errorf("set holds: %w", ErrReadOnly)
	}
	for _, name := range release {
		if err := checkHoldName(name); err != nil {
			return err
		}
	}
	return s.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(metaHolds, b); err != nil {
			return err
		}
		hm := tx.Bucket(bucketHoldMembers)
		for _, name := range release {
			prefix := holdPrefix(name)
			c := hm.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
				if err := hm.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// HoldMembership is what the catalog records of one hold's members.
type HoldMembership struct {
	Members int
	// Through is the audit sequence number up to which the reader said it
	// had evaluated the hold when it last posted members.
	Through uint64
}

// AddHoldMembers records that hold name covers the live messages among
// ids, and that the reader evaluated it through audit entry through. Ids
// already recorded, unknown or not live are left out. audit is called
// inside the catalog transaction with the ids newly recorded (in id order,
// possibly none) and must make an audit entry naming them durable; its
// error rolls the change back. It returns the ids newly recorded.
func (s *Store) AddHoldMembers(name string, ids []sealmail.MessageID, through uint64, audit func(added []sealmail.MessageID) error) ([]sealmail.MessageID, error) {
	if s.opts.ReadOnly {
		return nil, fmt.Errorf("add hold members: %w", ErrReadOnly)
	}
	if err := checkHoldName(name); err != nil {
		return nil, err
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var added []sealmail.MessageID
	err := s.update(func(tx *bolt.Tx) error {
		added = added[:0]
		hm, msgs := tx.Bucket(bucketHoldMembers), tx.Bucket(bucketMessages)
		for _, id := range ids {
			k := memberKey(name, id)
			if hm.Get(k) != nil {
				continue
			}
			v := msgs.Get(idKey(id))
			if v == nil {
				continue
			}
			m, err := decodeMessage(id, v)
			if err != nil {
				return err
			}
			if m.State != StateLive {
				continue
			}
			if err := hm.Put(k, []byte{catalogVersion}); err != nil {
				return err
			}
			added = append(added, id)
		}
		tk := holdPrefix(name)
		if prev := decodeThrough(hm.Get(tk)); through > prev {
			if err := hm.Put(tk, binary.LittleEndian.AppendUint64([]byte{catalogVersion}, through)); err != nil {
				return err
			}
		}
		return audit(added)
	})
	if err != nil {
		return nil, fmt.Errorf("hold %q: add members: %w", name, err)
	}
	return added, nil
}

// HoldMembers calls fn, if not nil, for each message hold name covers, in
// id order, and returns the hold's membership.
func (s *Store) HoldMembers(name string, fn func(sealmail.MessageID) error) (HoldMembership, error) {
	var hm HoldMembership
	if err := checkHoldName(name); err != nil {
		return hm, err
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHoldMembers)
		if b == nil {
			return nil // a format-1 catalog opened read-only
		}
		prefix := holdPrefix(name)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) == len(prefix) {
				hm.Through = decodeThrough(v)
				continue
			}
			if len(k) != len(prefix)+8 {
				return fmt.Errorf("hold %q: member key of %d bytes: %w", name, len(k), ErrCorrupt)
			}
			hm.Members++
			if fn != nil {
				if err := fn(sealmail.MessageID(beUint64(k[len(prefix):]))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return hm, err
}

// HeldBy returns, for those of ids that one of the holds named covers, the
// names of the holds that do.
func (s *Store) HeldBy(names []string, ids []sealmail.MessageID) (map[sealmail.MessageID][]string, error) {
	out := make(map[sealmail.MessageID][]string)
	for _, name := range names {
		if err := checkHoldName(name); err != nil {
			return nil, err
		}
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHoldMembers)
		if b == nil {
			return nil
		}
		for _, id := range ids {
			for _, name := range names {
				if b.Get(memberKey(name, id)) != nil {
					out[id] = append(out[id], name)
				}
			}
		}
		return nil
	})
	return out, err
}

// HoldRecord is what recover rebuilds of one hold's membership.
type HoldRecord struct {
	IDs     []sealmail.MessageID
	Through uint64
}

// putHoldMembers writes the membership recover rebuilt.
func putHoldMembers(tx *bolt.Tx, members map[string]HoldRecord) error {
	b := tx.Bucket(bucketHoldMembers)
	for name, r := range members {
		if err := checkHoldName(name); err != nil {
			return err
		}
		for _, id := range r.IDs {
			if err := b.Put(memberKey(name, id), []byte{catalogVersion}); err != nil {
				return err
			}
		}
		if err := b.Put(holdPrefix(name), binary.LittleEndian.AppendUint64([]byte{catalogVersion}, r.Through)); err != nil {
			return err
		}
	}
	return nil
}

// holdPrefix is the key of a hold's through value and the prefix of its
// members' keys: the name and a zero byte.
func holdPrefix(name string) []byte { return append([]byte(name), 0) }

func memberKey(name string, id sealmail.MessageID) []byte {
	return binary.BigEndian.AppendUint64(holdPrefix(name), uint64(id))
}

func decodeThrough(v []byte) uint64 {
	if len(v) != 9 || v[0] != catalogVersion {
		return 0
	}
	return binary.LittleEndian.Uint64(v[1:])
}

// checkHoldName refuses names that cannot be keys (policy allows fewer).
func checkHoldName(name string) error {
	if name == "" || len(name) > 255 || bytes.IndexByte([]byte(name), 0) >= 0 {
		return fmt.Errorf("store: hold name %q: want 1 to 255 bytes without NUL", name)
	}
	return nil
}
