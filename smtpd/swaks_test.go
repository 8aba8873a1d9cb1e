// SPDX-License-Identifier: Apache-2.0

package smtpd

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSwaks sends one message with swaks (Debian package swaks) using
// STARTTLS and AUTH PLAIN, as an MTA that is not ours would.
func TestSwaks(t *testing.T) {
	t.Parallel()
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("swaks not installed (apt-get install swaks): %v", err)
		}
		t.Skip("swaks not installed (apt-get install swaks); set CI to make this fatal")
	}
	srvTLS, _ := testTLS(t)
	ing := &memIngester{}
	var authed []string
	_, addr := startServer(t, ing, Options{
		TLSConfig:   srvTLS,
		RequireTLS:  true,
		RequireAuth: true,
		Auth:        map[string]Credential{"journal": CredentialFunc(func(p string) bool { return p == "pa55 word" })},
		OnAuth: func(user, _ string, ok bool) {
			if ok {
				authed = append(authed, user)
			}
		},
	}, false)
	host, port, _ := net.SplitHostPort(addr)

	content := "From: Sender <s@example.org>\r\nTo: journal@archive.test\r\nSubject: swaks =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <swaks-1@example.org>\r\n\r\nbody\r\n.dot line\r\n8bit: Grüße\r\n"
	file := filepath.Join(t.TempDir(), "msg.eml")
	// swaks sends the file, then CRLF.CRLF: the file lacks the final CRLF
	// that the message has.
	if err := os.WriteFile(file, []byte(strings.TrimSuffix(content, "\r\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(swaks,
		"--server", host, "--port", port,
		"--tls", "--auth", "PLAIN", "--auth-user", "journal", "--auth-password", "pa55 word",
		"--helo", "swaks.test", "--from", "s@example.org", "--to", "journal@archive.test",
		"--data", "@"+file)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "250 2.0.0 Ok: queued as 1") {
		t.Errorf("swaks transcript lacks the 250 with the id:\n%s", out)
	}
	msgs := ing.messages()
	if len(msgs) != 1 {
		t.Fatalf("ingested %d messages, want 1\n%s", len(msgs), out)
	}
	m := msgs[0]
	if string(m.data) != content {
		t.Errorf("swaks message ingested as %q, want %q", m.data, content)
	}
	if m.env.TLS == "" || m.env.AuthUser != "journal" || m.env.HELO != "swaks.test" || m.env.MailFrom != "s@example.org" || strings.Join(m.env.RcptTo, ",") != "journal@archive.test" {
		t.Errorf("envelope = %+v", *m.env)
	}
	if strings.Join(authed, ",") != "journal" {
		t.Errorf("OnAuth successes = %q, want [journal]", authed)
	}
}
