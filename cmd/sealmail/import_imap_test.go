// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// dovecot is a Dovecot IMAP server on 127.0.0.1 with one user, its
// configuration and mail in a temporary directory.
type dovecot struct {
	addr, ca, user, password string
	maildir                  string
	start                    func()
	mtime                    time.Time // of every delivered file: Dovecot's internal date
}

// startDovecot runs Debian's dovecot (dovecot-imapd) in the foreground with
// a throwaway configuration: implicit TLS on a free loopback port, one
// passwd-file user whose Maildir the test fills. It is stopped at cleanup,
// and by a two-minute context if the test hangs.
func startDovecot(t *testing.T) *dovecot {
	t.Helper()
	bin := needTool(t, "dovecot", "dovecot-imapd")
	if os.Getuid() != 0 {
		t.Skip("dovecot needs root to drop to its service users")
	}
	dir, err := os.MkdirTemp("", "sealmail-dovecot")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Dovecot's unprivileged processes (dovenull, the mail user) must
	// reach the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &dovecot{user: "alice", password: "imap-test-pass", ca: filepath.Join(dir, "cert.pem"),
		mtime: time.Date(2014, 5, 6, 7, 8, 9, 0, time.UTC)}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(d.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	os.WriteFile(filepath.Join(dir, "passwd"), []byte(d.user+":{PLAIN}"+d.password+"\n"), 0o644)
	home := filepath.Join(dir, "home")
	d.maildir = filepath.Join(home, "Maildir")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = l.Addr().String()
	_, port, _ := net.SplitHostPort(d.addr)
	l.Close()
	conf := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(conf, fmt.Appendf(nil, `base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = /dev/stderr
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <%[1]s/cert.pem
ssl_key = <%[1]s/key.pem
auth_mechanisms = plain
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = scheme=PLAIN %[1]s/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=%[2]s
}
mail_location = maildir:~/Maildir
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %[3]s
    ssl = yes
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
`, dir, home, port), 0o644)
	d.start = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, bin, "-F", "-c", conf)
		var log lockedWriter
		log.w = new(strings.Builder)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
			cancel()
		})
		for i := 0; ; i++ {
			c, err := net.DialTimeout("tcp", d.addr, time.Second)
			if err == nil {
				c.Close()
				return
			}
			select {
			case <-done:
				t.Fatalf("dovecot exited: %s", log.String())
			default:
			}
			if i > 100 {
				t.Fatalf("dovecot does not listen on %s: %s", d.addr, log.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return d
}

// deliver puts a message into a Maildir folder ("" is INBOX) before the
// server starts.
func (d *dovecot) deliver(t *testing.T, folder, name, data string) {
	t.Helper()
	dir := d.maildir
	if folder != "" {
		dir = filepath.Join(dir, "."+folder)
	}
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte(data), 0o644)
	os.Chtimes(p, d.mtime, d.mtime)
}

// chownMail hands the Maildir to the mail user (nobody).
func (d *dovecot) chownMail(t *testing.T) {
	t.Helper()
	filepath.Walk(filepath.Dir(d.maildir), func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			os.Chown(p, 65534, 65534)
		}
		return err
	})
}

// flags returns the flags of every message of a mailbox, by UID.
func (d *dovecot) flags(t *testing.T, mailbox string) map[imap.UID][]imap.Flag {
	t.Helper()
	pool := x509.NewCertPool()
	pemData, _ := os.ReadFile(d.ca)
	pool.AppendCertsFromPEM(pemData)
	c, err := imapclient.DialTLS(d.addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(d.user, d.password).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[imap.UID][]imap.Flag{}
	for _, m := range msgs {
		out[m.UID] = m.Flags
	}
	c.Logout().Wait()
	return out
}

// TestImportIMAP imports every folder of a real Dovecot over implicit TLS,
// read-only: messages byte-exact with their internal dates, a too large one
// refused, the \Seen flags unchanged, a second run adding nothing.
func TestImportIMAP(t *testing.T) {
	t.Parallel()
	d := startDovecot(t)
	inbox := []string{
		"From: a@example.com\r\nSubject: imap one\r\n\r\nunseen\r\n",
		"From: b@example.com\r\nSubject: imap two\r\n\r\nseen\r\n",
		"From: c@example.com\r\nSubject: imap big\r\n\r\n" + strings.Repeat("big\r\n", 1000),
	}
	d.deliver(t, "", "new/1400000000.M1P1.test", inbox[0])
	d.deliver(t, "", "cur/1400000001.M2P2.test:2,S", inbox[1])
	d.deliver(t, "", "cur/1400000002.M3P3.test:2,S", inbox[2])
	archived := "From: d@example.com\r\nSubject: archived\r\n\r\nin a folder\r\n"
	d.deliver(t, "Archive", "cur/1300000000.M4P4.test:2,S", archived)
	d.chownMail(t)
	d.start()
	before := d.flags(t, "INBOX")
	unseen := 0
	for _, f := range before {
		if !slices.Contains(f, imap.FlagSeen) {
			unseen++
		}
	}
	if len(before) != 3 || unseen != 1 {
		t.Fatalf("INBOX flags before the import %v: want 3 messages, 1 unseen", before)
	}

	dir, identity := initArchive(t)
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte(d.password+"\n"), 0o600)
	url := "imaps://" + d.user + "@" + d.addr + "/"
	s := runImportCLI(t, dir, "--imap", url, "--password-file", pwFile, "--imap-ca", d.ca,
		"--owner", "alice@example.com", "--max-message-size", "2K")
	if s.Stored != 3 || s.Refused != 1 || s.Reasons["too large"] != 1 || s.Kind != "imap" {
		t.Fatalf("imap import: %+v", s)
	}
	rows := listAll(t, dir)
	var got []string
	for _, r := range rows {
		b, errOut, code := cli(t, nil, "get", fmt.Sprint(r.ID), "--data", dir, "--identity", identity)
		if code != 0 {
			t.Fatalf("get: %s", errOut)
		}
		got = append(got, string(b))
	}
	want := []string{archived, inbox[0], inbox[1]}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("imported messages differ from the server's:\n got %q\nwant %q", got, want)
	}
	for _, r := range rows {
		if !r.Received.Equal(d.mtime) {
			t.Errorf("message %d received %v, want the internal date %v", r.ID, r.Received, d.mtime)
		}
	}
	after := d.flags(t, "INBOX")
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("flags changed by the import: before %v, after %v", before, after)
	}
	// Password from standard input, one folder; nothing new.
	out, errOut, code := cli(t, []byte(d.password+"\n"), "import", "--json", "--data", dir, "--imap", url+"Archive",
		"--password-file", "-", "--imap-ca", d.ca, "--owner", "alice@example.com")
	if code != 0 || !strings.Contains(string(out), `"skipped": 1`) || !strings.Contains(string(out), `"stored": 0`) {
		t.Errorf("second import of Archive: exit %d %s %s", code, out, errOut)
	}
	s = runImportCLI(t, dir, "--imap", url, "--password-file", pwFile, "--imap-ca", d.ca,
		"--owner", "alice@example.com", "--max-message-size", "2K")
	if s.Stored != 0 || s.Skipped != 3 {
		t.Errorf("second import added something: %+v", s)
	}
	if _, errOut, code := cli(t, []byte("wrong\n"), "import", "--data", dir, "--imap", url, "--password-file", "-", "--imap-ca", d.ca); code == 0 ||
		!strings.Contains(errOut, "login") {
		t.Errorf("wrong password: exit %d: %s", code, errOut)
	}
}
