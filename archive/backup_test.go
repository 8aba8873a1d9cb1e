// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/store"
	"github.com/sealmail/sealmail/store/storetest"
	"github.com/sealmail/sealmail/vfs"
	"github.com/sealmail/sealmail/vfs/vfstest"
)

// backupFixture is an archive with a backup target beside it, and what
// the test told it.
type backupFixture struct {
	t      *testing.T
	ctx    context.Context
	ident  *age.X25519Identity
	dir    string // the archive
	target string
	a      *Archive
	msgs   map[sealmail.MessageID][]byte
}

func newBackupFixture(t *testing.T, base string) *backupFixture {
	t.Helper()
	ident, _ := age.GenerateX25519Identity()
	f := &backupFixture{t: t, ctx: WithActor(context.Background(), "test"), ident: ident,
		dir: filepath.Join(base, "archive"), target: filepath.Join(base, "target"), msgs: map[sealmail.MessageID][]byte{}}
	if err := os.Mkdir(f.target, 0o700); err != nil {
		t.Fatal(err)
	}
	a, err := Create(f.dir, []string{ident.Recipient().String()}, Options{MinFreeBytes: -1, Store: store.Options{SealSize: 16 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	t.Cleanup(func() { f.a.Close() })
	return f
}

func (f *backupFixture) ingest(is ...int) []sealmail.MessageID {
	f.t.Helper()
	var ids []sealmail.MessageID
	for _, i := range is {
		m := crashMessage(i)
		env := &sealmail.Envelope{MailFrom: "a@example.com", RcptTo: []string{"b@example.org"}, ClientIP: "192.0.2.1"}
		id, err := f.a.Ingest(f.ctx, env, m)
		if err != nil {
			f.t.Fatal(err)
		}
		f.msgs[id] = m
		ids = append(ids, id)
	}
	return ids
}

// purge deletes ids as a purge does: the order audited, then tombstones,
// then compaction.
func (f *backupFixture) purge(ids ...sealmail.MessageID) {
	f.t.Helper()
	e, err := f.a.audit.Append(f.ctx, audit.Event{Type: audit.TypePurge, Actor: "test", Fields: purgeFields{IDs: ids2u(ids), Count: len(ids)}})
	if err != nil {
		f.t.Fatal(err)
	}
	var dels []store.Deletion
	for _, id := range ids {
		dels = append(dels, store.Deletion{ID: id, Reason: "retention", Audit: e.Seq, Actor: "test"})
	}
	if _, err := f.a.store.Delete(f.ctx, dels, f.a.opts.Now()); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.a.Compact(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

func ids2u(ids []sealmail.MessageID) []uint64 {
	out := make([]uint64, len(ids))
	for i, id := range ids {
		out[i] = uint64(id)
	}
	return out
}

func (f *backupFixture) backup() *BackupReport {
	f.t.Helper()
	rep, err := Backup(f.ctx, f.a, f.target, BackupOptions{Program: "test"})
	if err != nil {
		f.t.Fatalf("Backup: %v", err)
	}
	return rep
}

// checkRestored opens the archive in dir read-only, verifies it against
// the external checkpoints, and reads every message back: the deleted
// ones must be deleted, the others byte-exact.
func (f *backupFixture) checkRestored(dir string, external []Checkpoint, deleted, absent []sealmail.MessageID) {
	f.t.Helper()
	a, err := Open(dir, Options{MinFreeBytes: -1, ReadOnly: true})
	if err != nil {
		f.t.Fatalf("open the restored archive: %v", err)
	}
	defer a.Close()
	rep, err := a.Verify(f.ctx, external)
	if err != nil || !rep.OK() || rep.External != len(external) {
		f.t.Fatalf("verify the restored archive: %v, external %d of %d, %q", err, rep.External, len(external), rep.Problems)
	}
	for id, want := range f.msgs {
		s, err := a.Get(f.ctx, id)
		switch {
		case slices.Contains(deleted, id):
			if !errors.Is(err, ErrDeleted) {
				f.t.Errorf("message %d: %v, want it deleted", id, err)
			}
		case slices.Contains(absent, id):
			if !errors.Is(err, ErrNotFound) {
				f.t.Errorf("message %d: %v, want it absent (not in the backup)", id, err)
			}
		case err != nil:
			f.t.Errorf("message %d: %v", id, err)
		default:
			m, err := s.Decrypt([]age.Identity{f.ident})
			if err != nil || !bytes.Equal(m.Original, want) {
				f.t.Errorf("message %d: %v, %d bytes read back, want %d byte-exact", id, err, len(m.Original), len(want))
			}
		}
	}
}

// TestBackupRestore backs an archive up twice (the second incrementally,
// after more mail, a purge with compaction, a seal), restores the newest
// backup into a new directory and checks it: every message byte-exact, the
// purged one deleted, verify clean against a checkpoint taken before the
// backup; the backup itself verifies without the archive. What happens
// between the catalog copy and the checkpoint (a delivery, a purge) is
// reconciled: the delivery is reported as not in the backup, the purge is
// made again.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	f := newBackupFixture(t, fastTempDir(t))
	f.ingest(0)
	f.ingest(1)
	f.ingest(2, 3, 4, 5)
	r1 := f.backup()
	if r1.Backup != 1 || r1.Copied == 0 || r1.Reused != 0 {
		t.Fatalf("first backup: %+v", r1)
	}
	f.ingest(6, 7, 8)
	gone := f.ingest(9)[0]
	f.ingest(10, 11)
	f.purge(gone)
	cp, err := f.a.Checkpoint(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	// In the window between the catalog copy and the checkpoint: one more
	// message, and the purge of an earlier one.
	var late, lateGone sealmail.MessageID
	early := f.ingest(12)[0]
	f.a.backups.testHook = func() {
		late = f.ingest(13)[0]
		lateGone = early
		f.purge(early)
	}
	r2 := f.backup()
	f.a.backups.testHook = nil
	if r2.Backup != 2 || r2.Reused == 0 || r2.Copied == 0 {
		t.Fatalf("second backup: %+v", r2)
	}
	if r2.Copied >= r1.Copied+r2.Reused {
		t.Errorf("second backup copied %d bytes, reused %d: not incremental", r2.Copied, r2.Reused)
	}

	vrep, err := VerifyBackup(f.ctx, f.target, []Checkpoint{cp}, []age.Identity{f.ident})
	if err != nil || !vrep.OK() {
		t.Fatalf("VerifyBackup: %v %q", err, vrep.Problems)
	}
	if vrep.External != 1 || vrep.Secrets < 2 || vrep.Segments < 2 {
		t.Errorf("VerifyBackup: %+v", vrep)
	}

	// Destroy the archive, restore it.
	if err := f.a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(f.dir); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(filepath.Dir(f.dir), "restored")
	rep, err := Restore(f.ctx, f.target, restored, RestoreOptions{Identities: []age.Identity{f.ident}})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if rep.Backup != 2 || !slices.Equal(rep.NotInBackup, []uint64{uint64(late)}) || !slices.Equal(rep.Reapplied, []uint64{uint64(lateGone)}) {
		t.Errorf("restore report: backup %d, not in backup %v (want [%d]), reapplied %v (want [%d])",
			rep.Backup, rep.NotInBackup, late, rep.Reapplied, lateGone)
	}
	f.checkRestored(restored, []Checkpoint{cp}, []sealmail.MessageID{gone, lateGone}, []sealmail.MessageID{late})
	storetest.CheckDir(t, restored)

	// The restored archive takes mail again, with an id nobody had.
	a, err := Open(restored, Options{MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	next := f.ingest(14)[0]
	if next <= late {
		t.Errorf("a message after the restore got id %d, not above %d", next, late)
	}
	// A restore into a directory that is not empty is refused.
	if _, err := Restore(f.ctx, f.target, restored, RestoreOptions{Identities: []age.Identity{f.ident}}); AsError(err).Code != CodeInvalid {
		t.Errorf("restore into a non-empty directory: %v", err)
	}
	// Without the identity the secrets cannot be restored.
	if _, err := Restore(f.ctx, f.target, filepath.Join(t.TempDir(), "x"), RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "--identity") {
		t.Errorf("restore without an identity: %v", err)
	}
}

// TestVerifyBackupFindsDamage damages a backup's sealed segment and its
// audit log and checks that VerifyBackup names both.
func TestVerifyBackupFindsDamage(t *testing.T) {
	t.Parallel()
	f := newBackupFixture(t, t.TempDir())
	f.ingest(0, 1, 2, 3, 4, 5, 6, 7)
	r := f.backup()
	tg := filepath.Join(f.target, "manifests", fmt.Sprintf("%08d.json", r.Backup))
	mb, err := os.ReadFile(tg)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte inside the first sealed segment's object and inside the
	// first audit file's object: found by their SHA-256 and, for the log,
	// by its chain.
	for _, prefix := range []string{"segments/00000001.seg.0", "audit/audit-000001.jsonl.0"} {
		obj := filepath.Join(f.target, "data", "00000001", filepath.FromSlash(prefix))
		if !bytes.Contains(mb, []byte(strings.TrimSuffix(prefix, ".0"))) {
			t.Fatalf("manifest lacks %s", prefix)
		}
		b, err := os.ReadFile(obj)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 1
		os.Chmod(obj, 0o600)
		if err := os.WriteFile(obj, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := VerifyBackup(f.ctx, f.target, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(rep.Problems, "\n")
	for _, want := range []string{"segments/00000001.seg: part", "audit/audit-000001.jsonl: part", "audit log:"} {
		if !strings.Contains(joined, want) {
			t.Errorf("VerifyBackup problems lack %q:\n%s", want, joined)
		}
	}
}

// TestRestorePowerLoss cuts the power just before and just after every
// file operation of a restore (vfstest keeps only what was fsync'd; the
// catalog, which bbolt writes itself, is durable at each commit), then
// checks that the directory does not open as an archive while the restore
// is unfinished, and that running the restore again finishes it: verify
// clean, every message byte-exact, the purged one deleted.
func TestRestorePowerLoss(t *testing.T) {
	t.Parallel()
	base := fastTempDir(t)
	f := newBackupFixture(t, base)
	f.ingest(0)
	f.ingest(1, 2, 3, 4)
	gone := f.ingest(5)[0]
	f.purge(gone)
	var lateGone sealmail.MessageID
	f.a.backups.testHook = func() { lateGone = f.ingest(6)[0]; f.purge(lateGone) }
	f.backup()
	f.a.backups.testHook = nil
	if err := f.a.Close(); err != nil {
		t.Fatal(err)
	}
	delete(f.msgs, lateGone) // acknowledged inside the window: not in the backup
	opts := func(fs vfs.FS) RestoreOptions {
		return RestoreOptions{Identities: []age.Identity{f.ident}, FS: fs}
	}
	run := func(crashAt int, after bool) (int, string) {
		root, err := os.MkdirTemp(base, "run")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(root)
		cfs, err := vfstest.New(root, vfstest.Options{CrashAt: crashAt, CrashAfter: after, TornWrites: after,
			External: []string{"new/catalog.db"}, Ignore: []string{"new/index"}})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(root, "new")
		_, rerr := Restore(f.ctx, f.target, dir, opts(cfs))
		ops := cfs.Ops()
		crashed, at := cfs.Crashed()
		if err := cfs.Restore(); err != nil {
			t.Fatal(err)
		}
		if !crashed && rerr != nil {
			return ops, fmt.Sprintf("restore without a crash (crash point %d of %d not reached): %v", crashAt, ops, rerr)
		}
		if crashed {
			if _, err := os.Stat(filepath.Join(dir, restoreMarker)); err == nil {
				if a, err := Open(dir, Options{ReadOnly: true}); err == nil {
					a.Close()
					return ops, fmt.Sprintf("crash %s: an unfinished restore opens as an archive", at)
				}
			}
			// The restore is run again; it finishes what was cut short, or
			// finds the directory done (then it is an archive: refused).
			if _, err := os.Stat(filepath.Join(dir, restoreMarker)); err == nil || !Exists(dir) {
				if _, err := Restore(f.ctx, f.target, dir, opts(nil)); err != nil {
					return ops, fmt.Sprintf("crash %s: restore again: %v", at, err)
				}
			}
		}
		f.checkRestored(dir, nil, []sealmail.MessageID{gone, lateGone}, nil)
		return ops, ""
	}
	total, fail := run(0, false)
	if fail != "" {
		t.Fatal(fail)
	}
	t.Logf("%d operations per restore", total)
	if total < 40 {
		t.Fatalf("the restore made only %d file operations", total)
	}
	var failures []string
	for n := 1; n <= total; n++ {
		for _, after := range []bool{false, true} {
			if _, fail := run(n, after); fail != "" {
				failures = append(failures, fail)
			}
		}
	}
	for i, fail := range failures {
		if i == 10 {
			t.Errorf("… and %d more", len(failures)-i)
			break
		}
		t.Error(fail)
	}
}
