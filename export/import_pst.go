// SPDX-License-Identifier: Apache-2.0

package export

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sealmail/sealmail/export/pst"
)

// ErrNotMail says a source item is not a mail message (a PST contact,
// appointment, task or note): it is skipped.
var ErrNotMail = errors.New("export: not a mail message")

// PSTReader reads the mail messages of a PST file (Unicode or ANSI), each
// rebuilt as RFC 5322 by [pst.Reader]; the folder is the PST folder path.
type PSTReader struct{ r *pst.Reader }

// OpenPST opens the PST file at path.
func OpenPST(path string, opts ReaderOptions) (*PSTReader, error) {
	r, err := pst.Open(path, pst.ReadOptions{MaxMessageBytes: opts.max()})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return &PSTReader{r: r}, nil
}

// Next returns the next mail message.
func (p *PSTReader) Next() (*Message, error) {
	m, err := p.r.Next()
	var me *pst.MessageError
	if errors.As(err, &me) {
		e := me.Err
		switch {
		case errors.Is(e, pst.ErrMessageTooLarge):
			e = fmt.Errorf("%w: %v", ErrTooLarge, e)
		case errors.Is(e, pst.ErrNotMail):
			e = fmt.Errorf("%w: %s", ErrNotMail, strings.TrimPrefix(e.Error(), pst.ErrNotMail.Error()+": "))
		}
		return nil, &ItemError{Folder: me.Folder, Position: fmt.Sprintf("node %#x", me.NID), Err: e}
	}
	if err != nil {
		return nil, err
	}
	return &Message{Raw: m.Raw, Folder: m.Folder, Received: m.Delivered, Position: fmt.Sprintf("node %#x", m.NID)}, nil
}

// Progress returns the message nodes read and their count.
func (p *PSTReader) Progress() (done, total int64) {
	d, t := p.r.Progress()
	return int64(d), int64(t)
}

// Close closes the file.
func (p *PSTReader) Close() error { return p.r.Close() }
