// SPDX-License-Identifier: Apache-2.0

package reader

import (
	"archive/zip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/api"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/export"
	"github.com/sealmail/sealmail/index"
	"github.com/sealmail/sealmail/vfs"
)

// An export is a job: it waits (unless asked not to) until the index
// covers what the receiver had archived when it started, then decrypts the
// messages its query matches (within the caller's reach) into
// STATEDIR/exports/ID/ with the manifests of package export, and is
// audited with its manifest's SHA-256. job.json in the job's directory
// says where it is (docs/format.md, "Reader state").

// ExportRequest asks for an export job.
type ExportRequest struct {
	Query  string `json:"query"`
	Format string `json:"format"` // eml, mbox or pst
	// Name is the output's name in the job's directory: for eml, a name
	// ending in .zip makes a zip, any other a directory. Default
	// export.zip, export.mbox, export.pst.
	Name string `json:"name,omitempty"`
	// NoWait exports what the index holds now instead of waiting for it to
	// catch up; the job then lists what it may have left out.
	NoWait bool `json:"no_wait,omitempty"`
}

// Job states.
const (
	JobWaiting     = "waiting"   // for the index to cover the archive as of the start
	JobExporting   = "exporting" // writing
	JobDone        = "done"
	JobFailed      = "failed"
	JobInterrupted = "interrupted" // the reader stopped while it ran
	JobCanceled    = "canceled"    // its caller canceled it; its output is incomplete
)

// Job is an export job.
type Job struct {
	ID       string    `json:"id"`
	State    string    `json:"state"`
	By       string    `json:"by"`
	Query    string    `json:"query"`
	Format   string    `json:"format"`
	Name     string    `json:"name"`
	Dir      string    `json:"dir"` // the job's directory
	Created  time.Time `json:"created"`
	Finished time.Time `json:"finished,omitzero"`
	// Target is the receiver's feed horizon when the job started: it waits
	// until the index covers the audit log through it. IndexedSeq is how
	// far it covered it last.
	Target     uint64 `json:"target"`
	IndexedSeq uint64 `json:"indexed_seq"`
	// Done of Total messages are written.
	Done  int `json:"done"`
	Total int `json:"total"`
	// NotCovered are, for a job that did not wait, the live messages the
	// index did not hold with all their receipts: the query may have
	// matched them.
	NotCovered     []uint64 `json:"not_covered,omitempty"`
	ManifestSHA256 string   `json:"manifest_sha256,omitempty"` // of the manifest.sha256 file
	OutputSHA256   string   `json:"output_sha256,omitempty"`   // of a zip, mbox or pst file
	AuditSeq       uint64   `json:"audit_seq,omitempty"`
	Error          string   `json:"error,omitempty"`
	NoWait         bool     `json:"no_wait,omitempty"`
}

// jobs are the reader's export jobs.
type jobs struct {
	fs     vfs.FS
	dir    string
	mu     sync.Mutex
	m      map[string]*Job
	cancel map[string]context.CancelFunc // of the running jobs
	wg     sync.WaitGroup
}

const jobFile = "job.json"

var jobIDRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// open reads the jobs in dir; those that were running are interrupted.
func (j *jobs) open(fsys vfs.FS, dir string) error {
	j.fs, j.dir, j.m, j.cancel = vfs.Or(fsys), dir, map[string]*Job{}, map[string]context.CancelFunc{}
	if err := j.fs.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("reader: export jobs: %w", err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reader: export jobs: %w", err)
	}
	for _, de := range des {
		if !de.IsDir() || !jobIDRE.MatchString(de.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, de.Name(), jobFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var job Job
		if err == nil {
			err = json.Unmarshal(b, &job)
		}
		if err != nil {
			return fmt.Errorf("reader: export job %s: %w", de.Name(), err)
		}
		if job.State == JobWaiting || job.State == JobExporting {
			job.State, job.Error = JobInterrupted, "the reader stopped while the job ran; its output is incomplete"
			if err := j.save(&job); err != nil {
				return err
			}
		}
		j.m[job.ID] = &job
	}
	return nil
}

// save writes a job's job.json whole. The caller holds j.mu or owns job.
func (j *jobs) save(job *Job) error {
	b, err := json.MarshalIndent(job, "", "  ")
	if err != nil {
		return err
	}
	return vfs.WriteFile(j.fs, filepath.Join(j.dir, job.ID, jobFile), append(b, '\n'), 0o600)
}

func (j *jobs) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.m)
}

func (j *jobs) wait() { j.wg.Wait() }

// update changes a running job under the lock.
func (j *jobs) update(job *Job, f func(*Job)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f(job)
}

// get returns a copy of job id.
func (j *jobs) get(id string) (Job, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	job, ok := j.m[id]
	if !ok {
		return Job{}, false
	}
	return *job, true
}

var exportName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Export starts an export job and returns it.
func (r *Reader) Export(ctx context.Context, c Caller, req ExportRequest) (*Job, error) {
	if err := c.may(access.PermExport, r.opts.Now()); err != nil {
		return nil, err
	}
	if err := r.requireUnlocked(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Query) == "" {
		return nil, invalid("export: a query is required ('*' is every message)")
	}
	q, err := index.Parse(req.Query)
	if err != nil {
		return nil, err
	}
	switch req.Format {
	case "eml":
		if req.Name == "" {
			req.Name = "export.zip"
		}
	case "mbox", "pst":
		if req.Name == "" {
			req.Name = "export." + req.Format
		}
	default:
		return nil, invalid("export format %q: want eml, mbox or pst", req.Format)
	}
	if !exportName.MatchString(req.Name) || strings.Contains(req.Name, "..") || strings.HasSuffix(req.Name, ".manifest.sha256") || req.Name == jobFile {
		return nil, invalid("export name %q: want a file name of letters, digits, '.', '_' and '-'", req.Name)
	}
	sq, ok, err := c.scoped(access.PermExport, q)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 8)
	rand.Read(b)
	job := &Job{ID: hex.EncodeToString(b), State: JobWaiting, By: c.Name, Query: req.Query, Format: req.Format, Name: req.Name,
		Created: r.opts.Now().UTC(), NoWait: req.NoWait}
	job.Dir = filepath.Join(r.jobs.dir, job.ID)
	if err := r.jobs.fs.MkdirAll(job.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := r.jobs.save(job); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	jctx, cancel := context.WithCancel(r.ctx)
	r.jobs.mu.Lock()
	r.jobs.m[job.ID] = job
	r.jobs.cancel[job.ID] = cancel
	snap := *job
	r.jobs.mu.Unlock()
	r.jobs.wg.Go(func() {
		defer cancel()
		err := r.runExport(jctx, c, job, sq, ok)
		r.jobs.update(job, func(j *Job) {
			j.Finished = r.opts.Now().UTC()
			switch {
			case err == nil:
				j.State = JobDone
			case r.ctx.Err() != nil:
				j.State, j.Error = JobInterrupted, "the reader stopped while the job ran; its output is incomplete"
			case jctx.Err() != nil:
				j.State, j.Error = JobCanceled, "canceled; its output is incomplete"
			default:
				j.State, j.Error = JobFailed, err.Error()
			}
			delete(r.jobs.cancel, j.ID)
		})
		if err != nil {
			r.log.Warn("export job failed", "job", job.ID, "err", err)
		}
		r.jobs.mu.Lock()
		serr := r.jobs.save(job)
		r.jobs.mu.Unlock()
		if serr != nil {
			r.log.Error("export job: record its end", "job", job.ID, "err", serr)
		}
	})
	return &snap, nil
}

// exportFields is what an export's audit entry (type export) records.
type exportFields struct {
	Count          int      `json:"count"`
	Format         string   `json:"format"`
	IDs            []uint64 `json:"ids,omitempty"` // unless more than MaxHoldMembers: the manifest lists them
	Job            string   `json:"job"`
	ManifestSHA256 string   `json:"manifest_sha256"`
	NotCovered     int      `json:"not_covered,omitempty"`
	Output         string   `json:"output"`
	OutputSHA256   string   `json:"output_sha256"`
	Query          string   `json:"query"`
	Scope          string   `json:"scope,omitempty"`
}

// runExport is the job's work.
func (r *Reader) runExport(ctx context.Context, c Caller, job *Job, q index.Query, reachable bool) error {
	page, err := r.look(ctx, r.Coverage().IndexedSeq, 1)
	if err != nil {
		return err
	}
	r.jobs.update(job, func(j *Job) { j.Target = page.Horizon })
	for !job.NoWait {
		cov := r.Coverage()
		r.jobs.update(job, func(j *Job) { j.IndexedSeq = cov.IndexedSeq })
		if cov.IndexedSeq >= page.Horizon {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	r.jobs.update(job, func(j *Job) { j.State = JobExporting })
	x, done := r.index()
	var matched []index.Stored
	if reachable {
		err = x.Each(ctx, q, func(s index.Stored) error { matched = append(matched, s); return nil })
	}
	done()
	if err != nil {
		return err
	}
	sort.Slice(matched, func(i, k int) bool { return matched[i].ID < matched[k].ID })
	actx := api.OnBehalfOf(ctx, c.Name)
	var notCovered []uint64
	if job.NoWait {
		if notCovered, err = r.notCovered(actx); err != nil {
			return err
		}
	}
	r.jobs.update(job, func(j *Job) { j.Total, j.NotCovered, j.IndexedSeq = len(matched), notCovered, r.Coverage().IndexedSeq })
	out := filepath.Join(job.Dir, job.Name)
	eo := export.Options{Tool: "sealmail " + r.opts.Version, Query: job.Query}
	var w export.Writer
	switch {
	case job.Format == "eml" && strings.HasSuffix(strings.ToLower(job.Name), ".zip"):
		w, err = export.NewEMLZip(out, eo)
	case job.Format == "eml":
		w, err = export.NewEMLDir(out, eo)
	case job.Format == "mbox":
		w, err = export.NewMbox(out, eo)
	default:
		w, err = export.NewPST(out, eo)
	}
	if err != nil {
		return err
	}
	ids := make([]uint64, len(matched))
	for i, s := range matched {
		idents := r.identities()
		if idents == nil {
			_ = w.Close() // incomplete whatever Close says
			return errors.New("the reader was locked while the job ran")
		}
		m, err := r.get(actx, s, idents)
		if err == nil {
			var envs []sealmail.Envelope
			for _, rc := range m.Receipts {
				if rc.Envelope != nil {
					envs = append(envs, *rc.Envelope)
				}
			}
			err = w.Add(ctx, export.Item{ID: s.ID, Received: m.Received, Raw: m.Original, Envelopes: envs})
		}
		if err != nil {
			_ = w.Close()
			return fmt.Errorf("export message %d: %w", s.ID, err)
		}
		ids[i] = uint64(s.ID)
		r.jobs.update(job, func(j *Job) { j.Done = i + 1 })
	}
	if err := w.Close(); err != nil {
		return err
	}
	man := w.Manifest()
	f := exportFields{Job: job.ID, Query: job.Query, Format: job.Format, Output: job.Name, Count: man.Count,
		ManifestSHA256: man.SumFile.SHA256, OutputSHA256: man.Output.SHA256, NotCovered: len(notCovered)}
	if len(ids) <= archive.MaxHoldMembers {
		f.IDs = ids
	}
	if q.Node != nil {
		if pq, err := index.Parse(job.Query); err == nil && pq.Node.String() != q.Node.String() {
			f.Scope = q.Node.String()
		}
	}
	seq, err := r.rcv.RecordEvent(actx, audit.TypeExport, f)
	if err != nil {
		// Fail closed: an export the audit log does not show is removed.
		if rerr := removeOutput(job.Dir, job.Name); rerr != nil {
			r.log.Error("export job: remove an unaudited output", "job", job.ID, "err", rerr)
		}
		return fmt.Errorf("export written, but not audited (removed): %w", err)
	}
	r.jobs.update(job, func(j *Job) {
		j.ManifestSHA256, j.OutputSHA256, j.AuditSeq = man.SumFile.SHA256, man.Output.SHA256, seq
	})
	return nil
}

// notCovered returns the live messages the index does not hold with all
// their receipts.
func (r *Reader) notCovered(ctx context.Context) ([]uint64, error) {
	rows, err := r.rcv.List(ctx, archive.ListOptions{})
	if err != nil {
		return nil, err
	}
	x, done := r.index()
	docs := map[sealmail.MessageID]int{}
	err = x.Each(ctx, index.Query{}, func(s index.Stored) error { docs[s.ID] = len(s.Records); return nil })
	done()
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, row := range rows {
		if docs[sealmail.MessageID(row.ID)] != row.Receipts {
			out = append(out, row.ID)
		}
	}
	return out, nil
}

// removeOutput removes a job's output (and the manifests beside it).
func removeOutput(dir, name string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if de.Name() == name || strings.HasPrefix(de.Name(), name+".manifest.") {
			if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// ExportJob returns an export job: to root, or to whoever started it.
func (r *Reader) ExportJob(c Caller, id string) (*Job, error) {
	job, ok := r.jobs.get(id)
	if !ok || !c.Local && job.By != c.Name {
		return nil, &archive.Error{Code: archive.CodeNotFound, Message: fmt.Sprintf("no export job %q", id)}
	}
	return &job, nil
}

// ExportJobs lists the caller's export jobs (root: all), newest first.
func (r *Reader) ExportJobs(c Caller) []Job {
	r.jobs.mu.Lock()
	defer r.jobs.mu.Unlock()
	out := []Job{}
	for _, j := range r.jobs.m {
		if c.Local || j.By == c.Name {
			out = append(out, *j)
		}
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Created.After(out[k].Created) })
	return out
}

// CancelExportJob stops a running job (its output stays, incomplete,
// until the job is deleted) and returns it as it stands.
func (r *Reader) CancelExportJob(c Caller, id string) (*Job, error) {
	if _, err := r.ExportJob(c, id); err != nil {
		return nil, err
	}
	r.jobs.mu.Lock()
	cancel := r.jobs.cancel[id]
	r.jobs.mu.Unlock()
	if cancel == nil {
		return nil, invalid("export job %s is not running", id)
	}
	cancel()
	r.log.Info("export job canceled", "job", id, "by", c.Name)
	return r.ExportJob(c, id)
}

// ExportFile is a finished job's output or one of its manifest files, to
// be sent to its caller, who closes it.
type ExportFile struct {
	io.ReadCloser
	Name string
	Size int64
}

// ExportOutput names a job's output for [Reader.ExportJobFile].
const ExportOutput = "output"

// ExportJobFile opens a done job's output (which = [ExportOutput]) or one
// of its manifests (export.ManifestJSON, ManifestCSV, ManifestSHA256; for
// a zip, its entries) for its caller, and audits the download (an export
// event with op download) before anything is read: no audit, no file. A
// job written as a directory (EML without .zip) has no single output.
func (r *Reader) ExportJobFile(ctx context.Context, c Caller, id, which string) (*ExportFile, error) {
	job, err := r.ExportJob(c, id)
	if err != nil {
		return nil, err
	}
	if job.State != JobDone {
		return nil, invalid("export job %s is %s, not done", id, job.State)
	}
	isZip := job.Format == "eml" && strings.HasSuffix(strings.ToLower(job.Name), ".zip")
	if job.Format == "eml" && !isZip {
		return nil, invalid("export job %s is a directory of EML files on the reader's host (%s): nothing to download; ask for an EML export named *.zip", id, job.Dir)
	}
	var f *ExportFile
	switch which {
	case ExportOutput:
		f, err = openFile(filepath.Join(job.Dir, job.Name), job.Name)
	case export.ManifestJSON, export.ManifestCSV, export.ManifestSHA256:
		if isZip {
			f, err = openZipEntry(filepath.Join(job.Dir, job.Name), which)
		} else {
			f, err = openFile(filepath.Join(job.Dir, job.Name+"."+which), job.Name+"."+which)
		}
	default:
		return nil, invalid("export file %q: want %s, %s, %s or %s", which, ExportOutput, export.ManifestJSON, export.ManifestCSV, export.ManifestSHA256)
	}
	if err != nil {
		return nil, fmt.Errorf("export job %s: %w", id, err)
	}
	if _, err := r.rcv.RecordEvent(api.OnBehalfOf(ctx, c.Name), audit.TypeExport, struct {
		Op    string `json:"op"`
		Job   string `json:"job"`
		File  string `json:"file"`
		Bytes int64  `json:"bytes"`
	}{"download", id, f.Name, f.Size}); err != nil {
		_ = f.Close() // nothing was read
		return nil, err
	}
	return f, nil
}

func openFile(path, name string) (*ExportFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := fh.Stat()
	if err != nil {
		_ = fh.Close() // the Stat error is the news
		return nil, err
	}
	return &ExportFile{ReadCloser: fh, Name: name, Size: fi.Size()}, nil
}

// openZipEntry opens the entry name of the zip at path.
func openZipEntry(path, name string) (*ExportFile, error) {
	z, err := zip.OpenReader(path)
	if err != nil {
		return nil, err
	}
	for _, e := range z.File {
		if e.Name != name {
			continue
		}
		rc, err := e.Open()
		if err != nil {
			_ = z.Close() // the Open error is the news
			return nil, err
		}
		return &ExportFile{ReadCloser: zipEntry{rc, z}, Name: name, Size: int64(e.UncompressedSize64)}, nil
	}
	_ = z.Close() // only read
	return nil, fmt.Errorf("%s has no %s", filepath.Base(path), name)
}

// zipEntry closes the entry and its archive.
type zipEntry struct {
	io.ReadCloser
	z *zip.ReadCloser
}

func (e zipEntry) Close() error { return errors.Join(e.ReadCloser.Close(), e.z.Close()) }

// DeleteExportJob removes a finished job and its files.
func (r *Reader) DeleteExportJob(c Caller, id string) error {
	job, err := r.ExportJob(c, id)
	if err != nil {
		return err
	}
	if slices.Contains([]string{JobWaiting, JobExporting}, job.State) {
		return invalid("export job %s is still running", id)
	}
	r.jobs.mu.Lock()
	defer r.jobs.mu.Unlock()
	delete(r.jobs.m, id)
	// job.json first: a job directory without it is not a job.
	if err := os.Remove(filepath.Join(job.Dir, jobFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.RemoveAll(job.Dir)
}
