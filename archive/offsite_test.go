// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/offsite"
	"github.com/sealmail/sealmail/offsite/offsitetest"
	"github.com/sealmail/sealmail/policy"
	"github.com/sealmail/sealmail/store"
	"github.com/sealmail/sealmail/vfs/vfstest"
)

// versions returns the versions the bucket holds per key below prefix.
func versions(t *testing.T, c *s3.Client, bucket, prefix string) map[string][]types.ObjectVersion {
	t.Helper()
	out, err := c.ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: &bucket, Prefix: &prefix})
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string][]types.ObjectVersion)
	for _, v := range out.Versions {
		k := strings.TrimPrefix(aws.ToString(v.Key), prefix)
		m[k] = append(m[k], v)
	}
	return m
}

func lockOf(t *testing.T, c *s3.Client, bucket, key, version string) (types.ObjectLockRetentionMode, time.Time) {
	t.Helper()
	r, err := c.GetObjectRetention(context.Background(), &s3.GetObjectRetentionInput{Bucket: &bucket, Key: &key, VersionId: &version})
	if err != nil {
		t.Fatalf("retention of %s: %v", key, err)
	}
	return r.Retention.Mode, aws.ToTime(r.Retention.RetainUntilDate)
}

// activeMessages returns the messages whose record is in the active
// segment: the offsite copy does not hold them.
func activeMessages(t *testing.T, a *Archive) []sealmail.MessageID {
	t.Helper()
	segs, err := a.store.Segments()
	if err != nil {
		t.Fatal(err)
	}
	var out []sealmail.MessageID
	_ = a.store.List(0, func(m *store.MessageInfo) (bool, error) {
		if m.Location.Segment == segs[len(segs)-1].Seq && segs[len(segs)-1].State == store.SegmentActive {
			out = append(out, m.ID)
		}
		return true, nil
	})
	return out
}

// TestOffsiteRestore copies an archive to a real S3 server with Object
// Lock (versitygw), checks through the S3 API that the server refuses to
// delete a locked version and to shorten its lock, that a second sync
// uploads nothing again, that a hold extends a held message's segment's
// lock, then restores from the bucket alone into an empty directory: every
// message in a sealed segment reads back byte-exact, those of the active
// segment are reported as not in the restore, the purged one is deleted,
// verify is clean, and so is verify --offsite.
func TestOffsiteRestore(t *testing.T) {
	t.Parallel()
	srv := offsitetest.Start(t)
	bo := srv.Bucket(t, "worm", true, "site-a/")
	f := newBackupFixture(t, t.TempDir())
	pol := &policy.Policy{Default: policy.Rule{Name: "short", Keep: "1d"}}
	var err error
	if f.a.retention, err = pol.Compile(); err != nil {
		t.Fatal(err)
	}
	o := OffsiteOptions{Bucket: bo, MinLock: time.Hour}
	// Messages with a received time, so that the 1-day rule applies; the
	// purge's tombstone goes into a segment the later ones seal.
	var ids []sealmail.MessageID
	for i := range 14 {
		env := &sealmail.Envelope{MailFrom: "a@example.com", RcptTo: []string{"b@example.org"}, ClientIP: "192.0.2.1", Received: time.Now()}
		id, err := f.a.Ingest(f.ctx, env, crashMessage(i))
		if err != nil {
			t.Fatal(err)
		}
		f.msgs[id] = crashMessage(i)
		ids = append(ids, id)
		if i == 6 {
			f.purge(ids[1])
		}
	}
	rep, err := f.a.OffsiteSync(f.ctx, o)
	if err != nil {
		t.Fatalf("OffsiteSync: %v", err)
	}
	if rep.Uploaded == 0 || rep.Uploaded != rep.Objects {
		t.Fatalf("first sync: %+v, want every object uploaded", rep)
	}
	again, err := f.a.OffsiteSync(f.ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	// The log grew by the first sync's own entries: one new part.
	if again.Uploaded != 1 || again.Adopted != 0 {
		t.Errorf("second sync: %+v, want only the audit log's new part uploaded", again)
	}

	c := srv.Client()
	vs := versions(t, c, "worm", "site-a/")
	var segKey string
	for k, v := range vs {
		if len(v) != 1 {
			t.Errorf("%s: %d versions, want 1", k, len(v))
		}
		if strings.HasPrefix(k, "segments/") && segKey == "" {
			segKey = k
		}
	}
	if segKey == "" {
		t.Fatalf("no segment in the bucket: %v", vs)
	}
	key, ver := "site-a/"+segKey, aws.ToString(vs[segKey][0].VersionId)
	mode, until := lockOf(t, c, "worm", key, ver)
	if mode != types.ObjectLockRetentionModeCompliance || until.Before(time.Now().Add(20*time.Hour)) || until.After(time.Now().Add(30*time.Hour)) {
		t.Errorf("%s: lock %s until %s, want COMPLIANCE for the 1-day retention", segKey, mode, until)
	}
	if _, err := c.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String("worm"), Key: &key, VersionId: &ver}); err == nil {
		t.Errorf("deleting the locked version %s succeeded", segKey)
	}
	shorter := time.Now().Add(time.Hour)
	if _, err := c.PutObjectRetention(f.ctx, &s3.PutObjectRetentionInput{Bucket: aws.String("worm"), Key: &key, VersionId: &ver,
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeCompliance, RetainUntilDate: &shorter}}); err == nil {
		t.Errorf("shortening the lock of %s succeeded", segKey)
	}

	// A hold on the first message keeps its segment locked beyond its
	// retention: the lock moves to MinLock ahead (now longer than it).
	o.MinLock = 48 * time.Hour
	if _, err := f.a.CreateHold(f.ctx, "case-1", "from:a0@example.com", "litigation"); err != nil {
		t.Fatal(err)
	}
	head, _ := f.a.audit.Head()
	if _, err := f.a.AddHoldMembers(f.ctx, "case-1", []sealmail.MessageID{ids[0]}, head); err != nil {
		t.Fatal(err)
	}
	m0, _ := f.a.store.Message(ids[0])
	var heldKey string
	segs, _ := f.a.store.Segments()
	for _, si := range segs {
		if si.Seq == m0.Location.Segment {
			heldKey = "segments/" + si.FileName()
		}
	}
	held, err := f.a.OffsiteSync(f.ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if held.Extended == 0 {
		t.Errorf("sync after the hold: %+v, want a lock extended", held)
	}
	vs = versions(t, c, "worm", "site-a/")
	if _, until := lockOf(t, c, "worm", "site-a/"+heldKey, aws.ToString(vs[heldKey][0].VersionId)); until.Before(time.Now().Add(47 * time.Hour)) {
		t.Errorf("%s holds a held message: locked until %s, want 48 h ahead", heldKey, until)
	}
	vr, err := f.a.VerifyOffsite(f.ctx, o)
	if err != nil || !vr.OK() || vr.Objects == 0 {
		t.Fatalf("VerifyOffsite: %v %+v", err, vr)
	}
	notCopied := activeMessages(t, f.a)
	f.a.Close()

	dir := filepath.Join(t.TempDir(), "restored")
	rr, err := RestoreOffsite(f.ctx, o, dir, RestoreOptions{Identities: []age.Identity{f.ident}})
	if err != nil {
		t.Fatalf("RestoreOffsite: %v", err)
	}
	if len(rr.NotInBackup) != len(notCopied) {
		t.Errorf("restore reports %v not restored, the active segment held %v", rr.NotInBackup, notCopied)
	}
	f.checkRestored(dir, nil, []sealmail.MessageID{ids[1]}, notCopied)
	if _, err := os.Stat(filepath.Join(dir, restoreMarker)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("restore left %s", restoreMarker)
	}
}

// TestOffsiteRefusesBucketWithoutLock: a bucket without Object Lock is
// refused, with the command that makes one.
func TestOffsiteRefusesBucketWithoutLock(t *testing.T) {
	t.Parallel()
	srv := offsitetest.Start(t)
	bo := srv.Bucket(t, "plain", false, "")
	_, err := offsite.OpenBucket(context.Background(), bo)
	if !errors.Is(err, offsite.ErrNoObjectLock) || !strings.Contains(err.Error(), "--object-lock-enabled-for-bucket") {
		t.Fatalf("OpenBucket of a bucket without Object Lock: %v", err)
	}
	bo.Bucket = "missing"
	if _, err := offsite.OpenBucket(context.Background(), bo); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("OpenBucket of a missing bucket: %v", err)
	}
}

// TestOffsiteRemovesAfterLock: a compacted segment's old generation, whose
// messages are all gone, stays in the bucket while it is locked and is
// removed by the first sync after its lock ended; the new generation is
// uploaded and kept.
func TestOffsiteRemovesAfterLock(t *testing.T) {
	t.Parallel()
	srv := offsitetest.Start(t)
	bo := srv.Bucket(t, "worm", true, "")
	f := newBackupFixture(t, t.TempDir())
	// The old generation's lock: long enough that the purge and the next
	// sync end inside it on a loaded machine (checked below), short enough
	// to wait out.
	const oldLock = 8 * time.Second
	o := OffsiteOptions{Bucket: bo, MinLock: oldLock}
	ids := f.ingest(0, 1, 2, 3, 4, 5, 6, 7)
	locked := time.Now() // before the upload: its lock ends after locked+oldLock
	if _, err := f.a.OffsiteSync(f.ctx, o); err != nil {
		t.Fatal(err)
	}
	m, _ := f.a.store.Message(ids[0])
	var gone []sealmail.MessageID
	_ = f.a.store.List(0, func(x *store.MessageInfo) (bool, error) {
		if x.Location.Segment == m.Location.Segment {
			gone = append(gone, x.ID)
		}
		return true, nil
	})
	old := "segments/" + segmentFile(t, f.a, m.Location.Segment)
	f.purge(gone...)
	if now := segmentFile(t, f.a, m.Location.Segment); "segments/"+now == old {
		t.Fatalf("the purge did not compact %s", old)
	}
	o.MinLock = time.Hour // the new generation's lock
	rep, err := f.a.OffsiteSync(f.ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(locked) >= oldLock {
		t.Fatalf("the purge and the sync took %v, beyond the old generation's %v lock: nothing shown", time.Since(locked), oldLock)
	}
	if rep.Removed != 0 || rep.Retired != 1 {
		t.Errorf("sync while the old generation is locked: %+v, want it kept (retired, not removed)", rep)
	}
	if len(versions(t, srv.Client(), "worm", "")[old]) != 1 {
		t.Fatalf("%s left the bucket while locked", old)
	}
	time.Sleep(time.Until(locked.Add(oldLock + time.Second))) // its lock ends
	rep, err = f.a.OffsiteSync(f.ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	vs := versions(t, srv.Client(), "worm", "")
	if rep.Removed != 1 || len(vs[old]) != 0 {
		t.Errorf("sync after the lock ended: %+v; %s has %d versions, want it removed", rep, old, len(vs[old]))
	}
	if now := "segments/" + segmentFile(t, f.a, m.Location.Segment); len(vs[now]) != 1 {
		t.Errorf("the new generation %s: %d versions, want 1", now, len(vs[now]))
	}
	if vr, err := f.a.VerifyOffsite(f.ctx, o); err != nil || !vr.OK() {
		t.Errorf("VerifyOffsite: %v %+v", err, vr)
	}
}

func segmentFile(t *testing.T, a *Archive, seq store.SegmentSeq) string {
	t.Helper()
	segs, err := a.store.Segments()
	if err != nil {
		t.Fatal(err)
	}
	for _, si := range segs {
		if si.Seq == seq {
			return si.FileName()
		}
	}
	t.Fatalf("no segment %s", seq)
	return ""
}

// TestOffsiteSyncPowerLoss cuts the power just before and just after every
// file operation of a sync (the checkpoint and the audit entry in the log,
// each write of offsite.json), then runs the sync again from what survived:
// it must succeed, every object the archive wants must be in the bucket
// exactly once (what was uploaded before the cut is adopted, not uploaded
// a second time), and verify --offsite must be clean.
func TestOffsiteSyncPowerLoss(t *testing.T) {
	t.Parallel()
	srv := offsitetest.Start(t)
	bo := srv.Bucket(t, "worm", true, "")
	base := fastTempDir(t)
	f := newBackupFixture(t, base)
	f.ingest(0, 1, 2, 3, 4)
	if err := f.a.Close(); err != nil {
		t.Fatal(err)
	}
	run := func(n int, crashAt int, after bool) int {
		root := filepath.Join(base, "run", strconv.Itoa(n))
		if err := os.MkdirAll(root, 0o700); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(root)
		copyTree(t, f.dir, filepath.Join(root, "a"))
		dir := filepath.Join(root, "a")
		cfs, err := vfstest.New(root, vfstest.Options{CrashAt: crashAt, CrashAfter: after, TornWrites: after, External: []string{"a/catalog.db"}})
		if err != nil {
			t.Fatal(err)
		}
		o := OffsiteOptions{Bucket: bo, MinLock: time.Hour}
		o.Bucket.Prefix = "run" + strconv.Itoa(n) + "/"
		a, err := Open(dir, Options{MinFreeBytes: -1, FS: cfs})
		if err != nil {
			t.Fatal(err)
		}
		_, serr := a.OffsiteSync(f.ctx, o)
		a.Close()
		ops := cfs.Ops()
		crashed, at := cfs.Crashed()
		if err := cfs.Restore(); err != nil {
			t.Fatal(err)
		}
		if crashAt == 0 {
			if serr != nil {
				t.Fatalf("sync without a crash: %v", serr)
			}
			return ops
		}
		if !crashed {
			t.Fatalf("op %d: no crash (sync: %v)", crashAt, serr)
		}
		a, err = Open(dir, Options{MinFreeBytes: -1})
		if err != nil {
			t.Fatalf("power cut %s: open: %v", at, err)
		}
		defer a.Close()
		if _, err := a.OffsiteSync(f.ctx, o); err != nil {
			t.Fatalf("power cut %s: the next sync: %v", at, err)
		}
		for k, v := range versions(t, srv.Client(), "worm", o.Bucket.Prefix) {
			if len(v) != 1 {
				t.Errorf("power cut %s: %s has %d versions, want 1 (uploaded once)", at, k, len(v))
			}
		}
		if vr, err := a.VerifyOffsite(f.ctx, o); err != nil || !vr.OK() {
			t.Errorf("power cut %s: verify --offsite: %v %v", at, err, vr.Problems)
		}
		return ops
	}
	ops := run(0, 0, false)
	if ops < 20 {
		t.Fatalf("a sync made %d file operations: is the FS in use?", ops)
	}
	n := 1
	for op := 1; op <= ops; op++ {
		for _, after := range []bool{false, true} {
			run(n, op, after)
			n++
		}
	}
}

// copyTree copies the regular files and directories below src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
