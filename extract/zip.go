// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"path"
	"strings"
)

// openZip reads the central directory of a ZIP archive. Every member's size
// there is a claim: readers of members count the bytes they really get.
func openZip(data []byte) (*zip.Reader, error) {
	return zip.NewReader(bytes.NewReader(data), int64(len(data)))
}

// zipKind tells an OOXML or OpenDocument package from a plain archive by
// its members; declared is what Detect found from name and type.
func (j *job) zipKind(data []byte, declared Format) Format {
	zr, err := openZip(data)
	if err != nil {
		return declared
	}
	names := make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		names[f.Name] = f
	}
	if names["[Content_Types].xml"] != nil {
		switch {
		case names["word/document.xml"] != nil:
			return DOCX
		case names["xl/workbook.xml"] != nil:
			return XLSX
		case names["ppt/presentation.xml"] != nil:
			return PPTX
		}
	}
	if m := names["mimetype"]; m != nil && m.UncompressedSize64 < 128 {
		b, err := j.readMember(m, 128)
		if err == nil {
			switch strings.TrimSpace(string(b)) {
			case "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.text-template":
				return ODT
			case "application/vnd.oasis.opendocument.spreadsheet", "application/vnd.oasis.opendocument.spreadsheet-template":
				return ODS
			case "application/vnd.oasis.opendocument.presentation", "application/vnd.oasis.opendocument.presentation-template":
				return ODP
			}
		}
	}
	if declared != ZIP && names["[Content_Types].xml"] == nil && names["mimetype"] == nil {
		return ZIP // named like a document, but an archive
	}
	return declared
}

// budget is an io.Reader that counts the bytes it passes against the job's
// unpacked bound.
type budget struct {
	r io.Reader
	j *job
}

func (b *budget) Read(p []byte) (int, error) {
	left := b.j.lim.MaxUnpackedBytes - b.j.unpacked
	if left <= 0 {
		return 0, errLimit
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	if b.j.ctx.Err() != nil {
		return 0, b.j.ctx.Err()
	}
	n, err := b.r.Read(p)
	b.j.unpacked += int64(n)
	return n, err
}

// openMember opens a member for reading within the unpacked bound. The
// caller closes it.
func (j *job) openMember(f *zip.File) (io.ReadCloser, error) {
	if f.Flags&0x1 != 0 {
		return nil, errEncrypted // APPNOTE 4.4.4: bit 0, the member is encrypted
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{&budget{r: rc, j: j}, rc}, nil
}

var errEncrypted = errors.New("extract: encrypted")

// readMember reads a whole member, at most max bytes of it (more is an
// errLimit). The declared size only sizes the buffer, within max.
func (j *job) readMember(f *zip.File, max int64) ([]byte, error) {
	rc, err := j.openMember(f)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readAtMost(rc, max, int64(min(f.UncompressedSize64, uint64(max))))
}

func readAtMost(r io.Reader, max, hint int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, hint+1))
	_, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if err == nil && int64(buf.Len()) > max {
		err = errLimit
	}
	return buf.Bytes(), err
}

// problem records why a member could not be read.
func (j *job) problem(err error) {
	switch {
	case err == nil, errors.Is(err, errFull):
	case errors.Is(err, errLimit):
		j.fail(ReasonLimit)
	case errors.Is(err, errEncrypted):
		j.fail(ReasonEncrypted)
	case j.ctx.Err() != nil:
		// result() reports the deadline.
	default:
		j.fail(ReasonMalformed)
	}
}

// zip extracts every member of an archive: its path, and the text of the
// members this package reads, recursively.
func (j *job) zip(data []byte, depth int) {
	if depth >= j.lim.MaxDepth {
		j.fail(ReasonLimit)
		return
	}
	zr, err := openZip(data)
	if err != nil {
		j.fail(ReasonMalformed)
		return
	}
	for _, f := range zr.File {
		if j.stopped() {
			return
		}
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		j.entries++
		if j.entries > j.lim.MaxEntries {
			j.fail(ReasonLimit)
			return
		}
		j.line(f.Name)
		if !worthReading(f.Name) {
			continue // an image or a program: its name is all there is
		}
		j.problem(j.member(f, depth+1))
	}
}

// member extracts one archive member. Its first kilobyte decides: a member
// that is no document is not read further; text is read only as far as
// the text bound; a document is read whole, within the unpacked bound.
func (j *job) member(f *zip.File, depth int) error {
	rc, err := j.openMember(f)
	if err != nil {
		return err
	}
	defer rc.Close()
	name := path.Base(f.Name)
	head, err := readAtMost(rc, 1024, 1024)
	if errors.Is(err, errLimit) {
		err = nil // there is more
	}
	if err != nil {
		return err
	}
	switch Detect(head, "", name) {
	case "":
		return nil
	case Text:
		room := int64(2 * (j.lim.MaxTextBytes - j.out.Len())) // UTF-16 takes two bytes a character
		rest, err := readAtMost(rc, max(room-int64(len(head)), 0), 0)
		if errors.Is(err, errLimit) {
			j.truncated, err = true, nil
		}
		j.file(append(head, rest...), "", name, depth)
		return err
	}
	left := min(j.lim.MaxUnpackedBytes, int64(j.lim.MaxInputBytes))
	rest, err := readAtMost(rc, left, int64(min(f.UncompressedSize64, uint64(left))))
	if err != nil {
		return err
	}
	j.file(append(head, rest...), "", name, depth)
	return nil
}

// worthReading reports whether a member may be a document: its extension
// is one Detect knows, or it has none, or it is ".dat" (winmail.dat); the
// magic bytes decide.
func worthReading(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return byExt[ext] != "" || ext == "" || ext == ".dat"
}
