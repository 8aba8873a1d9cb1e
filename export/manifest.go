// SPDX-License-Identifier: Apache-2.0

package export

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/mimepart"
)

// Manifest is the chain-of-custody record of one export: what was
// exported, by which tool, for which query, and the SHA-256 of every
// message. It is written as manifest.json and manifest.csv, and the digests
// of those files (and of the exported files) as manifest.sha256.
type Manifest struct {
	// Format is "eml-dir", "eml-zip" or "mbox".
	Format string `json:"format"`
	Tool   string `json:"tool"`
	Query  string `json:"query"`
	// Started is when the writer was created, Created when Close wrote the
	// manifest (both UTC, from Options.Now).
	Started time.Time `json:"started"`
	Created time.Time `json:"created"`
	Count   int       `json:"count"`
	// Digest says what Row.SHA256 is computed over.
	Digest   string `json:"digest"`
	Messages []Row  `json:"messages"`
	// Files lists the files manifest.sha256 covers, with their digests, set
	// by Close. It is not part of manifest.json (which it covers).
	Files []FileDigest `json:"-"`
	// SumFile is the digest of manifest.sha256 itself, which covers every
	// other file: the value for an audit log entry. Set by Close.
	SumFile FileDigest `json:"-"`
	// Output is the digest of the whole zip or mbox file, set by Close;
	// zero for an EML directory.
	Output FileDigest `json:"-"`
}

// Row describes one exported message.
type Row struct {
	// Seq is the message's 1-based position in the export (in an mbox, the
	// Seq-th message).
	Seq int                `json:"seq"`
	ID  sealmail.MessageID `json:"id"`
	// File is the message's file name in an EML export, empty in an mbox.
	File string `json:"file,omitempty"`
	// Date is the header Date if it parses, else the received time;
	// DateSource says which ("header" or "received").
	Date       time.Time `json:"date"`
	DateSource string    `json:"date_source"`
	Received   time.Time `json:"received"`
	// From, To and Subject are the first such header fields, unfolded,
	// with RFC 2047 encoded words decoded; each at most 2048 bytes.
	From    string `json:"from"`
	To      string `json:"to"`
	Subject string `json:"subject"`
	// Size is the length of the original message in bytes.
	Size int64 `json:"size"`
	// SHA256 is the hex SHA-256 of the original message bytes (Item.Raw),
	// which are the exported bytes in EML exports.
	SHA256 string `json:"sha256"`
}

// FileDigest is one line of manifest.sha256.
type FileDigest struct {
	Name   string
	Size   int64
	SHA256 string
}

// Digest descriptions recorded in Manifest.Digest.
const (
	digestExported = "sha256 of the exported message bytes, which are the original bytes"
	digestOriginal = "sha256 of the original message bytes, before mbox From-quoting and CRLF-to-LF conversion"
)

// Names of the manifest files inside an EML export; an mbox export at
// PATH uses PATH.manifest.csv, PATH.manifest.json and PATH.manifest.sha256.
const (
	ManifestCSV    = "manifest.csv"
	ManifestJSON   = "manifest.json"
	ManifestSHA256 = "manifest.sha256"
)

func newRow(it Item) Row {
	h := mimepart.ParseHeader(it.Raw)
	r := Row{
		ID:         it.ID,
		Received:   it.Received.UTC(),
		Date:       it.Received.UTC(),
		DateSource: "received",
		From:       decodeText(h.Get("from")),
		To:         decodeText(h.Get("to")),
		Subject:    decodeText(h.Get("subject")),
		Size:       int64(len(it.Raw)),
	}
	if d, ok := mimepart.ParseDate(h.Get("date")); ok {
		r.Date, r.DateSource = d, "header"
	}
	return r
}

// csvHeader is the first record of manifest.csv.
var csvHeader = []string{"seq", "id", "file", "date", "date_source", "received", "from", "to", "subject", "size", "sha256"}

// writeCSV writes the rows as RFC 4180 CSV (CRLF line ends, as the RFC
// says), one header record first.
func writeCSV(w io.Writer, m *Manifest) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, r := range m.Messages {
		rec := []string{
			strconv.Itoa(r.Seq), r.ID.String(), r.File,
			r.Date.Format(time.RFC3339), r.DateSource, r.Received.Format(time.RFC3339),
			r.From, r.To, r.Subject,
			strconv.FormatInt(r.Size, 10), r.SHA256,
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeJSON writes the manifest as one JSON object, one message row per
// line, without building the whole document in memory. "<", ">" and "&"
// are written as is (no HTML escaping): addresses stay readable.
func writeJSON(w io.Writer, m *Manifest) error {
	bw := bufio.NewWriter(w)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	head := *m
	head.Messages = nil
	if err := enc.Encode(head); err != nil {
		return err
	}
	// Replace the closing `"messages": null` with the streamed array.
	s := strings.TrimSuffix(buf.String(), "\n}\n")
	s = strings.TrimSuffix(s, `"messages": null`)
	bw.WriteString(s)
	bw.WriteString(`"messages": [`)
	enc.SetIndent("", "")
	for i, r := range m.Messages {
		buf.Reset()
		if err := enc.Encode(r); err != nil {
			return err
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		bw.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}
	if len(m.Messages) > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("]\n}\n")
	return bw.Flush()
}

// sha256Line formats one line of sha256sum output for name (text mode, two
// spaces). As GNU coreutils does, a name holding a backslash, CR or LF is
// escaped and the line starts with a backslash.
func sha256Line(sum, name string) string {
	if strings.ContainsAny(name, "\\\n\r") {
		r := strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\r", "\\r")
		return "\\" + sum + "  " + r.Replace(name) + "\n"
	}
	return sum + "  " + name + "\n"
}

// writeSHA256 writes files in sha256sum format.
func writeSHA256(w io.Writer, files []FileDigest) error {
	bw := bufio.NewWriter(w)
	for _, f := range files {
		bw.WriteString(sha256Line(f.SHA256, f.Name))
	}
	return bw.Flush()
}

// manifestFile is one manifest file to produce.
type manifestFile struct {
	name  string
	write func(io.Writer) error
}

// emitManifest writes manifest.csv, manifest.json and manifest.sha256 (with
// the given prefix on each name) through create, which returns a writer
// for a new file and a function that finishes it. covered are the digests
// of the exported files that manifest.sha256 lists before the manifests.
// It sets m.Created and m.Files.
func emitManifest(m *Manifest, now time.Time, prefix string, covered []FileDigest,
	create func(name string) (io.Writer, func() error, error)) error {
	m.Created = now.UTC()
	m.Count = len(m.Messages)
	files := covered
	for _, mf := range []manifestFile{
		{prefix + ManifestCSV, func(w io.Writer) error { return writeCSV(w, m) }},
		{prefix + ManifestJSON, func(w io.Writer) error { return writeJSON(w, m) }},
	} {
		w, done, err := create(mf.name)
		if err != nil {
			return err
		}
		cw := &countHash{w: w, h: sha256.New()}
		if err := mf.write(cw); err != nil {
			return fmt.Errorf("export: write %s: %w", mf.name, err)
		}
		if err := done(); err != nil {
			return err
		}
		files = append(files, FileDigest{Name: mf.name, Size: cw.n, SHA256: hex.EncodeToString(cw.h.Sum(nil))})
	}
	w, done, err := create(prefix + ManifestSHA256)
	if err != nil {
		return err
	}
	sw := &countHash{w: w, h: sha256.New()}
	if err := writeSHA256(sw, files); err != nil {
		return fmt.Errorf("export: write %s: %w", prefix+ManifestSHA256, err)
	}
	if err := done(); err != nil {
		return err
	}
	m.Files = files
	m.SumFile = FileDigest{Name: prefix + ManifestSHA256, Size: sw.n, SHA256: hex.EncodeToString(sw.h.Sum(nil))}
	return nil
}

// countHash counts and hashes the bytes written through it.
type countHash struct {
	w io.Writer
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func (c *countHash) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	_, _ = c.h.Write(p[:n]) // a hash never fails
	c.n += int64(n)
	return n, err
}
