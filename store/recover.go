// SPDX-License-Identifier: Apache-2.0

package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/vfs"
)

// RecoverOptions carries what [Recover] needs beyond the segments: the facts
// that only the audit log keeps. The archive reads them from its audit log;
// every field may be empty (then what it describes is not rebuilt).
type RecoverOptions struct {
	// Retention is each message's retain-until as the audit log has it (the
	// longest of its receipts, then policy changes).
	Retention map[sealmail.MessageID]Retention
	// DeletedBy names, per deleted message, the audit entry (purge or
	// erase) that ordered the deletion; the segments have its time.
	DeletedBy map[sealmail.MessageID]uint64
	// Ingested is what the audit log recorded of each message entry, for
	// deleted messages whose records compaction has removed.
	Ingested map[sealmail.MessageID]Ingested
	// Sealed is, per segment, the SHA-256 and size of the file last
	// audited (at sealing or compaction), and when.
	Sealed map[SegmentSeq]SealFact
	// DroppedReceipts counts the message and envelope entries compaction
	// removed (they count in the receipts total).
	DroppedReceipts int64
	// MaxID is the highest message id the audit log names: ids are never
	// reused, even those of records lost or cut off.
	MaxID sealmail.MessageID
	// Holds is the legal-hold document to store (see [Store.SetHolds]).
	Holds []byte
	// HoldMembers is, per active hold, the messages it covers (see
	// [Store.AddHoldMembers]).
	HoldMembers map[string]HoldRecord
	Logger      *slog.Logger
	Now         func() time.Time
}

// Retention is a retain-until decision.
type Retention struct {
	Until   time.Time
	Forever bool
}

// Ingested is the audit log's record of a message entry.
type Ingested struct {
	Size     int64
	Received time.Time
	Digest   [32]byte
	Receipts int // ingest entries (message and envelopes) it has
}

// SealFact is an audited segment hash.
type SealFact struct {
	SHA256 [32]byte
	Size   int64
	At     time.Time
}

// RecoverResult says what [Recover] rebuilt.
type RecoverResult struct {
	Messages int64 // live
	Deleted  int64
	Receipts int64
	Segments int
	Sealed   int
	NextID   sealmail.MessageID
	// Replaced is where the catalog that was there before is kept (empty
	// if there was none).
	Replaced string
	// Findings are what did not fit: unreadable segment tails, files the
	// audit log does not vouch for, entries without their message.
	Findings []string
}

var segFileRE = regexp.MustCompile(`^(\d{8})(?:\.g(\d+))?\.seg$`)

// Recover rebuilds DIR/catalog.db from the segment files (whose clear
// record headers hold ids, kinds, times, sizes, digests and locations) and
// the facts in o. It reads the segments and writes a new catalog, which it
// then renames over the old one (kept as catalog.db.replaced-TIME): it
// changes nothing else, so it can be run again. The catalog must not be in
// use ([ErrLocked]).
//
// What it cannot rebuild: for a deleted message whose records compaction
// removed and of which o knows nothing, its size and time.
func Recover(dir string, o RecoverOptions) (*RecoverResult, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	info, err := ReadArchiveInfo(dir)
	if err != nil {
		return nil, err
	}
	var archiveID [16]byte
	if b, err := hexDecode16(info.ID); err != nil {
		return nil, fmt.Errorf("%s: archive id: %w", archiveFile, ErrCorrupt)
	} else {
		archiveID = b
	}
	catalog := filepath.Join(dir, catalogFile)
	unlock, err := lockCatalog(catalog)
	if err != nil {
		return nil, err
	}
	defer unlock()

	res := &RecoverResult{}
	finding := func(format string, v ...any) { res.Findings = append(res.Findings, fmt.Sprintf(format, v...)) }

	// The segment files: per sequence number, its generations.
	des, err := os.ReadDir(filepath.Join(dir, "segments"))
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	gens := make(map[SegmentSeq][]uint32)
	for _, de := range des {
		m := segFileRE.FindStringSubmatch(de.Name())
		if m == nil {
			continue
		}
		seq, _ := strconv.ParseUint(m[1], 10, 32)
		var gen uint64
		if m[2] != "" {
			gen, _ = strconv.ParseUint(m[2], 10, 32)
		}
		gens[SegmentSeq(seq)] = append(gens[SegmentSeq(seq)], uint32(gen))
	}
	seqs := make([]SegmentSeq, 0, len(gens))
	for seq := range gens {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)

	type msgState struct {
		m    *MessageInfo
		envs []Location // receipts 2, 3, …
	}
	msgs := make(map[sealmail.MessageID]*msgState)
	digests := make(map[[32]byte]sealmail.MessageID)
	var segInfos []SegmentInfo
	maxID := o.MaxID
	var present int64 // message and envelope entries in the segments
	for i, seq := range seqs {
		if i > 0 && seq != seqs[i-1]+1 {
			finding("segments %s to %s are missing", seqs[i-1]+1, seq-1)
		}
		si := SegmentInfo{Seq: seq, ArchiveID: archiveID, Gen: pickGen(dir, seq, gens[seq], o.Sealed, finding)}
		path := si.path(dir)
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
		last := i == len(seqs)-1
		fact, audited := o.Sealed[seq]
		if !last || audited || fi.Mode().Perm()&0o222 == 0 {
			si.State = SegmentSealed
		} else {
			si.State = SegmentActive
		}
		hdr, valid, scanErr := ScanFile(path, func(rec ScannedRecord) error {
			for k, e := range rec.Header.Entries {
				loc := Location{Segment: seq, Offset: rec.Offset, Length: rec.Length, Entry: k}
				maxID = max(maxID, e.ID)
				switch e.Kind {
				case KindMessage:
					present++
					if old := msgs[e.ID]; old != nil && old.m.Location != (Location{}) {
						finding("segment %s offset %d: a second message entry for message %d (first at %s offset %d); the first is kept",
							seq, rec.Offset, e.ID, old.m.Location.Segment, old.m.Location.Offset)
						continue
					}
					m := &MessageInfo{ID: e.ID, State: StateLive, Location: loc, Received: timeFromNanos(e.Received),
						Size: e.Size, Digest: e.Digest, Receipts: 1}
					if old := msgs[e.ID]; old != nil { // its tombstone came first (cannot happen in order, but be safe)
						old.m.Location, old.m.Received, old.m.Size, old.m.Digest = loc, m.Received, m.Size, m.Digest
						continue
					}
					msgs[e.ID] = &msgState{m: m}
					digests[e.Digest] = e.ID
				case KindEnvelope:
					present++
					st := msgs[e.ID]
					if st == nil {
						finding("segment %s offset %d: envelope entry for message %d, whose message entry is not in the segments", seq, rec.Offset, e.ID)
						continue
					}
					st.envs = append(st.envs, loc)
				case KindTombstone:
					st := msgs[e.ID]
					if st == nil {
						// Its records were compacted away; the tombstone stays.
						in := o.Ingested[e.ID]
						st = &msgState{m: &MessageInfo{ID: e.ID, Digest: e.Digest, Size: in.Size, Received: in.Received, Receipts: in.Receipts}}
						msgs[e.ID] = st
					}
					st.m.State = StateDeleted
					st.m.DeletedAt = timeFromNanos(e.Received)
					st.m.DeletedAudit = o.DeletedBy[e.ID]
					if digests[st.m.Digest] == e.ID {
						delete(digests, st.m.Digest)
					}
				}
			}
			return nil
		})
		switch {
		case hdr == nil:
			return nil, fmt.Errorf("recover: segment %s: %w", seq, scanErr)
		case hdr.ArchiveID != archiveID || hdr.Seq != seq:
			return nil, fmt.Errorf("recover: %s names archive %x segment %s: %w", path, hdr.ArchiveID, hdr.Seq, ErrCorrupt)
		}
		si.Created, si.Size, si.Records = hdr.Created, valid, hdr.Records
		if scanErr != nil {
			if si.State == SegmentSealed {
				finding("sealed segment %s: unreadable from offset %d (%v): what follows is not cataloged", seq, valid, scanErr)
			} else {
				finding("active segment %s: %d bytes after offset %d are not a complete record (a torn write); the daemon sets them aside at start",
					seq, fi.Size()-valid, valid)
			}
		}
		if si.State == SegmentSealed {
			sum, n, err := fileSHA256(path)
			if err != nil {
				return nil, fmt.Errorf("recover: %w", err)
			}
			si.SHA256 = sum
			si.Sealed = fi.ModTime().UTC()
			if audited {
				si.Sealed = fact.At
				if fact.SHA256 != sum || fact.Size != n {
					finding("segment %s: SHA-256 %x (%d bytes) differs from the audit log's %x (%d bytes)", seq, sum, n, fact.SHA256, fact.Size)
				}
			} else {
				finding("segment %s: sealed, but the audit log has no seal entry for it", seq)
			}
			if n != valid {
				si.Size = n // verify reports the unreadable part
			}
		}
		segInfos = append(segInfos, si)
		res.Segments++
		if si.State == SegmentSealed {
			res.Sealed++
		}
	}

	// Retention and counters.
	var c counters
	ids := make([]sealmail.MessageID, 0, len(msgs))
	for id, st := range msgs {
		ids = append(ids, id)
		m := st.m
		if m.Location != (Location{}) || m.Receipts == 0 {
			m.Receipts = 1 + len(st.envs)
		} // else its records went with compaction: the audit log counted them
		if r, ok := o.Retention[id]; ok {
			m.RetainUntil, m.Forever = r.Until, r.Forever
		}
		if m.State == StateLive {
			c.Messages++
			c.OriginalBytes += m.Size
			res.Messages++
		} else {
			res.Deleted++
		}
		if m.Receipts > maxReceipts {
			finding("message %d: %d receipts, the catalog counts %d", id, m.Receipts, maxReceipts)
			m.Receipts = maxReceipts
			st.envs = st.envs[:maxReceipts-1]
		}
	}
	slices.Sort(ids)
	c.Receipts = present + o.DroppedReceipts
	res.Receipts = c.Receipts
	res.NextID = maxID + 1

	// Write the new catalog beside the old one, then swap it in.
	tmp := catalog + ".recover"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("recover: %w", err)
	}
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("recover: create catalog: %w", err)
	}
	fail := func(err error) (*RecoverResult, error) {
		db.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("recover: write catalog: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range catalogBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		for _, kv := range [][2][]byte{{metaFormat, {catalogFormat}}, {metaArchiveID, archiveID[:]}, {metaCounters, encodeCounters(c)}} {
			if err := meta.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		if len(o.Holds) > 0 {
			if err := meta.Put(metaHolds, o.Holds); err != nil {
				return err
			}
		}
		if err := putHoldMembers(tx, o.HoldMembers); err != nil {
			return err
		}
		if err := putU64(meta, metaNextID, uint64(res.NextID)); err != nil {
			return err
		}
		for i := range segInfos {
			if err := tx.Bucket(bucketSegments).Put(segKey(segInfos[i].Seq), encodeSegment(&segInfos[i])); err != nil {
				return err
			}
		}
		for d, id := range digests {
			if err := tx.Bucket(bucketDigests).Put(d[:], idKey(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	// Messages in transactions of bounded size.
	for lo := 0; lo < len(ids); lo += 50000 {
		err := db.Update(func(tx *bolt.Tx) error {
			msgB, envB := tx.Bucket(bucketMessages), tx.Bucket(bucketEnvelopes)
			for _, id := range ids[lo:min(lo+50000, len(ids))] {
				st := msgs[id]
				if err := msgB.Put(idKey(id), encodeMessage(st.m)); err != nil {
					return err
				}
				for n, l := range st.envs {
					if err := envB.Put(envelopeKey(id, n+2), encodeLocation(l)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fail(err)
		}
	}
	if err := db.Close(); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("recover: write catalog: %w", err)
	}
	if _, err := os.Stat(catalog); err == nil {
		for n := 0; ; n++ {
			res.Replaced = fmt.Sprintf("%s.replaced-%d", catalog, o.Now().UnixNano()+int64(n))
			err := os.Link(catalog, res.Replaced)
			if err == nil {
				break
			}
			if !errors.Is(err, os.ErrExist) || n >= 100 {
				os.Remove(tmp)
				return nil, fmt.Errorf("recover: keep the old catalog: %w", err)
			}
		}
	}
	if err := os.Rename(tmp, catalog); err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	if err := vfs.SyncDir(vfs.OS{}, dir); err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	o.Logger.Info("catalog rebuilt from the segments", "messages", res.Messages, "deleted", res.Deleted,
		"segments", res.Segments, "findings", len(res.Findings))
	return res, nil
}

// pickGen chooses among the files of one segment: the generation whose
// SHA-256 the audit log recorded last, else the newest.
func pickGen(dir string, seq SegmentSeq, gens []uint32, sealed map[SegmentSeq]SealFact, finding func(string, ...any)) uint32 {
	slices.Sort(gens)
	newest := gens[len(gens)-1]
	fact, ok := sealed[seq]
	if !ok || len(gens) == 1 {
		return newest
	}
	for _, g := range gens {
		si := SegmentInfo{Seq: seq, Gen: g}
		if sum, _, err := fileSHA256(si.path(dir)); err == nil && sum == fact.SHA256 {
			return g
		}
	}
	finding("segment %s: no file matches the audit log's SHA-256 %x; using generation %d", seq, fact.SHA256, newest)
	return newest
}

// lockCatalog takes the lock bbolt takes on the catalog (flock), so that
// Recover never replaces a catalog a daemon has open.
func lockCatalog(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return func() {}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("recover: %s: %w (stop the daemon first)", path, ErrLocked)
		}
		return nil, fmt.Errorf("recover: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

func hexDecode16(s string) ([16]byte, error) {
	var b [16]byte
	if len(s) != 32 {
		return b, ErrCorrupt
	}
	for i := range 16 {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return b, err
		}
		b[i] = byte(v)
	}
	return b, nil
}
