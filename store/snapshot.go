// SPDX-License-Identifier: Apache-2.0

package store

import (
	"fmt"
	"io"
	"os"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Snapshot is a consistent view of the store for a backup: the catalog as
// of one read transaction (written out when the snapshot is taken), and
// the segment files that catalog names, each readable up to the committed
// length it gives, whatever the store does meanwhile. Appends only add
// bytes after a committed length; a seal keeps the file; a compaction that
// replaces a file cannot remove what the snapshot opened (it holds the
// file open). A Snapshot is safe for concurrent use; [Store.Close] closes
// the snapshots still open.
type Snapshot struct {
	s       *Store
	catalog int64 // bytes of the catalog copy
	segs    []SegmentInfo
	mu      sync.Mutex // guards files: Store.Close may close the snapshot
	files   map[SegmentSeq]*os.File
}

// Snapshot takes a snapshot of the store (see [Snapshot]) and writes its
// catalog to catalog, a complete bbolt file as [bolt.Tx.WriteTo] makes it.
// The read transaction lasts as long as that write: while it is open bbolt
// cannot remap a catalog that grows, and a commit that must waits for it,
// so catalog should be fast (a local file, not a network). The caller must
// close the snapshot.
func (s *Store) Snapshot(catalog io.Writer) (*Snapshot, error) {
	// Between the catalog transaction and the opening of the files, no
	// compaction may replace a file the transaction names.
	s.compactMu.RLock()
	defer s.compactMu.RUnlock()
	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.mu.Unlock()
	// The catalog trails the segments (pending.go): write what acknowledged
	// commits changed first, so that the copy names them too.
	if !s.opts.ReadOnly && s.hasPending() {
		if err := s.update(nil); err != nil {
			return nil, fmt.Errorf("snapshot: flush the catalog: %w", err)
		}
	}
	sn := &Snapshot{s: s, files: make(map[SegmentSeq]*os.File)}
	err := s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketSegments).ForEach(func(k, v []byte) error {
			si, err := decodeSegment(SegmentSeq(beUint32(k)), s.id, v)
			if err != nil {
				return err
			}
			f, err := os.Open(si.path(s.dir))
			if err != nil {
				return fmt.Errorf("segment %s: %w", si.Seq, err)
			}
			sn.segs = append(sn.segs, *si)
			sn.files[si.Seq] = f
			return nil
		})
		if err != nil {
			return err
		}
		n, err := tx.WriteTo(catalog)
		sn.catalog = n
		if err != nil {
			return fmt.Errorf("write catalog: %w", err)
		}
		return nil
	})
	if err != nil {
		_ = sn.Close() // read-only files; the error above is the one to report
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	s.mu.Lock()
	if s.snaps == nil {
		s.snaps = make(map[*Snapshot]bool)
	}
	s.snaps[sn] = true
	s.mu.Unlock()
	return sn, nil
}

// Segments returns the segment table of the snapshot's catalog, in order;
// Size is each segment's committed length.
func (sn *Snapshot) Segments() []SegmentInfo { return sn.segs }

// Segment returns segment seq's bytes up to its committed length.
func (sn *Snapshot) Segment(seq SegmentSeq) (*io.SectionReader, error) {
	sn.mu.Lock()
	f := sn.files[seq]
	sn.mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("snapshot: segment %s is not in it", seq)
	}
	for _, si := range sn.segs {
		if si.Seq == seq {
			return io.NewSectionReader(f, 0, si.Size), nil
		}
	}
	panic(fmt.Sprintf("snapshot: segment %s open but not listed", seq))
}

// CatalogSize returns the size in bytes of the catalog copy.
func (sn *Snapshot) CatalogSize() int64 { return sn.catalog }

// Close closes the snapshot's files. It is idempotent.
func (sn *Snapshot) Close() error {
	sn.mu.Lock()
	var err error
	for seq, f := range sn.files {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		delete(sn.files, seq)
	}
	sn.mu.Unlock()
	sn.s.mu.Lock()
	delete(sn.s.snaps, sn)
	sn.s.mu.Unlock()
	return err
}

// closeSnapshots closes the snapshots still open, so that the catalog can
// close (bbolt waits for its read transactions).
func (s *Store) closeSnapshots() {
	s.mu.Lock()
	open := make([]*Snapshot, 0, len(s.snaps))
	for sn := range s.snaps {
		open = append(open, sn)
	}
	s.mu.Unlock()
	for _, sn := range open {
		_ = sn.Close() // closing read-only files
	}
}

// FileName returns the name of the segment's file in DIR/segments:
// NNNNNNNN.seg, or NNNNNNNN.gG.seg after its G-th compaction.
func (si *SegmentInfo) FileName() string {
	if si.Gen == 0 {
		return segmentName(si.Seq)
	}
	return fmt.Sprintf("%s.g%d.seg", si.Seq, si.Gen)
}
