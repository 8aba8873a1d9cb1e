// SPDX-License-Identifier: Apache-2.0

package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/sealmail/sealmail"
)

// bucketImports maps an import mark ([Store.ImportMark]) to the id of the
// message it was stored as (docs/format.md, "Catalog"). It is created on
// first use; a catalog without it has imported nothing.
var bucketImports = []byte("imports")

// ImportMark returns the key under which the import of original from one
// mailbox (source names it: kind, owner and folder, as the caller chooses)
// is recorded. It is keyed with the archive's digest key, so the catalog
// holds nothing from which content could be confirmed without the key.
func (s *Store) ImportMark(original []byte, source string) [32]byte {
	d := keyedDigest(s.key, original)
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("sealmail import mark v1\x00"))
	m.Write([]byte(source))
	m.Write([]byte{0})
	m.Write(d[:])
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

// Imported reports whether mark was recorded, and for which message.
func (s *Store) Imported(mark [32]byte) (sealmail.MessageID, bool, error) {
	var id sealmail.MessageID
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketImports)
		if b == nil {
			return nil
		}
		if v := b.Get(mark[:]); len(v) == 8 {
			id = sealmail.MessageID(beUint64(v))
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("look up import mark: %w", err)
	}
	return id, id != 0, nil
}

// MarkImported records that mark was stored as message id. Concurrent
// calls share one catalog transaction (bbolt's Batch). A crash between the
// append and this call leaves the message stored but unmarked: a re-run
// then adds one more receipt for it, nothing is lost.
func (s *Store) MarkImported(mark [32]byte, id sealmail.MessageID) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	err := s.db.Batch(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketImports)
		if err != nil {
			return err
		}
		return putU64(b, mark[:], uint64(id))
	})
	if err != nil {
		return fmt.Errorf("record import mark: %w", err)
	}
	return nil
}
