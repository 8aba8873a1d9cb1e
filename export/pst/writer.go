// SPDX-License-Identifier: Apache-2.0

package pst

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/sealmail/sealmail"
)

// FolderID names a folder of the PST being written (it is the folder's NID).
type FolderID uint32

// RootFolder is the IPM subtree ("Top of Personal Folders"), the folder
// that Outlook shows as the top of the file. Pass it to [Writer.Folder] to
// create top-level folders.
const RootFolder FolderID = nidIPMSubtree

// DeletedItems is the mandatory "Deleted Items" folder.
const DeletedItems FolderID = nidDeletedItems

// Options configure a Writer. The zero value is usable.
type Options struct {
	// DisplayName is the store's name as Outlook shows it; "sealmail export"
	// when empty.
	DisplayName string
	// Logger receives progress at debug level and a summary at close. It
	// never receives message content. Nil discards.
	Logger *slog.Logger
	// Now is the creation time stamped on objects; time.Now when zero.
	Now time.Time
	// TempDir holds the temporary file that keeps contents-table rows
	// until Close; os.TempDir when empty.
	TempDir string
}

// ErrClosed is returned by calls on a closed Writer.
var ErrClosed = errors.New("pst: writer closed")

// Writer writes one Unicode PST file. It is not safe for concurrent use.
type Writer struct {
	d        *ndb
	opts     Options
	log      *slog.Logger
	uid      [16]byte
	now      time.Time
	folders  map[uint32]*folder
	order    []uint32 // folders in creation order
	nextFold uint32
	nextMsg  uint32
	messages int
	file     *os.File // set when Writer opened the file itself
	spool    *spool
	closed   bool
	err      error
}

// Create starts a PST on w. Nothing useful is in w until Close returns nil.
func Create(w io.WriteSeeker, opts Options) (*Writer, error) {
	if opts.DisplayName == "" {
		opts.DisplayName = "sealmail export"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, err := newNDB(w)
	if err != nil {
		return nil, fmt.Errorf("pst: create: %w", err)
	}
	wr := &Writer{d: d, opts: opts, log: log, folders: map[uint32]*folder{},
		nextFold: firstUserFolder, nextMsg: firstMessageIndex, now: opts.Now}
	if wr.now.IsZero() {
		wr.now = time.Now()
	}
	if _, err := rand.Read(wr.uid[:]); err != nil {
		return nil, fmt.Errorf("pst: create: %w", err)
	}
	if wr.spool, err = newSpool(opts.TempDir); err != nil {
		return nil, fmt.Errorf("pst: create: %w", err)
	}
	wr.newFolder(nidRootFolder, nidRootFolder, "", "")
	wr.newFolder(nidIPMSubtree, nidRootFolder, "Top of Personal Folders", "")
	wr.newFolder(nidSearchRoot, nidRootFolder, "Search Root", "")
	wr.newFolder(nidSpamFolder, nidRootFolder, "SPAM Search Folder 2", "").search = true
	wr.newFolder(nidDeletedItems, nidIPMSubtree, "Deleted Items", "IPF.Note")
	return wr, nil
}

// CreateFile creates (or truncates) the file at path and starts a PST in it.
// Close closes the file after syncing it.
func CreateFile(path string, opts Options) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("pst: create %s: %w", path, err)
	}
	w, err := Create(f, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	w.file = f
	return w, nil
}

func (w *Writer) newFolder(nid, parent uint32, name, class string) *folder {
	f := &folder{nid: nid, parent: parent, name: name, class: class}
	w.folders[nid] = f
	w.order = append(w.order, nid)
	if p := w.folders[parent]; p != nil && parent != nid {
		p.children = append(p.children, nid)
	}
	return f
}

// Folder creates a mail folder named name under parent ([RootFolder] for a
// top-level folder) and returns its ID.
func (w *Writer) Folder(parent FolderID, name string) (FolderID, error) {
	if w.closed {
		return 0, ErrClosed
	}
	p := w.folders[uint32(parent)]
	if p == nil || p.search || uint32(parent) == nidRootFolder {
		return 0, fmt.Errorf("pst: folder %q: unknown parent folder %#x", name, uint32(parent))
	}
	if w.nextFold >= 1<<26 {
		return 0, fmt.Errorf("pst: folder %q: %w", name, ErrTooLarge)
	}
	nid := makeNID(w.nextFold, nidTypeNormalFolder)
	w.nextFold++
	w.newFolder(nid, uint32(parent), name, "IPF.Note")
	return FolderID(nid), nil
}

// AddMessage parses raw (RFC 5322 bytes, possibly malformed) and adds it to
// folder. Bad MIME never fails the call: what can be decoded is used and the
// raw header block is kept in PR_TRANSPORT_MESSAGE_HEADERS. env may be nil;
// when given, its recipients that the headers do not name are added (Bcc
// when the envelope does not say otherwise).
func (w *Writer) AddMessage(folder FolderID, raw []byte, env *sealmail.Envelope) error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	f := w.folders[uint32(folder)]
	if f == nil || f.search || uint32(folder) == nidRootFolder {
		return fmt.Errorf("pst: add message: unknown folder %#x", uint32(folder))
	}
	if w.nextMsg >= 1<<26 {
		return fmt.Errorf("pst: add message: %w", ErrTooLarge)
	}
	m := parseMessage(raw)
	if err := checkSizes(m, 0); err != nil {
		return fmt.Errorf("pst: add message: %w", err)
	}
	b, err := w.buildMessage(m, env, 0)
	if err != nil {
		// blocks may be half written: the file can no longer be completed
		w.err = fmt.Errorf("pst: add message: %w", err)
		return w.err
	}
	nid := makeNID(w.nextMsg, nidTypeNormalMessage)
	w.nextMsg++
	w.d.addNode(nid, b.bidData, b.bidSub, f.nid)
	ref, err := w.spool.put(tcRow{id: nid, vals: b.props.pick(contentsCols)})
	if err != nil {
		w.err = fmt.Errorf("pst: add message: %w", err)
		return w.err
	}
	f.rows = append(f.rows, ref)
	f.count++
	w.messages++
	w.log.Debug("pst: message added", "nid", nid, "size", b.size)
	return nil
}

// Close writes the folders, the B-trees, the allocation maps and the
// header. The file is a valid PST only after Close returns nil.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	err := w.close()
	if serr := w.spool.close(); serr != nil && err == nil {
		err = fmt.Errorf("pst: close: %w", serr)
	}
	if w.file != nil {
		if err == nil {
			if serr := w.file.Sync(); serr != nil {
				err = fmt.Errorf("pst: sync: %w", serr)
			}
		}
		if cerr := w.file.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("pst: close: %w", cerr)
		}
	}
	return err
}

func (w *Writer) close() error {
	if w.err != nil {
		return w.err
	}
	if err := w.writeStore(); err != nil {
		return fmt.Errorf("pst: close: %w", err)
	}
	var hi headerInfo
	for i := range hi.rgnid {
		hi.rgnid[i] = 0x400
	}
	hi.rgnid[nidTypeSearchFolder] = 0x4000
	hi.rgnid[nidTypeNormalMessage] = max(0x10000, w.nextMsg-1)
	hi.rgnid[0x08] = 0x8000 // NID_TYPE_ASSOC_MESSAGE
	for _, t := range []int{nidTypeNormalFolder, nidTypeHierarchy, nidTypeContents, nidTypeAssocContents} {
		hi.rgnid[t] = max(0x400, w.nextFold-1)
	}
	if err := w.d.close(hi); err != nil {
		return fmt.Errorf("pst: close: %w", err)
	}
	w.log.Info("pst: written", "messages", w.messages, "folders", len(w.folders)-5, "bytes", w.d.written)
	return nil
}
