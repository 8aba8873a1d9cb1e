// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealmail/sealmail"
)

// TestPostfixBCCRecipes runs a private, throw-away Postfix instance and checks
// what docs/journaling.md tells operators: which Postfix archiving recipe
// keeps the true envelope (Bcc recipients included) and what sealmail makes
// of the copy it receives. Three smtpd ports share one instance:
//
//   - recipe "bcc-maps": recipient_bcc_maps maps every recipient r to
//     archive+local=domain@archive.example, relayed by a dedicated "archive"
//     transport; one transaction carries every (encoded) recipient.
//   - recipe "always-bcc": always_bcc = archive@archive.example; the archive
//     gets one RCPT TO, the real recipients are lost.
//   - recipe "split": as bcc-maps, but archive2_destination_recipient_limit=2,
//     so the copy is split over two transactions with identical bytes.
//
// Needs the Debian package postfix and root (Postfix's master runs as root).
func TestPostfixBCCRecipes(t *testing.T) {
	master := "/usr/lib/postfix/sbin/master"
	if _, err := os.Stat(master); err != nil || os.Geteuid() != 0 {
		msg := "needs Postfix (apt-get install postfix) and root"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	sink := startSink(t)
	ports := freePorts(t, 3)
	dir, err := os.MkdirTemp("", "sealmail-journal-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"etc", "spool", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "postfix", filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		t.Fatalf("chown postfix: %v: %s", err, out)
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "etc", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The map of docs/journaling.md, for two archive domains.
	write("archive_bcc", `/^(.+)@(.+)$/ archive+${1}=${2}@archive.example`+"\n")
	write("archive2_bcc", `/^(.+)@(.+)$/ archive+${1}=${2}@archive2.example`+"\n")
	write("main.cf", fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/spool
data_directory = %[1]s/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.example.org
mydomain = example.org
myorigin = example.org
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
smtputf8_enable = no
biff = no
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
# Everything except the archive is thrown away.
default_transport = discard
relay_transport = discard
transport_maps = inline:{ archive.example=archive:[127.0.0.1]:%[2]d, archive2.example=archive2:[127.0.0.1]:%[2]d }
recipient_bcc_maps = regexp:%[1]s/etc/archive_bcc
archive_destination_recipient_limit = 1000
archive2_destination_recipient_limit = 2
`, dir, sink.port))
	write("master.cf", fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
127.0.0.1:%d inet n - n - - smtpd -o cleanup_service_name=cleanup_always
127.0.0.1:%d inet n - n - - smtpd -o cleanup_service_name=cleanup_split
cleanup   unix  n - n - 0 cleanup
cleanup_always unix n - n - 0 cleanup -o recipient_bcc_maps= -o always_bcc=archive@archive.example
cleanup_split unix n - n - 0 cleanup -o recipient_bcc_maps=regexp:%s/etc/archive2_bcc
pickup    unix  n - n 60 1 pickup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
smtp      unix  - - n - - smtp
archive   unix  - - n - - smtp
archive2  unix  - - n - - smtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
`, ports[0], ports[1], ports[2], dir))

	postfix := func(args ...string) {
		t.Helper()
		cmd := exec.Command("/usr/sbin/postfix", append([]string{"-c", filepath.Join(dir, "etc")}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "maillog"))
			t.Fatalf("postfix %v: %v: %s\nmaillog:\n%s", args, err, out, log)
		}
	}
	postfix("start")
	t.Cleanup(func() {
		exec.Command("/usr/sbin/postfix", "-c", filepath.Join(dir, "etc"), "stop").Run()
	})
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "maillog"))
			t.Logf("maillog:\n%s", log)
		}
	})
	for _, p := range ports {
		waitListening(t, p)
	}

	// dave is on To, erin on Cc, frank on Bcc: he is an envelope recipient
	// only.
	msg := func(subject string) []byte {
		return []byte("From: Sue <s@example.org>\r\nTo: dave@example.com\r\nCc: erin@example.com\r\n" +
			"Subject: " + subject + "\r\nMessage-ID: <" + subject + "@example.org>\r\n\r\nhello\r\n")
	}
	rcpts := []string{"dave@example.com", "erin@example.com", "frank@example.com"}
	send := func(t *testing.T, port int, subject string) {
		t.Helper()
		if err := smtp.SendMail(fmt.Sprintf("127.0.0.1:%d", port), nil, "s@example.org", rcpts, msg(subject)); err != nil {
			t.Fatalf("send to Postfix: %v", err)
		}
	}
	opts := Options{Trusted: true, EncodedRecipientDomains: []string{"archive.example", "archive2.example"}}
	unknown := func(addrs ...string) []sealmail.Recipient {
		var out []sealmail.Recipient
		for _, a := range addrs {
			out = append(out, sealmail.Recipient{Address: a, Kind: sealmail.RcptUnknown})
		}
		return out
	}
	sorted := func(rs []sealmail.Recipient) []sealmail.Recipient {
		return slices.SortedFunc(slices.Values(rs), func(a, b sealmail.Recipient) int { return strings.Compare(a.Address, b.Address) })
	}

	t.Run("bcc-maps", func(t *testing.T) {
		send(t, ports[0], "bccmaps")
		txs := sink.wait(t, "bccmaps", 1)
		tx := txs[0]
		if tx.from != "s@example.org" || len(tx.rcpts) != 3 {
			t.Fatalf("archive transaction = MAIL FROM %q RCPT TO %q, want s@example.org and 3 encoded recipients", tx.from, tx.rcpts)
		}
		res := Parse(tx.data, tx.envelope(), opts)
		if got, want := sorted(res.Envelope.Recipients), unknown(rcpts...); !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(bcc-maps copy).Envelope.Recipients = %+v, want %+v (Bcc frank included)", got, want)
		}
		if res.Envelope.Sender != "s@example.org" || res.Kind != KindPlain || !sameSlice(res.Original, tx.data) {
			t.Errorf("Parse(bcc-maps copy) = sender %q kind %q, want s@example.org, plain, whole data", res.Envelope.Sender, res.Kind)
		}
		if bytes.Contains(tx.data, []byte("X-Original-To:")) || bytes.Contains(tx.data, []byte("Delivered-To:")) {
			t.Errorf("smtp(8) delivery added X-Original-To/Delivered-To; docs say it does not")
		}
	})

	t.Run("always-bcc", func(t *testing.T) {
		send(t, ports[1], "alwaysbcc")
		tx := sink.wait(t, "alwaysbcc", 1)[0]
		if !reflect.DeepEqual(tx.rcpts, []string{"archive@archive.example"}) {
			t.Fatalf("always_bcc archive RCPT TO = %q, want only the archive address", tx.rcpts)
		}
		res := Parse(tx.data, tx.envelope(), opts)
		if want := unknown("archive@archive.example"); !reflect.DeepEqual(res.Envelope.Recipients, want) {
			t.Errorf("Parse(always_bcc copy).Envelope.Recipients = %+v, want %+v (true recipients lost)", res.Envelope.Recipients, want)
		}
		if bytes.Contains(tx.data, []byte("frank@")) {
			t.Errorf("always_bcc copy mentions the Bcc recipient; docs say it is lost")
		}
	})

	t.Run("split", func(t *testing.T) {
		send(t, ports[2], "split")
		txs := sink.wait(t, "split", 2)
		if !bytes.Equal(txs[0].data, txs[1].data) {
			t.Fatalf("split deliveries differ in content; docs say they are byte-identical")
		}
		var all []sealmail.Recipient
		for _, tx := range txs {
			if len(tx.rcpts) > 2 {
				t.Errorf("split delivery has %d recipients, want at most 2", len(tx.rcpts))
			}
			all = append(all, Parse(tx.data, tx.envelope(), opts).Envelope.Recipients...)
		}
		if got, want := sorted(all), unknown(rcpts...); !reflect.DeepEqual(got, want) {
			t.Errorf("union of split envelopes = %+v, want %+v", got, want)
		}
	})
}

type sinkTx struct {
	from  string
	rcpts []string
	data  []byte
}

func (tx sinkTx) envelope() sealmail.Envelope {
	return sealmail.Envelope{MailFrom: tx.from, RcptTo: tx.rcpts, ClientIP: "127.0.0.1", Received: time.Now()}
}

// sink is a minimal SMTP server (RFC 5321, no extensions) that records every
// transaction.
type sink struct {
	port int
	mu   sync.Mutex
	txs  []sinkTx
}

func startSink(t *testing.T) *sink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{port: l.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(60 * time.Second))
				s.serve(c)
			}()
		}
	}()
	return s
}

func (s *sink) serve(c net.Conn) {
	r := bufio.NewReader(c)
	reply := func(line string) { fmt.Fprintf(c, "%s\r\n", line) }
	reply("220 sink ESMTP")
	var tx sinkTx
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		arg := func(prefix string) string {
			v := line[min(len(prefix), len(line)):]
			v = strings.TrimSpace(strings.SplitN(v, " ", 2)[0])
			return strings.Trim(v, "<>")
		}
		switch verb {
		case "EHLO", "HELO":
			reply("250 sink")
		case "MAIL":
			tx = sinkTx{from: arg("MAIL FROM:")}
			reply("250 ok")
		case "RCPT":
			tx.rcpts = append(tx.rcpts, arg("RCPT TO:"))
			reply("250 ok")
		case "DATA":
			reply("354 go")
			var data bytes.Buffer
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, ".")) // RFC 5321 §4.5.2
			}
			tx.data = data.Bytes()
			s.mu.Lock()
			s.txs = append(s.txs, tx)
			s.mu.Unlock()
			reply("250 stored")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("250 ok")
		}
	}
}

// wait returns the n transactions whose data contains marker, failing after
// a timeout.
func (s *sink) wait(t *testing.T, marker string, n int) []sinkTx {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		s.mu.Lock()
		var got []sinkTx
		for _, tx := range s.txs {
			if bytes.Contains(tx.data, []byte("Message-ID: <"+marker+"@")) {
				got = append(got, tx)
			}
		}
		s.mu.Unlock()
		if len(got) >= n {
			time.Sleep(300 * time.Millisecond) // catch an unexpected extra copy
			s.mu.Lock()
			defer s.mu.Unlock()
			var final []sinkTx
			for _, tx := range s.txs {
				if bytes.Contains(tx.data, []byte("Message-ID: <"+marker+"@")) {
					final = append(final, tx)
				}
			}
			if len(final) != n {
				t.Fatalf("archive got %d transactions for %s, want %d", len(final), marker, n)
			}
			return final
		}
		if time.Now().After(deadline) {
			t.Fatalf("archive got %d transactions for %s, want %d", len(got), marker, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func waitListening(t *testing.T, port int) {
	t.Helper()
	for range 100 {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("Postfix does not listen on 127.0.0.1:%d", port)
}
