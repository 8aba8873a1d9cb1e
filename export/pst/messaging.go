// SPDX-License-Identifier: Apache-2.0

package pst

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/sealmail/sealmail"
)

// Messaging layer ([MS-PST] 2.4, 2.7): store, folders, messages,
// recipients, attachments.

// NID types (2.2.2.1).
const (
	nidTypeInternal      = 0x01
	nidTypeNormalFolder  = 0x02
	nidTypeSearchFolder  = 0x03
	nidTypeNormalMessage = 0x04
	nidTypeAttachment    = 0x05
	nidTypeHierarchy     = 0x0D
	nidTypeContents      = 0x0E
	nidTypeAssocContents = 0x0F
	nidTypeSearchContent = 0x10
)

// Fixed NIDs (2.4.1, 2.7.1).
const (
	nidMessageStore   = 0x21
	nidNameToIDMap    = 0x61
	nidRootFolder     = 0x122
	nidSMQ            = 0x1E1
	nidSAL            = 0x201
	nidHierTemplate   = 0x60D
	nidContTemplate   = 0x60E
	nidFAITemplate    = 0x60F
	nidSearchTemplate = 0x610
	nidAttachTable    = 0x671
	nidRecipTable     = 0x692
	nidSpamFolder     = 0x2223
	nidSpamContents   = 0x2230
	nidIPMSubtree     = 0x8022
	nidSearchRoot     = 0x8042
	nidDeletedItems   = 0x8062
	firstUserFolder   = 0x404 // nidIndex after the three mandatory normal folders
	firstMessageIndex = 0x10001
)

func makeNID(index, typ uint32) uint32 { return index<<5 | typ }

// Property tags used here ([MS-OXPROPS]).
const (
	tagImportance            = 0x00170003
	tagMessageClass          = 0x001A001F
	tagSensitivity           = 0x00360003
	tagSubject               = 0x0037001F
	tagClientSubmitTime      = 0x00390040
	tagSentReprEntryID       = 0x00410102
	tagSentReprName          = 0x0042001F
	tagMessageToMe           = 0x0057000B
	tagMessageCcMe           = 0x0058000B
	tagSentReprAddrType      = 0x0064001F
	tagSentReprEmail         = 0x0065001F
	tagConversationTopic     = 0x0070001F
	tagConversationIndex     = 0x00710102
	tagTransportHeaders      = 0x007D001F
	tagSenderEntryID         = 0x0C190102
	tagSenderName            = 0x0C1A001F
	tagSenderAddrType        = 0x0C1E001F
	tagSenderEmail           = 0x0C1F001F
	tagRecipientType         = 0x0C150003
	tagDisplayBcc            = 0x0E02001F
	tagDisplayCc             = 0x0E03001F
	tagDisplayTo             = 0x0E04001F
	tagDeliveryTime          = 0x0E060040
	tagMessageFlags          = 0x0E070003
	tagMessageSize           = 0x0E080003
	tagResponsibility        = 0x0E0F000B
	tagMessageStatus         = 0x0E170003
	tagHasAttachments        = 0x0E1B000B
	tagNormalizedSubject     = 0x0E1D001F
	tagAttachSize            = 0x0E200003
	tagAttachNumber          = 0x0E210003
	tagReplItemID            = 0x0E300102
	tagReplChangenum         = 0x0E330014
	tagReplVersionHistory    = 0x0E340102
	tagReplFlags             = 0x0E380003
	tagReplCopiedVersion     = 0x0E3C0102
	tagReplCopiedItemID      = 0x0E3D0102
	tagRecordKey             = 0x0FF90102
	tagObjectType            = 0x0FFE0003
	tagEntryID               = 0x0FFF0102
	tagBody                  = 0x1000001F
	tagHTML                  = 0x10130102
	tagInternetMessageID     = 0x1035001F
	tagInternetReferences    = 0x1039001F
	tagInReplyTo             = 0x1042001F
	tagItemTemporaryFlags    = 0x10970003
	tagDisplayName           = 0x3001001F
	tagAddressType           = 0x3002001F
	tagEmailAddress          = 0x3003001F
	tagCreationTime          = 0x30070040
	tagLastModificationTime  = 0x30080040
	tagSearchKey             = 0x300B0102
	tagChangeKey             = 0x30130102
	tagValidFolderMask       = 0x35DF0003
	tagIPMSubtreeEntryID     = 0x35E00102
	tagIPMWastebasketEntryID = 0x35E30102
	tagFinderEntryID         = 0x35E70102
	tagContentCount          = 0x36020003
	tagContentUnreadCount    = 0x36030003
	tagSubfolders            = 0x360A000B
	tagContainerClass        = 0x3613001F
	tagAttachDataBinary      = 0x37010102
	tagAttachDataObject      = 0x3701000D
	tagAttachFilename        = 0x3704001F
	tagAttachMethod          = 0x37050003
	tagAttachLongFilename    = 0x3707001F
	tagRenderingPosition     = 0x370B0003
	tagAttachMimeTag         = 0x370E001F
	tagAttachContentID       = 0x3712001F
	tagDisplayType           = 0x39000003
	tagSMTPAddress           = 0x39FE001F
	tag7BitDisplayName       = 0x39FF001F
	tagSendRichInfo          = 0x3A40000B
	tagInternetCodepage      = 0x3FDE0003
	tagSenderSMTPAddress     = 0x5D01001F
	tagSentReprSMTPAddress   = 0x5D02001F
	tagSecureSubmitFlags     = 0x65C60003
	tagPstHiddenCount        = 0x66350003
	tagPstHiddenUnread       = 0x66360003
	tagLtpParentNid          = 0x67F10003
	tagPstPassword           = 0x67FF0003
	tagNameidBucketCount     = 0x00010003
	tagNameidStreamGUID      = 0x00020102
	tagNameidStreamEntry     = 0x00030102
	tagNameidStreamString    = 0x00040102
)

// Template column sets (2.4.4.4.1, 2.4.4.5.1, 2.4.4.6.1, 2.4.8.6.2.1,
// 2.4.5.3.1, 2.4.6.1.1), the same columns as the templates of the
// Outlook-made empty PST in the test corpus (read back by
// TestCheckerContentOnOutlookFiles). Row ID and version are added by the TC
// builder. Recipient tables carry PidTagSmtpAddress as an extra column.
var (
	hierarchyCols = []uint32{tagReplItemID, tagReplChangenum, tagReplVersionHistory, tagReplFlags,
		tagDisplayName, tagContentCount, tagContentUnreadCount, tagSubfolders, tagContainerClass,
		tagPstHiddenCount, tagPstHiddenUnread}
	contentsCols = []uint32{tagImportance, tagMessageClass, tagSensitivity, tagSubject, tagClientSubmitTime,
		tagSentReprName, tagMessageToMe, tagMessageCcMe, tagConversationTopic, tagConversationIndex,
		tagDisplayCc, tagDisplayTo, tagDeliveryTime, tagMessageFlags, tagMessageSize, tagMessageStatus,
		tagReplItemID, tagReplChangenum, tagReplVersionHistory, tagReplFlags, tagReplCopiedVersion,
		tagReplCopiedItemID, tagItemTemporaryFlags, tagLastModificationTime, tagChangeKey, tagSecureSubmitFlags}
	faiCols = []uint32{tagMessageClass, tagMessageFlags, tagMessageStatus, tagDisplayName,
		0x6800001F, 0x6803000B, 0x68051003, 0x682F001F, // further columns of Outlook's FAI template
		0x70030003, 0x70040102, 0x70050102, 0x7006001F, 0x70070003}
	searchCols = []uint32{tagImportance, tagMessageClass, tagSensitivity, tagSubject, tagSentReprName,
		tagMessageToMe, tagMessageCcMe, tagDisplayCc, tagDisplayTo, 0x0E05001F, /* PidTagParentDisplay */
		tagDeliveryTime, tagMessageFlags, tagMessageSize, tagMessageStatus, 0x0E2A000B, /* PidTagExchangeRemoteHeader */
		tagLastModificationTime, tagLtpParentNid}
	recipCols = []uint32{tagRecipientType, tagResponsibility, tagRecordKey, tagObjectType, tagEntryID,
		tagDisplayName, tagAddressType, tagEmailAddress, tagSearchKey, tagDisplayType, tag7BitDisplayName,
		tagSendRichInfo, tagSMTPAddress}
	attachCols = []uint32{tagAttachSize, tagAttachFilename, tagAttachMethod, tagRenderingPosition}
)

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func filetime(t time.Time) []byte {
	ft := uint64(t.UnixNano()/100 + 116444736000000000)
	if t.IsZero() || t.Before(time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC)) {
		ft = 0
	}
	return binary.LittleEndian.AppendUint64(nil, ft)
}

func pInt(tag uint32, v int32) prop {
	return prop{tag, binary.LittleEndian.AppendUint32(nil, uint32(v))}
}
func pStr(tag uint32, s string) prop { return prop{tag, utf16le(s)} }
func pBin(tag uint32, b []byte) prop { return prop{tag, b} }
func pTime(tag uint32, t time.Time) prop {
	return prop{tag, filetime(t)}
}
func pBool(tag uint32, v bool) prop {
	if v {
		return prop{tag, []byte{1}}
	}
	return prop{tag, []byte{0}}
}

// props accumulates properties, leaving out empty strings.
type props []prop

func (p *props) str(tag uint32, s string) {
	if s != "" {
		*p = append(*p, pStr(tag, s))
	}
}
func (p *props) add(pp ...prop) { *p = append(*p, pp...) }

func (p props) pick(tags []uint32) []prop {
	var out []prop
	for _, v := range p {
		if slices.Contains(tags, v.tag) {
			out = append(out, v)
		}
	}
	return out
}

// storeEntryID builds an EntryID (2.4.3.2) for nid in this store.
func (w *Writer) storeEntryID(nid uint32) []byte {
	b := make([]byte, 24)
	copy(b[4:20], w.uid[:])
	binary.LittleEndian.PutUint32(b[20:], nid)
	return b
}

// oneOffEntryID builds a one-off EntryID ([MS-OXCDATA] 2.2.5.1) for an SMTP
// address.
func oneOffEntryID(name, email string) []byte {
	b := []byte{0, 0, 0, 0, 0x81, 0x2B, 0x1F, 0xA4, 0xBE, 0xA3, 0x10, 0x19, 0x9D, 0x6E, 0x00, 0xDD, 0x01, 0x0F, 0x54, 0x02}
	b = append(b, 0, 0)       // version
	b = append(b, 0x01, 0x80) // flags: MAPI_ONE_OFF_UNICODE | MAPI_ONE_OFF_NO_RICH_INFO
	for _, s := range []string{name, "SMTP", email} {
		b = append(b, utf16le(s)...)
		b = append(b, 0, 0)
	}
	return b
}

type recip struct {
	address
	kind int32 // 1 To, 2 Cc, 3 Bcc
}

// recipients merges header recipients with the envelope's.
func recipients(m *mailMsg, env *sealmail.Envelope) []recip {
	var out []recip
	seen := map[string]bool{}
	add := func(a address, kind int32) {
		k := strings.ToLower(strings.TrimSpace(a.email))
		if k == "" && a.name == "" {
			return
		}
		if k != "" {
			if seen[k] {
				return
			}
			seen[k] = true
		}
		out = append(out, recip{a, kind})
	}
	for _, l := range []struct {
		as   []address
		kind int32
	}{{m.to, 1}, {m.cc, 2}, {m.bcc, 3}} {
		for _, a := range l.as {
			add(a, l.kind)
		}
	}
	if env != nil {
		for _, r := range env.Recipients {
			kind := int32(3)
			switch r.Kind {
			case sealmail.RcptTo:
				kind = 1
			case sealmail.RcptCc:
				kind = 2
			}
			add(address{email: r.Address}, kind)
		}
	}
	return out
}

func displayList(rs []recip, kind int32) string {
	var names []string
	for _, r := range rs {
		if r.kind == kind {
			n := r.name
			if n == "" {
				n = r.email
			}
			names = append(names, n)
		}
	}
	return strings.Join(names, "; ")
}

// normalizeSubject strips a leading reply/forward prefix (2.5.3.1.1 in spirit).
func normalizeSubject(s string) string {
	if i := strings.Index(s, ":"); i > 0 && i <= 4 && !strings.ContainsAny(s[:i], " \t") {
		return strings.TrimSpace(s[i+1:])
	}
	return s
}

// builtMsg is a message written to the NDB: its PC and subnode tree, and the
// properties that the folder contents table copies.
type builtMsg struct {
	bidData, bidSub uint64
	props           props
	size            int64
}

// buildPCSized builds a PC whose sizeTag property holds the object's size:
// the bytes already written for its subnodes plus its own heap.
func (w *Writer) buildPCSized(pp props, sizeTag uint32, subs *subAlloc, subBytes int64) ([][]byte, int64, props, error) {
	dry := &subAlloc{d: subs.d, next: subs.next, dry: true}
	trial := append(slices.Clone(pp), pInt(sizeTag, 0))
	chunks, err := buildPC(trial, dry)
	if err != nil {
		return nil, 0, nil, err
	}
	size := subBytes + dry.dryBytes
	for _, c := range chunks {
		size += int64(len(c))
	}
	pp = append(pp, pInt(sizeTag, int32(min(size, 0x7FFFFFFF))))
	chunks, err = buildPC(pp, subs)
	return chunks, size, pp, err
}

// buildMessage writes the subnodes and PC of one message (2.4.5) and
// returns where they are.
func (w *Writer) buildMessage(m *mailMsg, env *sealmail.Envelope, depth int) (builtMsg, error) {
	d := w.d
	start := d.dataBytes
	subs := newSubAlloc(d)
	rs := recipients(m, env)

	// recipient table (always present, 2.7.1 note 10)
	var rrows []tcRow
	for i, r := range rs {
		var p props
		p.add(pInt(tagRecipientType, r.kind), pBool(tagResponsibility, true), pInt(tagObjectType, 6),
			pInt(tagDisplayType, 0), pBool(tagSendRichInfo, false))
		name := r.name
		if name == "" {
			name = r.email
		}
		p.str(tagDisplayName, name)
		p.str(tag7BitDisplayName, name)
		if r.email != "" {
			p.str(tagAddressType, "SMTP")
			p.str(tagEmailAddress, r.email)
			p.str(tagSMTPAddress, r.email)
			p.add(pBin(tagSearchKey, append([]byte("SMTP:"+strings.ToUpper(r.email)), 0)))
			p.add(pBin(tagEntryID, oneOffEntryID(name, r.email)))
			p.add(pBin(tagRecordKey, oneOffEntryID(name, r.email)))
		}
		rrows = append(rrows, tcRow{id: uint32(i), vals: p})
	}
	tsubs := newSubAlloc(d)
	chunks, err := buildTC(recipCols, rrows, tsubs)
	if err != nil {
		return builtMsg{}, fmt.Errorf("recipient table: %w", err)
	}
	if err := w.addSubnode(subs, nidRecipTable, chunks, tsubs); err != nil {
		return builtMsg{}, err
	}

	// attachments
	var arows []tcRow
	for i, a := range m.atts {
		anid := subs.nid(nidTypeAttachment)
		asubs := newSubAlloc(d)
		astart := d.dataBytes
		var p props
		name := a.filename
		p.str(tagAttachLongFilename, name)
		p.str(tagAttachFilename, shortName(name))
		p.str(tagDisplayName, name)
		p.str(tagAttachMimeTag, a.mimeType)
		p.str(tagAttachContentID, a.contentID)
		p.add(pInt(tagRenderingPosition, -1), pInt(tagObjectType, 7), pInt(tagAttachNumber, int32(i)))
		if a.msg != nil {
			em, err := w.buildMessage(a.msg, nil, depth+1)
			if err != nil {
				return builtMsg{}, fmt.Errorf("attached message %d: %w", i, err)
			}
			enid := asubs.nid(nidTypeNormalMessage)
			asubs.subs = append(asubs.subs, subnode{nid: enid, bidData: em.bidData, bidSub: em.bidSub})
			obj := binary.LittleEndian.AppendUint32(nil, enid)
			obj = binary.LittleEndian.AppendUint32(obj, uint32(min(em.size, 0x7FFFFFFF)))
			p.add(pInt(tagAttachMethod, 5), prop{tagAttachDataObject, obj})
			if a.mimeType == "" {
				p.str(tagAttachMimeTag, "message/rfc822")
			}
		} else {
			p.add(pInt(tagAttachMethod, 1), pBin(tagAttachDataBinary, a.data))
		}
		achunks, _, ap, err := w.buildPCSized(p, tagAttachSize, asubs, d.dataBytes-astart)
		if err != nil {
			return builtMsg{}, fmt.Errorf("attachment %d: %w", i, err)
		}
		if err := w.addSubnode(subs, anid, achunks, asubs); err != nil {
			return builtMsg{}, err
		}
		arows = append(arows, tcRow{id: anid, vals: ap.pick(attachCols)})
	}
	if len(m.atts) > 0 {
		asubs := newSubAlloc(d)
		chunks, err := buildTC(attachCols, arows, asubs)
		if err != nil {
			return builtMsg{}, fmt.Errorf("attachment table: %w", err)
		}
		if err := w.addSubnode(subs, nidAttachTable, chunks, asubs); err != nil {
			return builtMsg{}, err
		}
	}

	// the message PC
	var p props
	now := w.now
	date := m.date
	if date.IsZero() {
		date = now
	}
	received := date
	if env != nil && !env.Received.IsZero() {
		received = env.Received
	}
	flags := int32(0x01) // mfRead
	if len(m.atts) > 0 {
		flags |= 0x10 // mfHasAttach
	}
	p.add(pInt(tagImportance, 1), pInt(tagSensitivity, 0), pInt(tagMessageFlags, flags),
		pInt(tagMessageStatus, 0), pTime(tagCreationTime, now), pTime(tagLastModificationTime, now),
		pTime(tagClientSubmitTime, date), pTime(tagDeliveryTime, received),
		pBool(tagHasAttachments, len(m.atts) > 0), pBool(tagMessageToMe, false), pBool(tagMessageCcMe, false))
	p.str(tagMessageClass, "IPM.Note")
	subject := strings.TrimLeft(m.subject, "\x01")
	// Outlook stores subjects behind the 2.5.3.1.1 prefix marker: 0x0001,
	// then the prefix length + 1 (1: no prefix split off), as in the
	// corpus's Outlook-written sample. Readers strip the two characters.
	p.add(pStr(tagSubject, "\x01\x01"+subject))
	p.str(tagNormalizedSubject, normalizeSubject(subject))
	p.str(tagConversationTopic, normalizeSubject(subject))
	key := md5.Sum([]byte(m.messageID + "\x00" + m.rawHeaders))
	p.add(pBin(tagSearchKey, key[:]))
	p.str(tagBody, m.text)
	if m.html != nil {
		p.add(pBin(tagHTML, m.html), pInt(tagInternetCodepage, 65001))
	}
	p.str(tagTransportHeaders, m.rawHeaders)
	p.str(tagInternetMessageID, m.messageID)
	p.str(tagInReplyTo, m.inReplyTo)
	p.str(tagInternetReferences, m.references)
	from := m.from
	if from == nil && env != nil && env.Sender != "" {
		from = &address{email: env.Sender}
	}
	sender := m.sender
	if sender == nil {
		sender = from
	}
	setAddr := func(a *address, nameTag, emailTag, typeTag, smtpTag, eidTag uint32) {
		if a == nil {
			return
		}
		name := a.name
		if name == "" {
			name = a.email
		}
		p.str(nameTag, name)
		if a.email != "" {
			p.str(emailTag, a.email)
			p.str(typeTag, "SMTP")
			p.str(smtpTag, a.email)
			p.add(pBin(eidTag, oneOffEntryID(name, a.email)))
		}
	}
	setAddr(sender, tagSenderName, tagSenderEmail, tagSenderAddrType, tagSenderSMTPAddress, tagSenderEntryID)
	setAddr(from, tagSentReprName, tagSentReprEmail, tagSentReprAddrType, tagSentReprSMTPAddress, tagSentReprEntryID)
	p.str(tagDisplayTo, displayList(rs, 1))
	p.str(tagDisplayCc, displayList(rs, 2))
	p.str(tagDisplayBcc, displayList(rs, 3))

	mchunks, size, pp, err := w.buildPCSized(p, tagMessageSize, subs, d.dataBytes-start)
	if err != nil {
		return builtMsg{}, fmt.Errorf("message properties: %w", err)
	}
	bidData, err := d.writeChunks(mchunks)
	if err != nil {
		return builtMsg{}, err
	}
	bidSub, err := d.writeSubnodes(subs.subs)
	if err != nil {
		return builtMsg{}, err
	}
	return builtMsg{bidData: bidData, bidSub: bidSub, props: pp, size: size}, nil
}

// addSubnode writes a node's heap and its own subnode tree and records it as
// subnode nid of parent.
func (w *Writer) addSubnode(parent *subAlloc, nid uint32, chunks [][]byte, own *subAlloc) error {
	bid, err := w.d.writeChunks(chunks)
	if err != nil {
		return fmt.Errorf("subnode %#x: %w", nid, err)
	}
	sub, err := w.d.writeSubnodes(own.subs)
	if err != nil {
		return fmt.Errorf("subnode %#x tree: %w", nid, err)
	}
	parent.subs = append(parent.subs, subnode{nid: nid, bidData: bid, bidSub: sub})
	return nil
}

// shortName gives an 8.3-style name for PidTagAttachFilename.
func shortName(name string) string {
	base, ext := name, ""
	if i := strings.LastIndex(name, "."); i > 0 {
		base, ext = name[:i], name[i:]
	}
	r := []rune(base)
	if len(r) > 8 {
		base = string(r[:6]) + "~1"
	}
	if e := []rune(ext); len(e) > 4 {
		ext = string(e[:4])
	}
	return base + ext
}

// folder is a normal folder (or the root), written at close.
type folder struct {
	nid      uint32
	parent   uint32
	name     string
	class    string
	children []uint32
	rows     []spoolRef // contents table rows, spooled
	count    int        // messages in the folder
	unread   int
	search   bool
}

func (f *folder) hierarchyProps() props {
	var p props
	p.add(pStr(tagDisplayName, f.name), pInt(tagContentCount, int32(f.count)),
		pInt(tagContentUnreadCount, int32(f.unread)), pBool(tagSubfolders, len(f.children) > 0))
	p.str(tagContainerClass, f.class)
	return p
}

// writeTable writes a TC as a top-level node.
func (w *Writer) writeTable(nid uint32, cols []uint32, rows []tcRow, parent uint32) error {
	subs := newSubAlloc(w.d)
	chunks, err := buildTC(cols, rows, subs)
	if err != nil {
		return fmt.Errorf("table %#x: %w", nid, err)
	}
	return w.writeNode(nid, chunks, subs, parent)
}

func (w *Writer) writeNode(nid uint32, chunks [][]byte, subs *subAlloc, parent uint32) error {
	bid, err := w.d.writeChunks(chunks)
	if err != nil {
		return fmt.Errorf("node %#x: %w", nid, err)
	}
	sub, err := w.d.writeSubnodes(subs.subs)
	if err != nil {
		return fmt.Errorf("node %#x subnodes: %w", nid, err)
	}
	w.d.addNode(nid, bid, sub, parent)
	return nil
}

func (w *Writer) writePC(nid uint32, p props, parent uint32) error {
	subs := newSubAlloc(w.d)
	chunks, err := buildPC(p, subs)
	if err != nil {
		return fmt.Errorf("node %#x: %w", nid, err)
	}
	return w.writeNode(nid, chunks, subs, parent)
}

// writeStore writes the mandatory store nodes (2.7.1) and every folder.
func (w *Writer) writeStore() error {
	var p props
	p.add(pBin(tagRecordKey, w.uid[:]), pStr(tagDisplayName, w.opts.DisplayName),
		pBin(tagIPMSubtreeEntryID, w.storeEntryID(nidIPMSubtree)),
		pBin(tagIPMWastebasketEntryID, w.storeEntryID(nidDeletedItems)),
		pBin(tagFinderEntryID, w.storeEntryID(nidSearchRoot)),
		pInt(tagValidFolderMask, 0x89), // subtree | wastebasket | finder
		pInt(tagPstPassword, 0))
	if err := w.writePC(nidMessageStore, p, 0); err != nil {
		return err
	}
	// name-to-ID map (2.4.7): no named properties are used.
	if err := w.writePC(nidNameToIDMap, nameToIDMap(), 0); err != nil {
		return err
	}
	// search management queue (empty) and search activity list (the spam folder)
	w.d.addNode(nidSMQ, 0, 0, 0)
	salBID, err := w.d.writeBlock(binary.LittleEndian.AppendUint32(nil, nidSpamFolder), false)
	if err != nil {
		return err
	}
	w.d.addNode(nidSAL, salBID, 0, 0)
	for _, t := range []struct {
		nid  uint32
		cols []uint32
	}{{nidHierTemplate, hierarchyCols}, {nidContTemplate, contentsCols}, {nidFAITemplate, faiCols},
		{nidSearchTemplate, searchCols}, {nidAttachTable, attachCols}, {nidRecipTable, recipCols}} {
		if err := w.writeTable(t.nid, t.cols, nil, 0); err != nil {
			return err
		}
	}
	// spam search folder (2.7.3.4.4)
	spam := w.folders[nidSpamFolder]
	if err := w.writePC(nidSpamFolder, spam.hierarchyProps(), nidRootFolder); err != nil {
		return err
	}
	if err := w.writeTable(nidSpamContents, searchCols, nil, 0); err != nil {
		return err
	}
	for _, nid := range w.order {
		f := w.folders[nid]
		if f.search {
			continue
		}
		if err := w.writePC(nid, f.hierarchyProps(), f.parent); err != nil {
			return err
		}
		var hrows []tcRow
		for _, c := range f.children {
			hrows = append(hrows, tcRow{id: c, vals: w.folders[c].hierarchyProps()})
		}
		slices.SortFunc(hrows, func(a, b tcRow) int { return int(int64(a.id) - int64(b.id)) })
		idx := nid >> 5
		if err := w.writeTable(makeNID(idx, nidTypeHierarchy), hierarchyCols, hrows, 0); err != nil {
			return err
		}
		rows := make([]tcRow, 0, len(f.rows))
		for _, ref := range f.rows {
			r, err := w.spool.get(ref)
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
		if err := w.writeTable(makeNID(idx, nidTypeContents), contentsCols, rows, 0); err != nil {
			return err
		}
		f.rows = nil
		if err := w.writeTable(makeNID(idx, nidTypeAssocContents), faiCols, nil, 0); err != nil {
			return err
		}
	}
	return nil
}

// nameToIDMap builds the name-to-ID map PC (2.4.7). The writer uses no named
// properties, but libpff refuses a map without entries, so the map holds
// one well-known entry: PidLidSmartNoAttach (PSETID_Common, LID 0x8514)
// mapped to property ID 0x8000, with its hash bucket (2.4.7.5).
func nameToIDMap() props {
	const buckets = 251
	psetidCommon := []byte{0x08, 0x20, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46}
	const lid, guidField = 0x8514, 3 << 1 // wGuid 3 = first GUID of the stream, N = 0 (numeric)
	entry := binary.LittleEndian.AppendUint32(nil, lid)
	entry = binary.LittleEndian.AppendUint16(entry, guidField)
	entry = binary.LittleEndian.AppendUint16(entry, 0) // wPropIdx: property ID 0x8000
	bucket := uint32(0x1000 + (lid^guidField)%buckets)
	return props{pInt(tagNameidBucketCount, buckets), pBin(tagNameidStreamGUID, psetidCommon),
		pBin(tagNameidStreamEntry, entry), pBin(tagNameidStreamString, []byte{0, 0, 0, 0}),
		pBin(bucket<<16|ptBinary, entry)}
}

// maxAttachment is the largest attachment whose object size still fits
// PidTagAttachSize (PtypInteger32) with room for its properties.
const maxAttachment = 0x7FFFFFFF - 0x10000

// checkSizes rejects a message that a PST cannot hold, before anything is
// written for it.
func checkSizes(m *mailMsg, depth int) error {
	if depth > maxNesting+1 {
		return nil
	}
	for _, a := range m.atts {
		if len(a.data) > maxAttachment {
			return fmt.Errorf("attachment %q of %d bytes: %w", a.filename, len(a.data), ErrTooLarge)
		}
		if a.msg != nil {
			if err := checkSizes(a.msg, depth+1); err != nil {
				return err
			}
		}
	}
	if len(m.text)*2 > maxAttachment || len(m.html) > maxAttachment || len(m.rawHeaders)*2 > maxAttachment {
		return fmt.Errorf("message body of %d bytes: %w", len(m.text)+len(m.html), ErrTooLarge)
	}
	return nil
}
