// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealmail/sealmail"
)

const journalCorpus = "../../../shared/corpus/journal"

type journalSample struct {
	File         string `json:"file"`
	Kind         string `json:"kind"`
	Sender       string `json:"sender"`
	OnBehalfOf   string `json:"on_behalf_of"`
	ReportReturn string `json:"report_return_path"`
	Recipients   []struct {
		Address       string `json:"address"`
		Field         string `json:"field"`
		ExpandedFrom  string `json:"expanded_from"`
		ForwardedFrom string `json:"forwarded_from"`
	} `json:"recipients"`
	Original struct {
		Length int    `json:"length"`
		SHA256 string `json:"sha256"`
	} `json:"original"`
}

// TestJournalCorpusOverSMTP sends every journal sample of the shared corpus
// over SMTP from a journaling source (loopback, the default) and checks the
// stored envelope and original against the sample's expected.json.
func TestJournalCorpusOverSMTP(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	d := startDaemon(t, dir)
	kinds := map[string]sealmail.RcptKind{"To": sealmail.RcptTo, "Cc": sealmail.RcptCc, "Bcc": sealmail.RcptBcc, "Recipient": sealmail.RcptUnknown}
	n := 0
	for _, sub := range []string{"synthetic", "real/integraldefense-ace"} {
		var exp struct{ Samples []journalSample }
		b, err := os.ReadFile(filepath.Join(journalCorpus, sub, "expected.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &exp); err != nil {
			t.Fatal(err)
		}
		for i, s := range exp.Samples {
			data, err := os.ReadFile(filepath.Join(journalCorpus, sub, s.File))
			if err != nil {
				t.Fatal(err)
			}
			n++
			// LF-only files (the real samples) go by BDAT, which carries
			// bytes without an end marker; the others alternate.
			bdat := !bytes.Contains(data, []byte("\r\n")) || i%2 == 0
			c, err := dialSMTP(d.addr, true)
			if err != nil {
				t.Fatal(err)
			}
			code, reply, err := c.send("journal@contoso.com", []string{"archive@sealmail.test"}, data, bdat)
			c.close()
			if err != nil || code != 250 {
				t.Errorf("%s: %d %s %v", s.File, code, reply, err)
				continue
			}
			id, _ := queuedID(reply)

			orig, errOut, code := cli(t, nil, "get", fmt.Sprint(id), "--data", dir, "--identity", identity)
			if code != 0 {
				t.Errorf("%s: get: %s", s.File, errOut)
				continue
			}
			want := s.Original.SHA256
			if s.Kind == "malformed-journal-report" || s.Kind == "not-journal" {
				// Not understood as a report: the whole DATA is the original.
				sum := sha256.Sum256(data)
				want = hex.EncodeToString(sum[:])
			}
			if sum := sha256.Sum256(orig); hex.EncodeToString(sum[:]) != want {
				t.Errorf("%s: stored original SHA-256 %x (%d bytes), want %s (%d bytes)", s.File, sum, len(orig), want, s.Original.Length)
			}

			out, _, _ := cli(t, nil, "get", fmt.Sprint(id), "--envelope", "--data", dir, "--identity", identity)
			var envs []sealmail.Envelope
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				var e sealmail.Envelope
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("%s: envelope line %q: %v", s.File, line, err)
				}
				envs = append(envs, e)
			}
			e := envs[len(envs)-1] // bifurcated reports add a receipt to the same original
			if s.Kind != "journal-report" && s.Kind != "journal-ndr" {
				if e.Source != sealmail.SourceSMTPEnvelope {
					t.Errorf("%s (%s): source %q, want smtp-envelope", s.File, s.Kind, e.Source)
				}
				continue
			}
			if e.Source != sealmail.SourceExchangeReport || !strings.EqualFold(e.Sender, s.Sender) || !strings.EqualFold(e.OnBehalfOf, s.OnBehalfOf) {
				t.Errorf("%s: envelope source %q sender %q on-behalf-of %q, want exchange-report %q %q", s.File, e.Source, e.Sender, e.OnBehalfOf, s.Sender, s.OnBehalfOf)
			}
			if e.ReportMessageID == "" {
				t.Errorf("%s: no report Message-Id recorded", s.File)
			}
			if len(e.Recipients) != len(s.Recipients) {
				t.Errorf("%s: %d recipients, want %d: %+v", s.File, len(e.Recipients), len(s.Recipients), e.Recipients)
				continue
			}
			for j, r := range s.Recipients {
				g := e.Recipients[j]
				if !strings.EqualFold(g.Address, r.Address) || g.Kind != kinds[r.Field] ||
					!strings.EqualFold(g.ExpandedFrom, r.ExpandedFrom) || !strings.EqualFold(g.ForwardedFrom, r.ForwardedFrom) {
					t.Errorf("%s: recipient %d = %+v, want %+v", s.File, j, g, r)
				}
			}
			report, _, code := cli(t, nil, "get", fmt.Sprint(id), "--report", "--data", dir, "--identity", identity)
			if code != 0 || !bytes.Equal(report, data) && len(envs) == 1 {
				t.Errorf("%s: get --report: exit %d, %d bytes, want the %d bytes received", s.File, code, len(report), len(data))
			}
		}
	}
	if n < 23 {
		t.Errorf("%d journal samples tested, want all 23", n)
	}
}

// TestUntrustedJournalReport sends a report from a client that is not a
// journaling source: it is archived whole, and its envelope claim is only
// labelled evidence.
func TestUntrustedJournalReport(t *testing.T) {
	t.Parallel()
	dir, identity := initArchive(t)
	d := startDaemon(t, dir, "--journal-sources", "192.0.2.0/24")
	data, err := os.ReadFile(filepath.Join(journalCorpus, "synthetic", "03-bcc-recipients.eml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := dialSMTP(d.addr, true)
	if err != nil {
		t.Fatal(err)
	}
	code, reply, _ := c.send("mallory@example.net", []string{"archive@sealmail.test"}, data, true)
	c.close()
	if code != 250 {
		t.Fatalf("send: %d %s", code, reply)
	}
	id, _ := queuedID(reply)
	orig, _, _ := cli(t, nil, "get", fmt.Sprint(id), "--data", dir, "--identity", identity)
	if !bytes.Equal(orig, data) {
		t.Errorf("untrusted report: stored original is %d bytes, want the whole %d bytes of DATA", len(orig), len(data))
	}
	out, _, _ := cli(t, nil, "get", fmt.Sprint(id), "--envelope", "--data", dir, "--identity", identity)
	var e sealmail.Envelope
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatal(err)
	}
	if e.Source != sealmail.SourceSMTPEnvelope || e.Sender != "mallory@example.net" || e.Untrusted == nil || len(e.Untrusted.Recipients) == 0 {
		t.Errorf("untrusted report envelope = %s", out)
	}
}
