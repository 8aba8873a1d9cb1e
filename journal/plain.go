// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"net/mail"
	"strings"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/mimepart"
)

// plainEnvelope builds the envelope of a message that is not a journal
// report: the SMTP envelope it arrived with. For a trusted journaling source
// the addresses of the top-level X-Original-To and Delivered-To headers are
// added as RcptUnknown recipients (research §2.1: Postfix local(8), virtual(8)
// and pipe(8) flags O/D record the recipient of that delivery there). They are
// added after the RCPT TO addresses, X-Original-To before Delivered-To, each
// in header order, and an address already listed (compared
// case-insensitively) is not repeated. From an untrusted client such headers
// are only the sender's claim and are ignored.
func plainEnvelope(top *mimepart.Part, smtp sealmail.Envelope, opts Options) sealmail.Envelope {
	env := transport(smtp)
	env.Sender = smtp.MailFrom
	env.Recipients = smtpRecipients(smtp.RcptTo, opts)
	if !opts.Trusted {
		return env
	}
	seen := make(map[string]bool, len(env.Recipients))
	for _, r := range env.Recipients {
		seen[strings.ToLower(r.Address)] = true
	}
	for _, name := range []string{"X-Original-To", "Delivered-To"} {
		for _, v := range top.Header.Values(name) {
			for _, a := range headerAddresses(v) {
				k := strings.ToLower(a)
				if seen[k] {
					continue
				}
				seen[k] = true
				env.Recipients = append(env.Recipients, sealmail.Recipient{Address: a, Kind: sealmail.RcptUnknown})
			}
		}
	}
	return env
}

// smtpRecipients turns RCPT TO addresses into RcptUnknown recipients,
// dropping empty and repeated ones (case-insensitive). For a trusted source,
// addresses in the recipient_bcc_maps encoding are decoded first.
func smtpRecipients(rcpt []string, opts Options) []sealmail.Recipient {
	out := make([]sealmail.Recipient, 0, len(rcpt))
	seen := make(map[string]bool, len(rcpt))
	for _, a := range rcpt {
		a = strings.TrimSpace(a)
		if opts.Trusted {
			if d, ok := decodeBCC(a, opts.EncodedRecipientDomains); ok {
				a = d
			}
		}
		k := strings.ToLower(a)
		if a == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, sealmail.Recipient{Address: a, Kind: sealmail.RcptUnknown})
	}
	return out
}

// headerAddresses returns the bare addresses in an X-Original-To or
// Delivered-To value ("a@b", "<a@b>" or an address list).
func headerAddresses(v string) []string {
	if list, err := mail.ParseAddressList(v); err == nil {
		out := make([]string, 0, len(list))
		for _, a := range list {
			out = append(out, a.Address)
		}
		return out
	}
	if a := envAddress(v); strings.Contains(a, "@") && !strings.ContainsAny(a, " \t,") {
		return []string{a}
	}
	return nil
}

// decodeBCC decodes tag+local=domain@archive-domain, archive-domain one of
// domains (case-insensitive), into local@domain. The tag ends at the first
// "+" and the domain starts after the last "=": a domain cannot contain "=",
// and a tag written by the documented map has no "+", so local may contain
// both. Anything else is not decoded.
func decodeBCC(addr string, domains []string) (string, bool) {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || len(domains) == 0 {
		return "", false
	}
	local, dom := addr[:at], addr[at+1:]
	match := false
	for _, d := range domains {
		if strings.EqualFold(strings.TrimSpace(d), dom) {
			match = true
			break
		}
	}
	if !match {
		return "", false
	}
	plus := strings.IndexByte(local, '+')
	eq := strings.LastIndexByte(local, '=')
	if plus < 0 || eq <= plus+1 || eq == len(local)-1 {
		return "", false
	}
	l, d := local[plus+1:eq], local[eq+1:]
	if strings.ContainsAny(d, "@ \t\"<>") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
		return "", false
	}
	return l + "@" + d, true
}
