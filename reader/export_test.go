// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/audit"
)

// waitJob waits until job id is finished.
func (g *rig) waitJob(c Caller, id string) *Job {
	g.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		job, err := g.r.ExportJob(c, id)
		if err != nil {
			g.t.Fatal(err)
		}
		if job.State != JobWaiting && job.State != JobExporting {
			return job
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatalf("export job %s did not finish in 30 s", id)
	return nil
}

// TestExportJob: an export waits until the index covers what was archived
// when it started (here: the reader is not following until after it was
// asked), writes the originals byte for byte with their manifests into
// its job directory, and is audited with its manifest's hash; one that
// does not wait says what it may have left out. Only its owner (or root)
// sees a job.
func TestExportJob(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{}, false)
	ctx := context.Background()
	var sent []string
	for i := range 3 {
		m := fmt.Sprintf("From: a@example.com\r\nSubject: export %d\r\n\r\nbody %d\nbare LF\r\n", i, i)
		sent = append(sent, m)
		g.ingest(m, "bob@example.org")
	}
	job, err := g.r.Export(ctx, officer, ExportRequest{Query: "subject:export", Format: "eml"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if j, _ := g.r.ExportJob(officer, job.ID); j.State != JobWaiting || j.Target == 0 {
		t.Fatalf("job before the index caught up = %+v, want it waiting for seq > 0", j)
	}
	g.run()
	done := g.waitJob(officer, job.ID)
	if done.State != JobDone || done.Done != 3 || done.ManifestSHA256 == "" || done.AuditSeq == 0 {
		t.Fatalf("job = %+v, want 3 messages exported and audited", done)
	}
	zr, err := zip.OpenReader(filepath.Join(done.Dir, "export.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var emls []string
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".eml") {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			emls = append(emls, string(b))
		}
	}
	if fmt.Sprint(emls) != fmt.Sprint(sent) {
		t.Errorf("the zip holds %q, want the originals %q", emls, sent)
	}
	var audited []string
	audit.Read(ctx, filepath.Join(g.dir, "audit"), audit.Filter{Types: []string{audit.TypeExport}}, func(e audit.Entry) error {
		audited = append(audited, fmt.Sprint(e.Actor, " ", e.Fields["job"], " ", e.Fields["count"], " ", e.Fields["manifest_sha256"]))
		return nil
	})
	if want := fmt.Sprint("olga (officer) ", job.ID, " 3 ", done.ManifestSHA256); len(audited) != 1 || audited[0] != want {
		t.Errorf("export audit entries = %q, want %q", audited, want)
	}
	if _, err := g.r.ExportJob(Caller{Name: "eve (officer)", Role: "officer"}, job.ID); archive.AsError(err).Code != archive.CodeNotFound {
		t.Errorf("another officer sees the job: %v", err)
	}

	// Without waiting: a message archived but not indexed is named.
	g.stop()
	late := g.ingest("Subject: export late\r\n\r\nx\r\n", "bob@example.org")
	job, err = g.r.Export(ctx, officer, ExportRequest{Query: "subject:export", Format: "mbox", NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	done = g.waitJob(officer, job.ID)
	if done.State != JobDone || done.Done != 3 || fmt.Sprint(done.NotCovered) != fmt.Sprint([]uint64{uint64(late)}) {
		t.Fatalf("job without waiting = %+v, want 3 exported and %d named as left out", done, late)
	}
	mbox, err := os.ReadFile(filepath.Join(done.Dir, "export.mbox"))
	if err != nil || bytes.Count(mbox, []byte("\nSubject: export ")) != 3 {
		t.Errorf("export.mbox: %v, %d messages", err, bytes.Count(mbox, []byte("\nSubject: export ")))
	}
	if err := g.r.DeleteExportJob(Local("root"), job.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(done.Dir); !os.IsNotExist(err) {
		t.Errorf("deleted job's directory: %v", err)
	}
	// A user may not export.
	if _, err := g.r.Export(ctx, Caller{Name: "jane (user)", Role: "user", Addresses: []string{"bob@example.org"}},
		ExportRequest{Query: "*", Format: "eml"}); archive.AsError(err).Code != archive.CodePermission {
		t.Errorf("user export: %v, want refused", err)
	}
}

// TestExportCancelAndFiles: a job waiting for the index can be canceled
// (its output is then not served); a done job's output and manifests
// (beside an mbox, inside a zip) are served whole, each download audited
// with the person before it is read.
func TestExportCancelAndFiles(t *testing.T) {
	t.Parallel()
	g := newRig(t, archive.Options{}, false)
	ctx := context.Background()
	g.ingest("From: a@example.com\r\nSubject: export 1\r\n\r\nbody\r\n", "bob@example.org")
	job, err := g.r.Export(ctx, officer, ExportRequest{Query: "*", Format: "mbox"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.r.CancelExportJob(Caller{Name: "eve (officer)", Role: "officer"}, job.ID); archive.AsError(err).Code != archive.CodeNotFound {
		t.Errorf("another officer cancels the job: %v, want not found", err)
	}
	if _, err := g.r.CancelExportJob(officer, job.ID); err != nil {
		t.Fatal(err)
	}
	if done := g.waitJob(officer, job.ID); done.State != JobCanceled {
		t.Fatalf("canceled job = %+v", done)
	}
	if _, err := g.r.CancelExportJob(officer, job.ID); archive.AsError(err).Code != archive.CodeInvalid {
		t.Errorf("canceling a finished job: %v, want refused", err)
	}
	if _, err := g.r.ExportJobFile(ctx, officer, job.ID, ExportOutput); archive.AsError(err).Code != archive.CodeInvalid {
		t.Errorf("the output of a canceled job: %v, want refused", err)
	}

	g.run()
	sum := func(f *ExportFile) string {
		t.Helper()
		defer f.Close()
		h := sha256.New()
		if n, err := io.Copy(h, f); err != nil || n != f.Size {
			t.Fatalf("read %s: %d of %d bytes, %v", f.Name, n, f.Size, err)
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	for _, format := range []string{"mbox", "eml"} {
		job, err := g.r.Export(ctx, officer, ExportRequest{Query: "*", Format: format})
		if err != nil {
			t.Fatal(err)
		}
		done := g.waitJob(officer, job.ID)
		if done.State != JobDone {
			t.Fatalf("%s job = %+v", format, done)
		}
		f, err := g.r.ExportJobFile(ctx, officer, job.ID, ExportOutput)
		if err != nil || f.Name != done.Name || sum(f) != done.OutputSHA256 {
			t.Errorf("%s output: %v, want %s with SHA-256 %s", format, err, done.Name, done.OutputSHA256)
		}
		f, err = g.r.ExportJobFile(ctx, officer, job.ID, "manifest.sha256")
		if err != nil || sum(f) != done.ManifestSHA256 {
			t.Errorf("%s manifest.sha256: %v, want SHA-256 %s", format, err, done.ManifestSHA256)
		}
		if _, err := g.r.ExportJobFile(ctx, officer, job.ID, "job.json"); archive.AsError(err).Code != archive.CodeInvalid {
			t.Errorf("%s: a file that is not the output or a manifest: %v, want refused", format, err)
		}
	}
	var downloads []string
	audit.Read(ctx, filepath.Join(g.dir, "audit"), audit.Filter{Types: []string{audit.TypeExport}}, func(e audit.Entry) error {
		if e.Fields["op"] == "download" {
			downloads = append(downloads, fmt.Sprint(e.Actor, " ", e.Fields["file"]))
		}
		return nil
	})
	want := []string{"olga (officer) export.mbox", "olga (officer) export.mbox.manifest.sha256", "olga (officer) export.zip", "olga (officer) manifest.sha256"}
	if fmt.Sprint(downloads) != fmt.Sprint(want) {
		t.Errorf("download audit entries = %q, want %q", downloads, want)
	}
}
