// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"html"
	"regexp"
	"strings"

	"github.com/sealmail/sealmail"
)

// block is what the envelope block of a journal report says (research doc
// §1.4). Addresses are kept as written apart from the SMTP: type prefix of the
// Exchange 2003 form; [EX:…] and EX:… distinguished names stay verbatim.
type block struct {
	haveSender bool
	sender     string
	onBehalfOf string
	messageID  string
	rcpts      []sealmail.Recipient
	warnings   []string
}

// maxBlockLines bounds the work spent on one candidate envelope part.
const maxBlockLines = 100000

// recipientValue splits the value of a recipient line into the address and
// its one optional annotation. [MS-XJRNL] 2.1.4: recipient-line = p2-type ":"
// SP address [", " ("Expanded" / "Forwarded") ": " address].
var recipientValue = regexp.MustCompile(`(?is)^(.*?)(?:,[ \t]*(expanded|forwarded):[ \t]*(.*?))?[ \t]*$`)

// parseBlock parses the text of a candidate envelope part. Field names are
// matched case-insensitively (the generator writes Message-Id, the docs and
// the 2003 format Message-ID). Continuation lines (leading white space) are
// unfolded: Exchange 2003 writes its Recipients: list that way and may wrap
// Message-ID. Unknown lines are ignored.
func parseBlock(text string) block {
	var b block
	lines := unfoldLines(text)
	for _, l := range lines {
		c := strings.IndexByte(l, ':')
		if c <= 0 {
			continue
		}
		name := strings.ToLower(strings.TrimSpace(l[:c]))
		val := strings.TrimSpace(l[c+1:])
		switch name {
		case "sender":
			if b.haveSender {
				continue
			}
			b.haveSender = true
			// [MS-XJRNL] / JournalReport.WriteTo writes the literal
			// "Unspecified Address" for an empty sender (research §1.4).
			if strings.EqualFold(val, "Unspecified Address") {
				b.warnings = append(b.warnings, "envelope sender is \"Unspecified Address\"")
				continue
			}
			b.sender = envAddress(val)
		case "on-behalf-of":
			if b.onBehalfOf == "" {
				b.onBehalfOf = envAddress(val)
			}
		case "message-id":
			if b.messageID == "" && !strings.EqualFold(val, "Unknown Message-ID") {
				b.messageID = strings.Join(strings.Fields(val), "")
			}
		case "to", "cc", "bcc", "recipient":
			m := recipientValue.FindStringSubmatch(val)
			if m == nil {
				continue
			}
			addr := envAddress(m[1])
			if addr == "" {
				continue // "<>" recipients are dropped (research §1.9)
			}
			r := sealmail.Recipient{Address: addr, Kind: kindOf(name)}
			switch strings.ToLower(m[2]) {
			case "expanded":
				r.ExpandedFrom = envAddress(m[3])
			case "forwarded":
				r.ForwardedFrom = envAddress(m[3])
			}
			b.rcpts = append(b.rcpts, r)
		case "recipients":
			// Exchange 2003: `Recipients:` then one ["Display"] <TYPE:addr>
			// per (folded) line, comma separated (research §1.4).
			for _, a := range list2003(val) {
				if a = envAddress(a); a != "" {
					b.rcpts = append(b.rcpts, sealmail.Recipient{Address: a, Kind: sealmail.RcptUnknown})
				}
			}
		}
	}
	return b
}

func kindOf(field string) sealmail.RcptKind {
	switch field {
	case "to":
		return sealmail.RcptTo
	case "cc":
		return sealmail.RcptCc
	case "bcc":
		return sealmail.RcptBcc
	}
	return sealmail.RcptUnknown
}

// unfoldLines splits text into lines (CRLF or LF) and joins continuation
// lines to the line before them with a single space.
func unfoldLines(text string) []string {
	raw := strings.Split(text, "\n")
	if len(raw) > maxBlockLines {
		raw = raw[:maxBlockLines]
	}
	var out []string
	for _, l := range raw {
		l = strings.TrimRight(l, "\r")
		if l != "" && (l[0] == ' ' || l[0] == '\t') && len(out) > 0 && out[len(out)-1] != "" {
			out[len(out)-1] += " " + strings.TrimSpace(l)
			continue
		}
		out = append(out, l)
	}
	return out
}

// envAddress normalises one envelope address: a [EX:…] legacy DN is kept
// verbatim ([MS-XJRNL] 2.1.1); "Name <TYPE:addr>" becomes addr for SMTP and
// TYPE:addr for other address types; "<>" becomes "".
func envAddress(v string) string {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		return v
	}
	if i := strings.LastIndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j >= 0 {
			v = strings.TrimSpace(v[i+1 : i+j])
		}
	}
	if len(v) > 5 && strings.EqualFold(v[:5], "smtp:") {
		v = strings.TrimSpace(v[5:])
	}
	return v
}

// list2003 splits an Exchange 2003 recipient list into its addresses: each
// <…> group when there are any, else the comma-separated items.
func list2003(v string) []string {
	var out []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			break
		}
		out = append(out, v[i:i+j+1])
		v = v[i+j+1:]
	}
	if out != nil {
		return out
	}
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

var (
	htmlBreak = regexp.MustCompile(`(?i)<\s*(br|/p|/div|/tr|/li|p|div|tr|li)\b[^>]*>`)
	htmlTag   = regexp.MustCompile(`<[^>]*>`)
)

// htmlToText turns an HTML envelope part into lines. Microsoft's UnJournal
// agent accepts the envelope in text/html too (research §1.3).
func htmlToText(s string) string {
	s = strings.NewReplacer("\r", "", "\n", " ").Replace(s)
	s = htmlBreak.ReplaceAllString(s, "\n")
	s = htmlTag.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(strings.ReplaceAll(l, "\u00a0", " "))
	}
	return strings.Join(lines, "\n")
}
