// SPDX-License-Identifier: Apache-2.0

package export

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// IMAPOptions configures an IMAP import.
type IMAPOptions struct {
	ReaderOptions
	// Addr is host:port of an implicit-TLS IMAP server (imaps, port 993).
	Addr     string
	User     string
	Password string
	// Folders are the mailboxes to read; empty means every selectable one.
	Folders []string
	// TLS configures the connection; nil verifies the server's
	// certificate against the system roots for Addr's host name.
	TLS *tls.Config
	// Timeout bounds each network operation (default 2 minutes).
	Timeout time.Duration
}

// ParseIMAPURL reads imaps://user@host[:port]/[folder] into Addr, User and
// Folders. A password in the URL is refused: it would end up in shell
// history and the audit log.
func ParseIMAPURL(s string) (IMAPOptions, error) {
	u, err := url.Parse(s)
	if err != nil {
		return IMAPOptions{}, fmt.Errorf("imap url: %w", err)
	}
	if u.Scheme != "imaps" {
		return IMAPOptions{}, fmt.Errorf("imap url %q: want imaps://user@host/[folder] (implicit TLS)", s)
	}
	if u.User == nil || u.User.Username() == "" || u.Host == "" {
		return IMAPOptions{}, fmt.Errorf("imap url %q: want imaps://user@host/[folder]", s)
	}
	if _, ok := u.User.Password(); ok {
		return IMAPOptions{}, errors.New("imap url: no password in the URL; use --password-file FILE or - for standard input")
	}
	o := IMAPOptions{User: u.User.Username(), Addr: u.Host}
	if u.Port() == "" {
		o.Addr = net.JoinHostPort(u.Hostname(), "993")
	}
	if f := strings.Trim(u.Path, "/"); f != "" {
		o.Folders = []string{f}
	}
	return o, nil
}

// IMAPReader reads mailboxes of an IMAP server without changing anything
// there: mailboxes are opened with EXAMINE (read-only) and messages fetched
// with BODY.PEEK[] (the \Seen flag stays as it was). Messages come in UID
// order per mailbox, in batches of at most 8 MiB or 64 messages; one larger
// than the limit is not fetched (its RFC822.SIZE says so) and is reported.
type IMAPReader struct {
	c       *imapclient.Client
	folders []string
	fi      int
	folder  string
	uids    []imap.UID
	sizes   map[imap.UID]int64
	batch   []imapItem
	max     int64
	done    int64
}

type imapItem struct {
	m   *Message
	err error
}

// OpenIMAP connects, logs in and lists the mailboxes to read.
func OpenIMAP(o IMAPOptions) (*IMAPReader, error) {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	tc := o.TLS
	if tc == nil {
		host, _, _ := net.SplitHostPort(o.Addr)
		tc = &tls.Config{ServerName: host}
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: o.Timeout}, "tcp", o.Addr, tc)
	if err != nil {
		return nil, fmt.Errorf("import: imap connect %s: %w", o.Addr, err)
	}
	c := imapclient.New(conn, nil)
	r := &IMAPReader{c: c, max: o.max()}
	if err := c.Login(o.User, o.Password).Wait(); err != nil {
		_ = c.Close() // the login error is the news
		return nil, fmt.Errorf("import: imap login as %s: %w", o.User, err)
	}
	if len(o.Folders) > 0 {
		r.folders = o.Folders
		return r, nil
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		_ = c.Close() // the list error is the news
		return nil, fmt.Errorf("import: imap list: %w", err)
	}
	for _, l := range list {
		if !slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) && !slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			r.folders = append(r.folders, l.Mailbox)
		}
	}
	slices.Sort(r.folders)
	return r, nil
}

// Folders returns the mailboxes the reader reads.
func (r *IMAPReader) Folders() []string { return slices.Clone(r.folders) }

// Close logs out and closes the connection.
func (r *IMAPReader) Close() error {
	_ = r.c.Logout().Wait() // read-only: a failed logout loses nothing
	return r.c.Close()
}

// Next returns the next message.
func (r *IMAPReader) Next() (*Message, error) {
	for len(r.batch) == 0 {
		if len(r.uids) == 0 {
			if r.fi >= len(r.folders) {
				return nil, io.EOF
			}
			if err := r.open(r.folders[r.fi]); err != nil {
				return nil, err
			}
			r.fi++
			continue
		}
		if err := r.fetch(); err != nil {
			return nil, err
		}
	}
	it := r.batch[0]
	r.batch = r.batch[1:]
	r.done++
	return it.m, it.err
}

// open EXAMINEs a mailbox and learns its UIDs and sizes.
func (r *IMAPReader) open(folder string) error {
	sel, err := r.c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return fmt.Errorf("import: imap examine %q: %w", folder, err)
	}
	r.folder, r.uids, r.sizes = folder, nil, map[imap.UID]int64{}
	if sel.NumMessages == 0 {
		return nil
	}
	data, err := r.c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		return fmt.Errorf("import: imap search %q: %w", folder, err)
	}
	r.uids = data.AllUIDs()
	slices.Sort(r.uids)
	if len(r.uids) == 0 {
		return nil
	}
	msgs, err := r.c.Fetch(imap.UIDSetNum(r.uids...), &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil {
		return fmt.Errorf("import: imap fetch sizes in %q: %w", folder, err)
	}
	for _, m := range msgs {
		r.sizes[m.UID] = m.RFC822Size
	}
	return nil
}

// fetch reads the next batch of the current mailbox.
func (r *IMAPReader) fetch() error {
	var want []imap.UID
	var bytes int64
	for len(r.uids) > 0 && len(want) < 64 && bytes < 8<<20 {
		uid := r.uids[0]
		r.uids = r.uids[1:]
		if r.sizes[uid] > r.max {
			r.batch = append(r.batch, imapItem{err: &ItemError{Folder: r.folder, Position: fmt.Sprintf("uid %d", uid),
				Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, r.sizes[uid], r.max)}})
			continue
		}
		want = append(want, uid)
		bytes += r.sizes[uid]
	}
	if len(want) == 0 {
		return nil
	}
	section := &imap.FetchItemBodySection{Peek: true} // BODY.PEEK[]: read-only
	msgs, err := r.c.Fetch(imap.UIDSetNum(want...), &imap.FetchOptions{
		UID: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{section},
	}).Collect()
	if err != nil {
		return fmt.Errorf("import: imap fetch in %q: %w", r.folder, err)
	}
	slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return int(a.UID) - int(b.UID) })
	for _, m := range msgs {
		raw := m.FindBodySection(section)
		pos := fmt.Sprintf("uid %d", m.UID)
		if raw == nil {
			raw = []byte{} // reported as empty, not as too large
		}
		r.batch = append(r.batch, imapItem{m: &Message{Raw: raw, Folder: r.folder, Received: m.InternalDate, Position: pos}})
	}
	return nil
}
