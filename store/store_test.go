// SPDX-License-Identifier: Apache-2.0

package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
)

func newStore(t *testing.T, opts Options) (*Store, age.Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Create(t.TempDir(), []string{id.Recipient().String()}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, id
}

func msg(body string) *Message {
	return &Message{
		Original: []byte(body),
		Envelope: &sealmail.Envelope{Sender: "a@example.com", Source: sealmail.SourceSMTPEnvelope},
		Received: time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC),
	}
}

// get decrypts every record of id.
func get(t *testing.T, s *Store, id sealmail.MessageID, ident age.Identity) []*Payload {
	t.Helper()
	_, recs, err := s.Records(id)
	if err != nil {
		t.Fatalf("Records(%d): %v", id, err)
	}
	var out []*Payload
	for _, r := range recs {
		p, err := OpenPayload(r.Payload, r.Entry.PlainOffset, r.Entry.PlainLen, ident)
		if err != nil {
			t.Fatalf("OpenPayload(message %d): %v", id, err)
		}
		out = append(out, p)
	}
	return out
}

func TestAppendGetRoundTrip(t *testing.T) {
	t.Parallel()
	s, ident := newStore(t, Options{})
	ctx := context.Background()
	bodies := []string{"", "Subject: x\r\n\r\nhello\r\n", "bare\nlf\n", string([]byte{0, 1, 2, 0xff, '\r'})}
	for i, b := range bodies {
		m := msg(b)
		if i == 1 {
			m.Report = []byte("Report: yes\r\n")
		}
		res, err := s.Append(ctx, m)
		if err != nil {
			t.Fatalf("Append(%q): %v", b, err)
		}
		if res.ID != sealmail.MessageID(i+1) || res.Duplicate || res.Receipt != 1 {
			t.Errorf("Append(%q) = %+v, want id %d, new", b, res, i+1)
		}
		ps := get(t, s, res.ID, ident)
		if len(ps) != 1 || !bytes.Equal(ps[0].Original, []byte(b)) {
			t.Fatalf("get(%d) original = %q, want %q", res.ID, ps[0].Original, b)
		}
		if !bytes.Equal(ps[0].Report, m.Report) {
			t.Errorf("get(%d) report = %q, want %q", res.ID, ps[0].Report, m.Report)
		}
		if ps[0].Header.Envelope.Sender != "a@example.com" {
			t.Errorf("get(%d) envelope sender = %q", res.ID, ps[0].Header.Envelope.Sender)
		}
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != int64(len(bodies)) || st.LastID != sealmail.MessageID(len(bodies)) {
		t.Errorf("Stats() = %+v, want %d messages", st, len(bodies))
	}
}

func TestDedup(t *testing.T) {
	t.Parallel()
	s, ident := newStore(t, Options{})
	ctx := context.Background()
	a, err := s.Append(ctx, msg("same"))
	if err != nil {
		t.Fatal(err)
	}
	m2 := msg("same")
	m2.Envelope = &sealmail.Envelope{Sender: "b@example.com", Source: sealmail.SourceExchangeReport}
	m2.Report = []byte("the report")
	b, err := s.Append(ctx, m2)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Duplicate || b.ID != a.ID || b.Receipt != 2 {
		t.Fatalf("second Append = %+v, want duplicate of %d, receipt 2", b, a.ID)
	}
	ps := get(t, s, a.ID, ident)
	if len(ps) != 2 || ps[1].Header.Kind != "envelope" || ps[1].Header.Envelope.Sender != "b@example.com" || string(ps[1].Report) != "the report" {
		t.Fatalf("records of %d = %d, second %+v", a.ID, len(ps), ps[len(ps)-1].Header)
	}
	st, _ := s.Stats()
	if st.Messages != 1 || st.Receipts != 2 {
		t.Errorf("Stats() = %+v, want 1 message, 2 receipts", st)
	}
}

func TestConcurrentAppendsShareCommits(t *testing.T) {
	t.Parallel()
	s, ident := newStore(t, Options{})
	ctx := context.Background()
	const n = 200
	var wg sync.WaitGroup
	ids := make([]sealmail.MessageID, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every tenth message is a duplicate of another, concurrently.
			body := fmt.Sprintf("message %d", i%190)
			r, err := s.Append(ctx, msg(body))
			if err != nil {
				t.Errorf("Append: %v", err)
			}
			ids[i] = r.ID
		}()
	}
	wg.Wait()
	st, _ := s.Stats()
	if st.Messages != 190 || st.Receipts != n {
		t.Fatalf("Stats() = %+v, want 190 messages and %d receipts", st, n)
	}
	for i, id := range ids {
		p := get(t, s, id, ident)[0]
		if want := fmt.Sprintf("message %d", i%190); string(p.Original) != want {
			t.Errorf("message %d = %q, want %q", id, p.Original, want)
		}
	}
}

func TestReopenAndSeal(t *testing.T) {
	t.Parallel()
	var sealed []SegmentInfo
	var mu sync.Mutex
	opts := Options{SealSize: 4096, OnSeal: func(si SegmentInfo) (Intent, error) {
		mu.Lock()
		sealed = append(sealed, si)
		mu.Unlock()
		return 0, nil
	}}
	s, ident := newStore(t, opts)
	ctx := context.Background()
	for i := range 30 {
		if _, err := s.Append(ctx, msg(fmt.Sprintf("message %d %s", i, bytes.Repeat([]byte("x"), 500)))); err != nil {
			t.Fatal(err)
		}
	}
	dir := s.Dir()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	segs, _ := s.Segments()
	mu.Lock()
	nsealed := len(sealed)
	mu.Unlock()
	if len(segs) < 3 || nsealed != len(segs)-1 {
		t.Fatalf("%d segments, %d sealed, want ≥3 and all but the last sealed", len(segs), nsealed)
	}
	for _, si := range segs[:len(segs)-1] {
		sum, _, err := fileSHA256(segmentPath(dir, si.Seq))
		if err != nil || sum != si.SHA256 || si.State != SegmentSealed {
			t.Errorf("segment %s: sha %x, catalog %x, state %s", si.Seq, sum, si.SHA256, si.State)
		}
		fi, _ := os.Stat(segmentPath(dir, si.Seq))
		if fi.Mode().Perm()&0o222 != 0 {
			t.Errorf("sealed segment %s mode %v, want read-only", si.Seq, fi.Mode())
		}
	}
	for id := sealmail.MessageID(1); id <= 30; id++ {
		p := get(t, s, id, ident)[0]
		if want := fmt.Sprintf("message %d ", id-1); !bytes.HasPrefix(p.Original, []byte(want)) {
			t.Errorf("message %d = %.20q", id, p.Original)
		}
	}
	r, err := s.Append(ctx, msg("after reopen"))
	if err != nil || r.ID != 31 {
		t.Errorf("Append after reopen = %+v, %v; want id 31", r, err)
	}
}

// TestOpenRepairsTail: the complete records after the committed length
// that OnReplay vouches for are replayed into the catalog; the records it
// does not vouch for and a torn record after them are set aside and cut off,
// and their ids are never given again.
func TestOpenRepairsTail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		vouched int // of the two complete records' entries; -1: no OnReplay
	}{
		{"no OnReplay: every complete record replayed", -1},
		{"both vouched", 2},
		{"the first vouched", 1},
		{"none vouched", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, ident := newStore(t, Options{})
			ctx := context.Background()
			for i := range 3 {
				if _, err := s.Append(ctx, msg(fmt.Sprint("m", i))); err != nil {
					t.Fatal(err)
				}
			}
			dir := s.Dir()
			// Two complete records that were written but never cataloged
			// (commits after the catalog's last flush), then a torn one.
			rec := func(id sealmail.MessageID, body string) []byte {
				sum := sha256.Sum256([]byte(body))
				frame, err := s.codec.compress(&PayloadHeader{Version: 1, Kind: "message", Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}, []byte(body))
				if err != nil {
					t.Fatal(err)
				}
				payload, err := s.codec.encrypt([][]byte{frame})
				if err != nil {
					t.Fatal(err)
				}
				return encodeRecord(&RecordHeader{Entries: []Entry{{Kind: KindMessage, ID: id, Size: int64(len(body)),
					Digest: keyedDigest(s.key, []byte(body)), PlainLen: int64(len(frame))}}}, payload)
			}
			r4, r5 := rec(4, "m-new"), rec(5, "m-newer")
			s.Close()
			seg := segmentPath(dir, 1)
			f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(r4)
			f.Write(r5)
			f.Write(r5[:len(r5)/2])
			f.Close()

			var discarded []Committed
			var offered []Committed
			opts := Options{OnDiscard: func(cs []Committed, n int64, keep string) error { discarded = cs; return nil }}
			if tc.vouched >= 0 {
				opts.OnReplay = func(cs []Committed) (int, error) {
					offered = append([]Committed(nil), cs...)
					for i := range cs[:tc.vouched] {
						cs[i].Forever = true
					}
					return tc.vouched, nil
				}
			}
			s, err = Open(dir, opts)
			if err != nil {
				t.Fatalf("Open after torn write: %v", err)
			}
			defer s.Close()
			replayed := 2
			if tc.vouched >= 0 {
				replayed = tc.vouched
				if len(offered) != 2 || offered[0].ID != 4 || offered[1].ID != 5 {
					t.Errorf("OnReplay got %+v, want messages 4 and 5", offered)
				}
			}
			st, _ := s.Stats()
			if st.Messages != int64(3+replayed) {
				t.Errorf("after repair %d messages, want %d", st.Messages, 3+replayed)
			}
			if len(discarded) != 2-replayed || (replayed < 2 && discarded[len(discarded)-1].ID != 5) {
				t.Errorf("OnDiscard got %+v, want the %d complete records not replayed", discarded, 2-replayed)
			}
			fi, _ := os.Stat(seg)
			segs, _ := s.Segments()
			if fi.Size() != segs[0].Size {
				t.Errorf("segment is %d bytes, committed %d: torn tail not truncated", fi.Size(), segs[0].Size)
			}
			for id := sealmail.MessageID(1); id <= 5; id++ {
				if id > sealmail.MessageID(3+replayed) {
					if _, _, err := s.Records(id); !errors.Is(err, ErrNotFound) {
						t.Errorf("Records(%d) of a discarded record = %v, want ErrNotFound", id, err)
					}
					continue
				}
				get(t, s, id, ident)
			}
			if m, err := s.Message(4); replayed > 0 && (err != nil || m.Forever != (tc.vouched > 0)) {
				t.Errorf("message 4 = %+v, %v; want the retention OnReplay gave", m, err)
			}
			if r, err := s.Append(ctx, msg("next")); err != nil || r.ID != 6 {
				t.Errorf("Append after repair = %+v, %v; want id 6 (ids of cut messages are never reused)", r, err)
			}
			if res, err := s.Verify(ctx, nil); err != nil || len(res.Findings) > 0 {
				t.Errorf("Verify after repair: %v, %v", err, res.Findings)
			}
		})
	}
}

func TestOpenRefusesShortSegment(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, Options{})
	if _, err := s.Append(context.Background(), msg("x")); err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	s.Close()
	if err := os.Truncate(segmentPath(dir, 1), segmentHeaderSize+10); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open(short segment) = %v, want ErrCorrupt", err)
	}
}

// faultFile fails chosen operations, as a disk would.
type faultFile struct {
	File
	mu        sync.Mutex
	failWrite error
	failSync  error
	short     bool // write half the bytes, then fail
}

func (f *faultFile) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWrite != nil {
		if f.short {
			n, _ := f.File.Write(b[:len(b)/2])
			return n, f.failWrite
		}
		return 0, f.failWrite
	}
	return f.File.Write(b)
}

func (f *faultFile) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSync != nil {
		return f.failSync
	}
	return f.File.Sync()
}

func (f *faultFile) set(write, sync error, short bool) {
	f.mu.Lock()
	f.failWrite, f.failSync, f.short = write, sync, short
	f.mu.Unlock()
}

func TestWriteFailuresLeaveNoCatalogEntry(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		write    error
		sync     error
		short    bool
		wantFull bool
		// After a failed fsync the page cache can no longer be trusted
		// (the file's state is unknown), so the store refuses appends until
		// it is reopened, which rescans the tail.
		wantReopen bool
	}{
		{"eio on write", syscall.EIO, nil, false, false, false},
		{"enospc mid-write", syscall.ENOSPC, nil, true, true, false},
		{"fsync fails", nil, syscall.EIO, false, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ff *faultFile
			opts := Options{OpenFile: func(name string, flag int, perm os.FileMode) (File, error) {
				f, err := os.OpenFile(name, flag, perm)
				if err != nil {
					return nil, err
				}
				ff = &faultFile{File: f}
				return ff, nil
			}}
			s, ident := newStore(t, opts)
			ctx := context.Background()
			if _, err := s.Append(ctx, msg("before")); err != nil {
				t.Fatal(err)
			}
			ff.set(tc.write, tc.sync, tc.short)
			_, err := s.Append(ctx, msg("during failure"))
			if err == nil {
				t.Fatal("Append during failure succeeded")
			}
			if got := errors.Is(err, sealmail.ErrStorageFull); got != tc.wantFull {
				t.Errorf("Append error %v: ErrStorageFull = %v, want %v", err, got, tc.wantFull)
			}
			st, _ := s.Stats()
			if st.Messages != 1 || st.LastID != 1 {
				t.Errorf("after failure Stats() = %+v, want only message 1", st)
			}
			ff.set(nil, nil, false)
			if tc.wantReopen {
				if _, err := s.Append(ctx, msg("still broken")); err == nil {
					t.Fatal("Append after a failed fsync succeeded without reopening")
				}
				dir := s.Dir()
				s.Close()
				var err error
				if s, err = Open(dir, opts); err != nil {
					t.Fatalf("reopen: %v", err)
				}
				t.Cleanup(func() { s.Close() })
			}
			// A reopen finds the unsynced record in the page cache and cuts
			// it off (never acknowledged: the sender retries); its id 2 is
			// not reused, so "after" is then message 3.
			wantID := sealmail.MessageID(2)
			if tc.wantReopen {
				wantID = 3
				if _, _, err := s.Records(2); !errors.Is(err, ErrNotFound) {
					t.Errorf("Records(2) after reopen = %v, want ErrNotFound", err)
				}
			}
			r, err := s.Append(ctx, msg("after"))
			if err != nil || r.ID != wantID {
				t.Fatalf("Append after failure = %+v, %v; want id %d", r, err, wantID)
			}
			if p := get(t, s, wantID, ident); string(p[0].Original) != "after" {
				t.Errorf("message %d = %q", wantID, p[0].Original)
			}
			// The segment is exactly its committed length: a scan sees no garbage.
			dir := s.Dir()
			s.Close()
			info, valid, err := ScanFile(segmentPath(dir, 1), func(ScannedRecord) error { return nil })
			if err != nil || info.Records != 2 {
				t.Errorf("ScanFile = %d records, valid %d, %v; want 2 records, clean", info.Records, valid, err)
			}
		})
	}
}

func TestCreateRefusesExisting(t *testing.T) {
	t.Parallel()
	s, ident := newStore(t, Options{})
	if _, err := Create(s.Dir(), []string{ident.(*age.X25519Identity).Recipient().String()}, Options{}); !errors.Is(err, ErrExists) {
		t.Errorf("Create(existing) = %v, want ErrExists", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "none"), Options{}); !errors.Is(err, ErrNoArchive) {
		t.Errorf("Open(empty dir) = %v, want ErrNoArchive", err)
	}
}

func TestOpenLockedCatalog(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, Options{})
	if _, err := Open(s.Dir(), Options{CatalogTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
}

func TestPostQuantumRecipient(t *testing.T) {
	t.Parallel()
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Create(t.TempDir(), []string{id.Recipient().String()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Append(context.Background(), msg("post-quantum"))
	if err != nil {
		t.Fatal(err)
	}
	if p := get(t, s, r.ID, id); string(p[0].Original) != "post-quantum" {
		t.Errorf("original = %q", p[0].Original)
	}
	other, _ := age.GenerateHybridIdentity()
	_, recs, _ := s.Records(r.ID)
	if _, err := OpenPayload(recs[0].Payload, recs[0].Entry.PlainOffset, recs[0].Entry.PlainLen, other); !IsNoIdentityMatch(err) {
		t.Errorf("OpenPayload with a wrong identity = %v, want no identity match", err)
	}
}

func TestRetentionRecorded(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, Options{})
	ctx := context.Background()
	m := msg("retained")
	m.RetainUntil = time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC)
	r, err := s.Append(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	mi, _ := s.Message(r.ID)
	if !mi.RetainUntil.Equal(m.RetainUntil) || mi.Forever {
		t.Errorf("retain-until %v forever %v, want %v", mi.RetainUntil, mi.Forever, m.RetainUntil)
	}
	// A later delivery of the same original under a shorter rule does not
	// shorten it; one kept forever makes it forever.
	m2 := msg("retained")
	m2.RetainUntil = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	s.Append(ctx, m2)
	if mi, _ := s.Message(r.ID); !mi.RetainUntil.Equal(m.RetainUntil) {
		t.Errorf("shorter second delivery changed retain-until to %v", mi.RetainUntil)
	}
	m3 := msg("retained")
	m3.Forever = true
	s.Append(ctx, m3)
	if mi, _ := s.Message(r.ID); !mi.Forever {
		t.Errorf("delivery kept forever did not make the message forever: %+v", mi)
	}
}

// TestFlushWhileCommitting: with a flush due every millisecond, flushes come
// between the commits of concurrent appends, among reads and other catalog
// changes (retention), and every acknowledged message is readable at once,
// with what was set on it; after Close, catalog.db alone (no replay) holds
// all.
func TestFlushWhileCommitting(t *testing.T) {
	t.Parallel()
	s, ident := newStore(t, Options{FlushInterval: time.Millisecond})
	ctx := context.Background()
	const writers, each = 8, 40
	until := time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := 0
			if err := s.List(0, func(*MessageInfo) (bool, error) { n++; return true, nil }); err != nil {
				t.Errorf("List: %v", err)
			}
			if st, err := s.Stats(); err != nil || st.Messages < int64(n) {
				t.Errorf("Stats = %+v, %v after List saw %d", st, err, n)
			}
		}
	})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				body := fmt.Sprintf("writer %d message %d", w, i)
				r, err := s.Append(ctx, msg(body))
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				if p := get(t, s, r.ID, ident); string(p[0].Original) != body {
					t.Errorf("message %d right after its Append = %q", r.ID, p[0].Original)
				}
				if i%5 == 0 {
					if _, _, err := s.SetRetention(r.ID, until, false); err != nil {
						t.Errorf("SetRetention(%d): %v", r.ID, err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	check := func(s *Store, when string) {
		st, _ := s.Stats()
		if st.Messages != writers*each {
			t.Errorf("%s: %d messages, want %d", when, st.Messages, writers*each)
		}
		retained := 0
		s.List(0, func(m *MessageInfo) (bool, error) {
			if m.RetainUntil.Equal(until) {
				retained++
			}
			return true, nil
		})
		if retained != writers*each/5 {
			t.Errorf("%s: %d messages with the retention set, want %d", when, retained, writers*each/5)
		}
	}
	check(s, "while open")
	dir := s.Dir()
	s.Close()
	s, err := Open(dir, Options{ReadOnly: true, OnReplay: func([]Committed) (int, error) { return 0, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s, "catalog.db after Close")
}
