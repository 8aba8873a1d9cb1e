// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/access"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/extract"
)

// Config is the daemon's configuration file (TOML). Flags given to `serve`
// override it. Every field's zero value means "the default" documented in
// packaging/sealmail.toml. Sizes, durations and networks are parsed while
// the file is decoded (their UnmarshalText), so that a bad value is
// reported once, with its line and column; [Config.Validate] then checks
// what a single value cannot show.
type Config struct {
	SMTP    SMTPConfig    `toml:"smtp"`
	Journal JournalConfig `toml:"journal"`
	Storage StorageConfig `toml:"storage"`
	Log     LogConfig     `toml:"log"`
	Audit   AuditConfig   `toml:"audit"`
	Metrics MetricsConfig `toml:"metrics"`
	Control ControlConfig `toml:"control"`
	Reader  ReaderConfig  `toml:"reader"`
	Scrub   ScrubConfig   `toml:"scrub"`
	Offsite OffsiteConfig `toml:"offsite"`
	// Retention rules (docs/retention.md). Without them no message is ever
	// eligible for deletion.
	Retention *archive.RetentionPolicy `toml:"retention"`
	// Access is the reader's people part: WebAuthn, sessions, four eyes,
	// OIDC providers (docs/access.md, "Configuration").
	Access access.Config `toml:"access"`
}

// SMTPConfig configures the SMTP receiver.
type SMTPConfig struct {
	Listen           string            `toml:"listen"`     // default 0.0.0.0:25
	ListenTLS        string            `toml:"listen_tls"` // implicit TLS; empty: off
	Hostname         string            `toml:"hostname"`
	CertFile         string            `toml:"cert_file"` // default DIR/tls/cert.pem, self-signed on first start
	KeyFile          string            `toml:"key_file"`
	RequireTLS       bool              `toml:"require_tls"`
	MaxMessageSize   Size              `toml:"max_message_size"` // e.g. "64MiB"
	MaxRecipients    int               `toml:"max_recipients"`
	MaxConnections   int               `toml:"max_connections"`
	CommandTimeout   Duration          `toml:"command_timeout"` // e.g. "5m"
	DataTimeout      Duration          `toml:"data_timeout"`
	AllowNetworks    []Network         `toml:"allow_networks"`    // CIDRs; empty: all
	AcceptRecipients []string          `toml:"accept_recipients"` // addresses or @domains; empty: any
	Users            map[string]string `toml:"users"`             // AUTH PLAIN user → bcrypt hash
	RequireAuth      bool              `toml:"require_auth"`
	// Front-door limits (docs/threat-model.md); zero values are the
	// defaults shown.
	MaxCommandLine      Size     `toml:"max_command_line"`       // default "4KiB"
	MaxInFlight         Size     `toml:"max_in_flight"`          // default "512MiB"
	ReservedConnections int      `toml:"reserved_connections"`   // default max_connections/5
	MaxConnectionsPerIP int      `toml:"max_connections_per_ip"` // default 10
	MaxSessionTime      Duration `toml:"max_session_time"`       // default "1h"
	MaxIdleCommands     int      `toml:"max_idle_commands"`      // default 100
	AuthFailuresPerIP   int      `toml:"auth_failures_per_ip"`   // default 5
	AuthFailuresPerUser int      `toml:"auth_failures_per_user"` // default 10
}

// MetricsConfig configures the Prometheus endpoint (/metrics, /healthz,
// /readyz). Off unless Listen is set.
type MetricsConfig struct {
	Listen string `toml:"listen"` // HOST:PORT; empty: off
	// AllowRemote permits a Listen address beyond loopback: the figures
	// are not secret, but they tell an outsider how much mail flows.
	AllowRemote bool `toml:"allow_remote"`
}

// ControlConfig configures the receiver's control socket.
type ControlConfig struct {
	// AllowUsers are the service users (the reader's, sealmail-access)
	// the control socket serves besides root and the daemon's own user.
	AllowUsers []string `toml:"allow_users"`
	// Socket is a second control socket, mode 0660 in the daemon's group,
	// for service users who cannot enter the data directory (mode 0700):
	// the packaged units use /run/sealmail/control.sock. Empty: none.
	Socket string `toml:"socket"`
}

// ReaderConfig configures the reader service (`sealmail access`) and where
// the command line finds it.
type ReaderConfig struct {
	Listen string `toml:"listen"` // HTTPS, default 127.0.0.1:8443
	State  string `toml:"state"`  // default /var/lib/sealmail-access
	// Socket is the reader's local socket; default STATE/reader.sock.
	Socket   string `toml:"socket"`
	CertFile string `toml:"cert_file"` // default: self-signed, made in STATE/tls
	KeyFile  string `toml:"key_file"`
	// Hostnames go into the self-signed certificate besides localhost.
	Hostnames []string `toml:"hostnames"`
	// Control is the receiver's control socket; default DIR/control.sock
	// (the packaged units: control.socket).
	Control string `toml:"control"`
	// Extract is the sandbox that reads attachments' text for the index.
	Extract ExtractConfig `toml:"extract"`
}

// ScrubConfig configures the daemon's background re-verification of the
// sealed segments (docs/operations.md, "Scrubbing").
type ScrubConfig struct {
	Rate       *Size    `toml:"rate"`        // bytes read per second; default "8MiB"; "0" turns scrubbing off
	Every      Duration `toml:"every"`       // a pass begins this long after the previous one began; default "168h"
	StartAfter Duration `toml:"start_after"` // the wait after the daemon starts; default "10m"
}

// scrubOptions returns the scrubber's options; ok is false when it is off.
func (c *Config) scrubOptions() (o archive.ScrubOptions, ok bool) {
	o = archive.ScrubOptions{Rate: 8 << 20, Every: time.Duration(c.Scrub.Every), StartAfter: time.Duration(c.Scrub.StartAfter)}
	if c.Scrub.Rate != nil {
		o.Rate = int64(*c.Scrub.Rate)
	}
	if o.StartAfter == 0 {
		o.StartAfter = 10 * time.Minute
	}
	return o, o.Rate > 0
}

// JournalConfig says whose journal reports are trusted.
type JournalConfig struct {
	Sources []Network `toml:"sources"` // CIDRs; default loopback only
	Users   []string  `toml:"users"`   // AUTH users
	// EncodedRecipientDomains: archive domains whose RCPT TO addresses carry
	// the original recipient as tag+local=domain@archive-domain (Postfix
	// recipient_bcc_maps; docs/journaling.md).
	EncodedRecipientDomains []string `toml:"encoded_recipient_domains"`
	// Expect lists how often sources are expected to send ([[journal.expect]]):
	// a longer silence is a journal gap (docs/operations.md, Monitoring).
	Expect []JournalExpect `toml:"expect"`
}

// JournalExpect is one [[journal.expect]] entry.
type JournalExpect struct {
	Source     Network  `toml:"source"`      // CIDR or address
	MaxSilence Duration `toml:"max_silence"` // e.g. "2h"
	Hours      string   `toml:"hours"`       // e.g. "07-19"; default all day
	Weekdays   string   `toml:"weekdays"`    // e.g. "mon-fri"; default every day
}

// expectation converts e for the archive.
func (e JournalExpect) expectation() (archive.JournalExpectation, error) {
	x := archive.JournalExpectation{Source: netip.Prefix(e.Source), MaxSilence: time.Duration(e.MaxSilence)}
	if e.Hours != "" {
		if err := x.ParseHours(e.Hours); err != nil {
			return x, err
		}
	}
	if e.Weekdays != "" {
		if err := x.ParseWeekdays(e.Weekdays); err != nil {
			return x, err
		}
	}
	return x, nil
}

// journalExpectations returns the configuration's [[journal.expect]] for
// the archive (Validate has checked them).
func (c *Config) journalExpectations() []archive.JournalExpectation {
	var out []archive.JournalExpectation
	for _, e := range c.Journal.Expect {
		if x, err := e.expectation(); err == nil {
			out = append(out, x)
		}
	}
	return out
}

// StorageConfig configures the store.
type StorageConfig struct {
	SealSize  Size     `toml:"seal_size"`        // default "1GiB"
	MinFree   *Size    `toml:"min_free"`         // default "1GiB"; "0" disables
	ShutdownT Duration `toml:"shutdown_timeout"` // default "30s"
}

// AuditConfig says how often the audit log writes a signed checkpoint.
type AuditConfig struct {
	CheckpointEvery    int      `toml:"checkpoint_every"`    // entries; default 1000
	CheckpointInterval Duration `toml:"checkpoint_interval"` // default "5m"
}

// LogConfig configures diagnostics.
type LogConfig struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// loadConfig reads a configuration file; unknown keys are errors, so that a
// typo does not silently fall back to a default.
func loadConfig(path string) (*Config, error) {
	var c Config
	if path == "" {
		return &c, nil
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return nil, fmt.Errorf("config %s: YAML configuration is no longer read: write it as TOML (packaging/sealmail.toml is the annotated sample)", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var de *toml.DecodeError
		var se *toml.StrictMissingError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("config %s: unknown keys (typo?):\n%s", path, strings.TrimSpace(se.String()))
		}
		if errors.As(err, &de) {
			row, col := de.Position()
			key := strings.Join(de.Key(), ".")
			if key != "" {
				key += ": "
			}
			return nil, fmt.Errorf("config %s:%d:%d: %s%s", path, row, col, key, strings.TrimPrefix(de.Error(), "toml: "))
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

// Validate returns every problem of the configuration, each naming the key
// and the fix.
func (c *Config) Validate() []error {
	var errs []error
	bad := func(format string, v ...any) { errs = append(errs, fmt.Errorf(format, v...)) }
	for _, a := range []struct{ key, v string }{{"smtp.listen", c.SMTP.Listen}, {"smtp.listen_tls", c.SMTP.ListenTLS}} {
		if a.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			bad("%s = %q: want HOST:PORT, e.g. 127.0.0.1:2525", a.key, a.v)
		}
	}
	for i, e := range c.Journal.Expect {
		if !netip.Prefix(e.Source).IsValid() {
			bad("journal.expect[%d].source: missing; give the journaling server's address or CIDR", i)
		}
		if e.MaxSilence <= 0 {
			bad("journal.expect[%d].max_silence: missing; give a duration such as \"2h\"", i)
		}
		if _, err := e.expectation(); err != nil {
			bad("journal.expect[%d].%v", i, err)
		}
	}
	if m := c.Metrics.Listen; m != "" {
		if _, _, err := net.SplitHostPort(m); err != nil {
			bad("metrics.listen = %q: want HOST:PORT, e.g. 127.0.0.1:9465", m)
		} else if !loopbackAddr(m) && !c.Metrics.AllowRemote {
			bad("metrics.listen = %q is beyond loopback: listen on 127.0.0.1, or set metrics.allow_remote = true", m)
		}
	}
	// A journal report keeps the DATA and the original extracted from it,
	// so a message takes up to twice its size in the store, which takes at
	// most archive.MaxMessageBytes: a larger limit would accept (250) what
	// cannot be stored.
	if n := int64(c.SMTP.MaxMessageSize); n > maxMessageSize {
		bad("smtp.max_message_size = %d bytes: at most %d bytes (%d MiB): the store keeps a journal report and its original, at most %d bytes together",
			n, int64(maxMessageSize), int64(maxMessageSize>>20), int64(archive.MaxMessageBytes))
	}
	for u, h := range c.SMTP.Users {
		if !strings.HasPrefix(h, "$2") {
			bad("smtp.users.%s: want a bcrypt hash ($2a$…/$2b$…); make one with `htpasswd -nbBC 12 USER PASSWORD`", u)
		}
	}
	if (c.SMTP.CertFile == "") != (c.SMTP.KeyFile == "") {
		bad("smtp.cert_file and smtp.key_file: give both or neither")
	}
	if (c.Reader.CertFile == "") != (c.Reader.KeyFile == "") {
		bad("reader.cert_file and reader.key_file: give both or neither")
	}
	if e := c.Reader.Extract; e.MaxDepth < 0 || e.MaxEntries < 0 {
		bad("reader.extract.max_depth and max_entries must not be negative")
	}
	if l := c.Reader.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			bad("reader.listen = %q: want HOST:PORT, e.g. 127.0.0.1:8443", l)
		}
	}

	if c.Audit.CheckpointEvery < 0 {
		bad("audit.checkpoint_every = %d: want a positive number of entries", c.Audit.CheckpointEvery)
	}
	if c.SMTP.MaxRecipients < 0 || c.SMTP.MaxConnections < 0 {
		bad("smtp.max_recipients and smtp.max_connections must not be negative")
	}
	if n := c.SMTP.MaxCommandLine; n != 0 && n < 512 {
		bad("smtp.max_command_line = %d bytes: want at least 512 (RFC 5321 §4.5.3.1.4)", int64(n))
	}
	if c.SMTP.ReservedConnections < 0 || c.SMTP.MaxIdleCommands < 0 || c.SMTP.AuthFailuresPerIP < 0 || c.SMTP.AuthFailuresPerUser < 0 {
		bad("smtp.reserved_connections, max_idle_commands, auth_failures_per_ip and auth_failures_per_user must not be negative")
	}
	errs = append(errs, c.Offsite.validate()...)
	errs = append(errs, c.exposureErrors()...)
	if c.Retention != nil {
		for _, e := range c.Retention.Validate() {
			bad("retention: %v", e)
		}
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		bad("log.level = %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		bad("log.format = %q: want text or json", c.Log.Format)
	}
	return errs
}

// validated returns Validate's problems as one usage error, or nil.
func (c *Config) validated() error {
	errs := c.Validate()
	if len(errs) == 0 {
		return nil
	}
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  %v", e)
	}
	return usageError{fmt.Errorf("invalid configuration:%s", b.String())}
}

// maxMessageSize is the largest smtp.max_message_size allowed.
const maxMessageSize = archive.MaxMessageBytes / 2

// Size is a byte count in the configuration: "64MiB", "500K", "1GiB" or a
// plain number, in the grammar of the query language's larger: and smaller:
// ([sealmail.ParseSize]).
type Size int64

// UnmarshalText implements [encoding.TextUnmarshaler].
func (s *Size) UnmarshalText(b []byte) error {
	n, err := sealmail.ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// MarshalText writes the size in the largest unit that divides it.
func (s Size) MarshalText() ([]byte, error) { return []byte(sealmail.FormatSize(int64(s))), nil }

// Duration is a non-negative duration in the configuration: "30s", "5m",
// "1h30m" (Go's time.ParseDuration).
type Duration time.Duration

// UnmarshalText implements [encoding.TextUnmarshaler].
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil || v < 0 {
		return fmt.Errorf("duration %q: want e.g. 30s, 5m or 1h", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Network is a client network in the configuration: a CIDR (10.0.0.0/8) or
// one address (192.0.2.7, ::1).
type Network netip.Prefix

// UnmarshalText implements [encoding.TextUnmarshaler].
func (n *Network) UnmarshalText(b []byte) error {
	p, err := parseNetwork(string(b))
	if err != nil {
		return err
	}
	*n = Network(p)
	return nil
}

// MarshalText writes the CIDR.
func (n Network) MarshalText() ([]byte, error) { return []byte(netip.Prefix(n).String()), nil }

func parseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return netip.Prefix{}, fmt.Errorf("%q: want a CIDR such as 10.0.0.0/8 or an address, one per list element", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return p.Masked(), nil
}

// parseNetworks parses a flag's comma-separated networks.
func parseNetworks(s string) ([]Network, error) {
	var out []Network
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		p, err := parseNetwork(part)
		if err != nil {
			return nil, err
		}
		out = append(out, Network(p))
	}
	return out, nil
}

// prefixes returns ns as netip prefixes; nil for none (the default).
func prefixes(ns []Network) []netip.Prefix {
	if len(ns) == 0 {
		return nil
	}
	out := make([]netip.Prefix, len(ns))
	for i, n := range ns {
		out[i] = netip.Prefix(n)
	}
	return out
}

// redacted returns the configuration for the audit log: AUTH users are
// named, their password hashes are not.
func (c *Config) redacted() Config {
	r := *c
	if len(c.SMTP.Users) > 0 {
		r.SMTP.Users = make(map[string]string, len(c.SMTP.Users))
		for u := range c.SMTP.Users {
			r.SMTP.Users[u] = "(bcrypt hash)"
		}
	}
	return r
}

// ExtractConfig is [reader.extract]: the sandbox in which the reader
// extracts the text of attachments (PDF, Office, OpenDocument, RTF,
// archives) for its index, and its limits per attachment. Zero values are
// the defaults shown.
type ExtractConfig struct {
	// Off indexes attachments by their names only and starts no sandbox.
	Off         bool     `toml:"off"`
	Timeout     Duration `toml:"timeout"`      // wall time, start-up included; default "30s"
	CPUTime     Duration `toml:"cpu_time"`     // per process; default "10s"
	Memory      Size     `toml:"memory"`       // address space per process beyond its start; default "512MiB"
	MaxInput    Size     `toml:"max_input"`    // read of an attachment; default "64MiB"
	MaxText     Size     `toml:"max_text"`     // text kept; default "4MiB"
	MaxUnpacked Size     `toml:"max_unpacked"` // unpacked from ZIP and Office packages; default "128MiB"
	MaxDepth    int      `toml:"max_depth"`    // archives in archives; default 4
	MaxEntries  int      `toml:"max_entries"`  // files looked at in archives; default 10000
}

// options returns the sandbox's options with its child command.
func (e ExtractConfig) options(command []string) extract.Options {
	return extract.Options{Command: command, Timeout: time.Duration(e.Timeout), CPUTime: time.Duration(e.CPUTime),
		MemoryBytes: int64(e.Memory), Limits: extract.Limits{MaxInputBytes: int(e.MaxInput), MaxTextBytes: int(e.MaxText),
			MaxUnpackedBytes: int64(e.MaxUnpacked), MaxDepth: e.MaxDepth, MaxEntries: e.MaxEntries}}
}
