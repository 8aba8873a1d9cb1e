// SPDX-License-Identifier: Apache-2.0

package index

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	bindex "github.com/blugelabs/bluge/index"
	segment "github.com/blugelabs/bluge_segment_api"
)

// directory is Bluge's file-system directory, except that segments are
// loaded without Bluge's per-file flock (LOCK_SH|LOCK_NB).
//
// A child process forked by this process (the attachment sandbox starts
// one per attachment) shares every open file description of the parent
// until it execs, and with it any flock on it: Bluge holds LOCK_EX on a
// segment file while it writes it, and a load of that file during such a
// window fails with EAGAIN ("error opening new segment"). The index's own
// LOCK file ([Open]) already keeps every other process out of the
// directory, so the per-file locks protect nothing here.
type directory struct {
	*bindex.FileSystemDirectory
	path string
	// merging, if not nil, is called when a merge starts writing the
	// segment it makes (tests).
	merging func()
}

func newDirectory(path string, merging func()) bindex.Directory {
	return directory{FileSystemDirectory: bindex.NewFileSystemDirectory(path), path: path, merging: merging}
}

// Persist writes a segment or a snapshot as Bluge's Persist does. A
// segment written from a merger rather than from a segment is a merge.
func (d directory) Persist(kind string, id uint64, w bindex.WriterTo, closeCh chan struct{}) error {
	if _, flush := w.(segment.Segment); d.merging != nil && kind == bindex.ItemKindSegment && !flush {
		d.merging()
	}
	return d.FileSystemDirectory.Persist(kind, id, w, closeCh)
}

// Load opens and maps a segment file as Bluge's Load does, without the
// flock. The file name is Bluge's: the id as 12 hex digits, then the kind.
func (d directory) Load(kind string, id uint64) (*segment.Data, io.Closer, error) {
	f, err := os.Open(filepath.Join(d.path, fmt.Sprintf("%012x", id)+kind))
	if err != nil {
		return nil, nil, err
	}
	return bindex.LoadMMapAlways(unlockedFile{f})
}

// unlockedFile is an open file that holds no lock.
type unlockedFile struct{ f *os.File }

func (u unlockedFile) File() *os.File  { return u.f }
func (u unlockedFile) Exclusive() bool { return false }
func (u unlockedFile) Close() error    { return u.f.Close() }
