// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/vfs"
)

// Compaction is what [Store.Compact] did to one sealed segment.
type Compaction struct {
	Segment          SegmentSeq
	OldSHA256        [32]byte
	NewSHA256        [32]byte
	OldSize, NewSize int64
	// Dropped are the entries of the records removed: every entry of a
	// dropped record belongs to a deleted message.
	Dropped []Committed
}

// Compact rewrites a sealed segment without the records whose entries all
// belong to deleted messages, reclaiming their bytes. Records are copied
// byte for byte (the store cannot decrypt, so a record that still holds a
// live entry, or a tombstone, is kept whole). The new file is written and
// synced as NNNNNNNN.gG.seg; onCompact then makes the audit entry (an
// [Intent]) durable, and one catalog transaction moves every kept entry's
// location and the segment's size, hash and generation, recording the
// intent; [Options.OnIntent] reports the outcome; only then is the old file
// removed. A crash leaves either the old state or the new one plus a stale
// file that Open removes. It returns nil when there is nothing to reclaim.
func (s *Store) Compact(ctx context.Context, seq SegmentSeq, onCompact func(*Compaction) (Intent, error)) (*Compaction, error) {
	if s.opts.ReadOnly {
		return nil, fmt.Errorf("compact: %w", ErrReadOnly)
	}
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	si, err := s.segment(seq)
	if err != nil {
		return nil, err
	}
	if si.State != SegmentSealed {
		return nil, fmt.Errorf("compact segment %s: only sealed segments are compacted", seq)
	}
	deleted := func(id sealmail.MessageID) bool {
		m, err := s.Message(id)
		return err == nil && m.State == StateDeleted
	}
	var keep []ScannedRecord
	c := &Compaction{Segment: seq, OldSHA256: si.SHA256, OldSize: si.Size}
	old := si.path(s.dir)
	_, _, err = ScanFile(old, func(rec ScannedRecord) error {
		drop := true
		for _, e := range rec.Header.Entries {
			if e.Kind == KindTombstone || !deleted(e.ID) {
				drop = false
			}
		}
		if !drop {
			keep = append(keep, rec)
			return nil
		}
		for k, e := range rec.Header.Entries {
			c.Dropped = append(c.Dropped, Committed{Kind: e.Kind, ID: e.ID, Digest: e.Digest, Size: e.Size,
				Received: timeFromNanos(e.Received), RecordSHA256: rec.SHA256,
				Location: Location{Segment: seq, Offset: rec.Offset, Length: rec.Length, Entry: k}})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compact segment %s: %w", seq, err)
	}
	if len(c.Dropped) == 0 {
		return nil, nil
	}
	next := *si
	next.Gen++
	newPath := next.path(s.dir)
	moved, size, sum, err := s.copyRecords(old, newPath, keep)
	if err != nil {
		s.fs.Remove(newPath)
		return nil, fmt.Errorf("compact segment %s: %w", seq, err)
	}
	c.NewSHA256, c.NewSize = sum, size
	next.Size, next.SHA256, next.Records = size, sum, int64(len(keep))
	var intent Intent
	if onCompact != nil {
		if intent, err = onCompact(c); err != nil {
			s.fs.Remove(newPath)
			return nil, fmt.Errorf("compact segment %s: audit: %w", seq, err)
		}
	}
	// catMu until the intent is reported (intentDone forgets it in the
	// catalog).
	s.catMu.Lock()
	err = s.updateLocked(func(tx *bolt.Tx) error {
		msgs, envs := tx.Bucket(bucketMessages), tx.Bucket(bucketEnvelopes)
		for i, rec := range keep {
			for k, e := range rec.Header.Entries {
				oldLoc := Location{Segment: seq, Offset: rec.Offset, Length: rec.Length, Entry: k}
				newLoc := Location{Segment: seq, Offset: moved[i], Length: rec.Length, Entry: k}
				m, err := decodeMessage(e.ID, msgs.Get(idKey(e.ID)))
				if err != nil {
					continue // a tombstone's message, or an entry no catalog entry points at
				}
				if m.Location == oldLoc {
					m.Location = newLoc
					if err := msgs.Put(idKey(m.ID), encodeMessage(m)); err != nil {
						return err
					}
				}
				for n := 2; n <= m.Receipts; n++ {
					if l, err := decodeLocation(envs.Get(envelopeKey(m.ID, n))); err == nil && l == oldLoc {
						if err := envs.Put(envelopeKey(m.ID, n), encodeLocation(newLoc)); err != nil {
							return err
						}
					}
				}
			}
		}
		// Deleted messages whose records went point nowhere now.
		for _, d := range c.Dropped {
			if d.Kind != KindMessage {
				continue
			}
			m, err := decodeMessage(d.ID, msgs.Get(idKey(d.ID)))
			if err == nil && m.State == StateDeleted && m.Location == d.Location {
				m.Location = Location{}
				if err := msgs.Put(idKey(m.ID), encodeMessage(m)); err != nil {
					return err
				}
			}
		}
		if err := addIntent(tx, intent); err != nil {
			return err
		}
		return tx.Bucket(bucketSegments).Put(segKey(seq), encodeSegment(&next))
	})
	if err == nil {
		s.intentDone(intent, true)
	}
	s.catMu.Unlock()
	if cerr := (*catalogCommitError)(nil); errors.As(err, &cerr) {
		// The catalog may name the new file: keep both; Open sorts it out.
		return nil, fmt.Errorf("compact segment %s: %w", seq, err)
	}
	if err != nil {
		s.intentDone(intent, false)
		s.fs.Remove(newPath)
		return nil, fmt.Errorf("compact segment %s: %w", seq, err)
	}
	if err := s.fs.Remove(old); err != nil {
		s.log.Warn("compact: remove the old segment file", "segment", seq.String(), "err", err)
	}
	if err := vfs.SyncDir(s.fs, filepath.Dir(old)); err != nil {
		s.log.Warn("compact: sync the segment directory", "segment", seq.String(), "err", err)
	}
	s.log.Info("compacted segment", "segment", seq.String(), "bytes_before", c.OldSize, "bytes_after", c.NewSize, "entries_dropped", len(c.Dropped))
	return c, nil
}

// copyRecords writes the segment header of old and the kept records to a
// new file, syncs it and its directory, makes it read-only, and returns the
// records' new offsets, the file's size and SHA-256.
func (s *Store) copyRecords(old, path string, keep []ScannedRecord) ([]int64, int64, [32]byte, error) {
	var sum [32]byte
	src, err := os.Open(old)
	if err != nil {
		return nil, 0, sum, err
	}
	defer src.Close()
	dst, err := s.fs.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, 0, sum, err
	}
	defer dst.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(dst, h), 1<<20)
	if _, err := io.Copy(w, io.NewSectionReader(src, 0, segmentHeaderSize)); err != nil {
		return nil, 0, sum, err
	}
	off := int64(segmentHeaderSize)
	moved := make([]int64, len(keep))
	for i, rec := range keep {
		moved[i] = off
		if _, err := io.Copy(w, io.NewSectionReader(src, rec.Offset, rec.Length)); err != nil {
			return nil, 0, sum, err
		}
		off += rec.Length
	}
	if err := w.Flush(); err != nil {
		return nil, 0, sum, err
	}
	if err := dst.Sync(); err != nil {
		return nil, 0, sum, err
	}
	if err := dst.Chmod(0o444); err != nil {
		return nil, 0, sum, err
	}
	if err := vfs.SyncDir(s.fs, filepath.Dir(path)); err != nil {
		return nil, 0, sum, err
	}
	copy(sum[:], h.Sum(nil))
	return moved, off, sum, nil
}

// removeStaleSegmentFiles deletes files of sealed segments whose generation
// the catalog does not name: the old file after a compaction that crashed
// before removing it, or a new one whose catalog transaction never
// committed.
func (s *Store) removeStaleSegmentFiles() error {
	segs, err := s.Segments()
	if err != nil {
		return err
	}
	current := make(map[string]bool, len(segs))
	for _, si := range segs {
		current[si.path(s.dir)] = true
	}
	for _, si := range segs {
		if si.State != SegmentSealed {
			continue
		}
		names, _ := filepath.Glob(filepath.Join(s.dir, "segments", si.Seq.String()+".*seg"))
		for _, n := range names {
			if !current[n] {
				s.log.Warn("removing a segment file left by an interrupted compaction", "file", n)
				if err := s.fs.Remove(n); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
