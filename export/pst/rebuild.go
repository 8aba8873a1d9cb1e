// SPDX-License-Identifier: Apache-2.0

package pst

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"sort"
	"strings"
	"time"
)

// pstMessage is a message read from its property context, recipient and
// attachment tables.
type pstMessage struct {
	p           *rprops
	class       string
	recipients  []*rprops
	attachments []pstAttachment
}

type pstAttachment struct {
	p        *rprops
	data     []byte
	embedded *pstMessage
}

func (m *pstMessage) delivered() time.Time {
	if t := m.p.time(tagDeliveryTime); !t.IsZero() {
		return t
	}
	return m.p.time(tagClientSubmitTime)
}

// readMessage reads a message object (a message node, or the subnode of an
// embedded message).
func (rd *Reader) readMessage(n node, budget *int64, depth int) (*pstMessage, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("%w: messages nested deeper than %d", errCorrupt, maxNesting)
	}
	p, h, err := rd.pc(n, budget)
	if err != nil {
		return nil, err
	}
	m := &pstMessage{p: p, class: p.str(tagMessageClass)}
	if sn, ok := h.subs[nidRecipTable]; ok {
		if m.recipients, err = rd.table(sn, budget, p.codepage); err != nil {
			return nil, fmt.Errorf("recipients: %w", err)
		}
	}
	sn, ok := h.subs[nidAttachTable]
	if !ok {
		return m, nil
	}
	rows, err := rd.table(sn, budget, p.codepage)
	if err != nil {
		return nil, fmt.Errorf("attachments: %w", err)
	}
	for _, row := range rows {
		nid := uint32(row.int32(tagLtpRowID))
		an, ok := h.subs[nid]
		if !ok {
			return nil, fmt.Errorf("%w: attachment node %#x missing", errCorrupt, nid)
		}
		ap, ah, err := rd.pc(an, budget)
		if err != nil {
			return nil, fmt.Errorf("attachment %#x: %w", nid, err)
		}
		ap.codepage = p.codepage
		a := pstAttachment{p: ap, data: ap.bytes(tagAttachDataBinary)}
		if obj := ap.bytes(tagAttachDataObject); ap.int32(tagAttachMethod) == 5 && len(obj) >= 4 {
			sub, ok := ah.subs[binary.LittleEndian.Uint32(obj)]
			if !ok {
				return nil, fmt.Errorf("%w: embedded message node missing", errCorrupt)
			}
			if a.embedded, err = rd.readMessage(sub, budget, depth+1); err != nil {
				return nil, fmt.Errorf("embedded message: %w", err)
			}
		}
		m.attachments = append(m.attachments, a)
	}
	return m, nil
}

// tagLtpRowID is the row id column of every table: for attachment tables,
// the attachment's subnode id.
const tagLtpRowID = 0x67F20003

// subject strips the PST's subject prefix marker (0x01, length).
func (m *pstMessage) subject() string {
	s := m.p.str(tagSubject)
	if len(s) >= 2 && s[0] == 1 {
		return s[2:]
	}
	return s
}

// header fields a rebuilt message describes itself: taken out of the
// transport headers.
var mimeFields = map[string]bool{"content-type": true, "content-transfer-encoding": true, "mime-version": true}

// rebuild writes the message as RFC 5322 with CRLF line ends. With
// transport headers (PidTagTransportMessageHeaders) the header is theirs
// less its MIME fields; without, it is made from the properties (From,
// To, Cc, Bcc, Subject, Date, Message-ID, In-Reply-To, References). The
// body is text/plain and text/html (multipart/alternative when both),
// attachments base64 in multipart/mixed, embedded messages as
// message/rfc822, rebuilt the same way.
func (m *pstMessage) rebuild(depth int) ([]byte, error) {
	var b bytes.Buffer
	if th := m.p.str(tagTransportHeaders); strings.TrimSpace(th) != "" {
		writeTransportHeader(&b, th)
	} else {
		m.writeHeader(&b)
	}
	b.WriteString("MIME-Version: 1.0\r\n")
	text, html := m.p.str(tagBody), m.p.bytes(tagHTML)
	if html == nil {
		if s := m.p.str(tagHTML); s != "" {
			html = []byte(s)
		}
	}
	writeBody := func(w *bytes.Buffer, hdr textproto.MIMEHeader) error {
		switch {
		case text != "" && html != nil:
			mw := newMultipart(w, m.boundary("alt", depth))
			hdr.Set("Content-Type", "multipart/alternative; boundary="+mw.Boundary())
			writeMIMEHeader(w, hdr)
			pw, _ := mw.CreatePart(textHeader())
			writeQP(pw, []byte(text))
			pw, _ = mw.CreatePart(htmlHeader(m.p.codepage))
			writeQP(pw, html)
			return mw.Close()
		case html != nil:
			for k, v := range htmlHeader(m.p.codepage) {
				hdr[k] = v
			}
			writeMIMEHeader(w, hdr)
			writeQP(w, html)
		default:
			for k, v := range textHeader() {
				hdr[k] = v
			}
			writeMIMEHeader(w, hdr)
			writeQP(w, []byte(text))
		}
		return nil
	}
	if len(m.attachments) == 0 {
		err := writeBody(&b, textproto.MIMEHeader{})
		return b.Bytes(), err
	}
	mw := newMultipart(&b, m.boundary("mixed", depth))
	b.WriteString("Content-Type: multipart/mixed; boundary=" + mw.Boundary() + "\r\n\r\n")
	var body bytes.Buffer
	if err := writeBody(&body, textproto.MIMEHeader{}); err != nil {
		return nil, err
	}
	pw, err := mw.CreatePart(nil)
	if err != nil {
		return nil, err
	}
	// CreatePart(nil) wrote the boundary line and an empty line: the body
	// part's own header follows in the buffer, so take that line back.
	b.Truncate(b.Len() - 2)
	_, _ = pw.Write(body.Bytes()) // into memory: cannot fail
	for i, a := range m.attachments {
		hdr := textproto.MIMEHeader{}
		name := a.p.str(tagAttachLongFilename)
		if name == "" {
			name = a.p.str(tagAttachFilename)
		}
		if cid := a.p.str(tagAttachContentID); cid != "" {
			hdr.Set("Content-ID", "<"+strings.Trim(cid, "<>")+">")
		}
		if a.embedded != nil {
			inner, err := a.embedded.rebuild(depth + 1)
			if err != nil {
				return nil, err
			}
			hdr.Set("Content-Type", "message/rfc822")
			hdr.Set("Content-Disposition", "attachment")
			pw, err := mw.CreatePart(hdr)
			if err != nil {
				return nil, err
			}
			_, _ = pw.Write(inner) // into memory: cannot fail
			continue
		}
		if name == "" {
			name = fmt.Sprintf("attachment%d", i+1)
		}
		ct := a.p.str(tagAttachMimeTag)
		if _, _, err := mime.ParseMediaType(ct); ct == "" || err != nil {
			ct = "application/octet-stream"
		}
		hdr.Set("Content-Type", mime.FormatMediaType(ct, map[string]string{"name": name}))
		hdr.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
		hdr.Set("Content-Transfer-Encoding", "base64")
		pw, err := mw.CreatePart(hdr)
		if err != nil {
			return nil, err
		}
		writeBase64(pw, a.data)
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// boundary returns a multipart boundary made from a hash of the message's
// content, so that rebuilding the same message gives the same bytes (a
// re-run of an import must find them stored) and no part contains it.
func (m *pstMessage) boundary(kind string, depth int) string {
	h := sha256.New()
	h.Write([]byte(m.p.str(tagBody)))
	h.Write(m.p.bytes(tagHTML))
	for _, a := range m.attachments {
		h.Write(a.data)
		h.Write([]byte(a.p.str(tagAttachLongFilename)))
	}
	h.Write([]byte(m.p.str(tagTransportHeaders)))
	return fmt.Sprintf("sealmail-pst-%x-%s%d", h.Sum(nil)[:12], kind, depth)
}

func newMultipart(w io.Writer, boundary string) *multipart.Writer {
	mw := multipart.NewWriter(w)
	if err := mw.SetBoundary(boundary); err != nil {
		panic(fmt.Sprintf("boundary %q: %v", boundary, err))
	}
	return mw
}

func textHeader() textproto.MIMEHeader {
	return textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Transfer-Encoding": {"quoted-printable"}}
}

func htmlHeader(codepage int) textproto.MIMEHeader {
	cs := "utf-8"
	switch codepage {
	case 1252:
		cs = "windows-1252"
	case 28591:
		cs = "iso-8859-1"
	case 20127:
		cs = "us-ascii"
	}
	return textproto.MIMEHeader{"Content-Type": {"text/html; charset=" + cs}, "Content-Transfer-Encoding": {"quoted-printable"}}
}

// writeMIMEHeader writes a part's header in sorted order and the empty
// line after it.
func writeMIMEHeader(w *bytes.Buffer, h textproto.MIMEHeader) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			fmt.Fprintf(w, "%s: %s\r\n", k, v)
		}
	}
	w.WriteString("\r\n")
}

func writeQP(w interface{ Write([]byte) (int, error) }, b []byte) {
	q := quotedprintable.NewWriter(w)
	_, _ = q.Write(b) // into memory: cannot fail
	_ = q.Close()
}

func writeBase64(w interface{ Write([]byte) (int, error) }, b []byte) {
	enc := base64.StdEncoding.EncodeToString(b)
	for len(enc) > 76 {
		_, _ = w.Write([]byte(enc[:76] + "\r\n")) // into memory: cannot fail
		enc = enc[76:]
	}
	_, _ = w.Write([]byte(enc + "\r\n"))
}

// writeTransportHeader writes the transport headers as they were received,
// with CRLF line ends, less their MIME fields (the rebuilt body has its
// own).
func writeTransportHeader(b *bytes.Buffer, th string) {
	sc := bufio.NewScanner(strings.NewReader(th))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	skip := true // continuation lines before the first field belong to none
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break // the end of the header; anything after is not header
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !skip {
				b.WriteString(line + "\r\n")
			}
			continue
		}
		name, _, ok := strings.Cut(line, ":")
		skip = ok && mimeFields[strings.ToLower(strings.TrimSpace(name))]
		if !skip {
			b.WriteString(line + "\r\n")
		}
	}
}

// writeHeader makes a header from the message's properties.
func (m *pstMessage) writeHeader(b *bytes.Buffer) {
	p := m.p
	addr := func(name, email string) string {
		if email == "" || !strings.Contains(email, "@") {
			if name == "" {
				return ""
			}
			return mime.QEncoding.Encode("utf-8", name) + " <>"
		}
		return (&mail.Address{Name: name, Address: email}).String()
	}
	from := p.str(tagSenderSMTPAddress)
	if from == "" {
		from = p.str(tagSenderEmail)
	}
	if f := addr(p.str(tagSenderName), from); f != "" {
		b.WriteString("From: " + f + "\r\n")
	}
	var to, cc, bcc []string
	for _, r := range m.recipients {
		email := r.str(tagSMTPAddress)
		if email == "" {
			email = r.str(tagEmailAddress)
		}
		a := addr(r.str(tagDisplayName), email)
		if a == "" {
			continue
		}
		switch r.int32(tagRecipientType) {
		case 2:
			cc = append(cc, a)
		case 3:
			bcc = append(bcc, a)
		default:
			to = append(to, a)
		}
	}
	for _, f := range []struct {
		name string
		v    []string
	}{{"To", to}, {"Cc", cc}, {"Bcc", bcc}} {
		if len(f.v) > 0 {
			b.WriteString(f.name + ": " + strings.Join(f.v, ",\r\n ") + "\r\n")
		}
	}
	if s := m.subject(); s != "" {
		b.WriteString("Subject: " + mime.QEncoding.Encode("utf-8", s) + "\r\n")
	}
	t := p.time(tagClientSubmitTime)
	if t.IsZero() {
		t = p.time(tagDeliveryTime)
	}
	if !t.IsZero() {
		b.WriteString("Date: " + t.Format(time.RFC1123Z) + "\r\n")
	}
	for _, f := range []struct {
		name string
		tag  uint32
	}{{"Message-ID", tagInternetMessageID}, {"In-Reply-To", tagInReplyTo}, {"References", tagInternetReferences}} {
		if v := strings.TrimSpace(p.str(f.tag)); v != "" && !strings.ContainsAny(v, "\r\n") {
			b.WriteString(f.name + ": " + v + "\r\n")
		}
	}
}
