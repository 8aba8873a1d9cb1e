// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"gopkg.in/yaml.v3"

	"github.com/sealmail/sealmail/policy"
)

// Config is the daemon's configuration file (TOML, or YAML for a .yaml/.yml
// file). Flags given to `serve` override it. Every field's zero value means
// "the default" documented in packaging/sealmail.toml.
type Config struct {
	SMTP    SMTPConfig    `toml:"smtp" yaml:"smtp"`
	Journal JournalConfig `toml:"journal" yaml:"journal"`
	Storage StorageConfig `toml:"storage" yaml:"storage"`
	Log     LogConfig     `toml:"log" yaml:"log"`
	Audit   AuditConfig   `toml:"audit" yaml:"audit"`
	// Retention rules (docs/retention.md). Without them no message is ever
	// eligible for deletion.
	Retention *policy.Policy `toml:"retention" yaml:"retention"`
}

// SMTPConfig configures the SMTP receiver.
type SMTPConfig struct {
	Listen           string            `toml:"listen" yaml:"listen"`         // default 0.0.0.0:25
	ListenTLS        string            `toml:"listen_tls" yaml:"listen_tls"` // implicit TLS; empty: off
	Hostname         string            `toml:"hostname" yaml:"hostname"`
	CertFile         string            `toml:"cert_file" yaml:"cert_file"` // default DIR/tls/cert.pem, self-signed on first start
	KeyFile          string            `toml:"key_file" yaml:"key_file"`
	RequireTLS       bool              `toml:"require_tls" yaml:"require_tls"`
	MaxMessageSize   string            `toml:"max_message_size" yaml:"max_message_size"` // e.g. "64MiB"
	MaxRecipients    int               `toml:"max_recipients" yaml:"max_recipients"`
	MaxConnections   int               `toml:"max_connections" yaml:"max_connections"`
	CommandTimeout   string            `toml:"command_timeout" yaml:"command_timeout"` // e.g. "5m"
	DataTimeout      string            `toml:"data_timeout" yaml:"data_timeout"`
	AllowNetworks    []string          `toml:"allow_networks" yaml:"allow_networks"`       // CIDRs; empty: all
	AcceptRecipients []string          `toml:"accept_recipients" yaml:"accept_recipients"` // addresses or @domains; empty: any
	Users            map[string]string `toml:"users" yaml:"users"`                         // AUTH PLAIN user → bcrypt hash
	RequireAuth      bool              `toml:"require_auth" yaml:"require_auth"`
	// Front-door limits (docs/threat-model.md); zero values are the
	// defaults shown.
	MaxCommandLine      string `toml:"max_command_line" yaml:"max_command_line"`             // default "4KiB"
	MaxInFlight         string `toml:"max_in_flight" yaml:"max_in_flight"`                   // default "512MiB"
	ReservedConnections int    `toml:"reserved_connections" yaml:"reserved_connections"`     // default max_connections/5
	MaxConnectionsPerIP int    `toml:"max_connections_per_ip" yaml:"max_connections_per_ip"` // default 10
	MaxSessionTime      string `toml:"max_session_time" yaml:"max_session_time"`             // default "1h"
	MaxIdleCommands     int    `toml:"max_idle_commands" yaml:"max_idle_commands"`           // default 100
	AuthFailuresPerIP   int    `toml:"auth_failures_per_ip" yaml:"auth_failures_per_ip"`     // default 5
	AuthFailuresPerUser int    `toml:"auth_failures_per_user" yaml:"auth_failures_per_user"` // default 10
}

// JournalConfig says whose journal reports are trusted.
type JournalConfig struct {
	Sources []string `toml:"sources" yaml:"sources"` // CIDRs; default loopback only
	Users   []string `toml:"users" yaml:"users"`     // AUTH users
	// EncodedRecipientDomains: archive domains whose RCPT TO addresses carry
	// the original recipient as tag+local=domain@archive-domain (Postfix
	// recipient_bcc_maps; docs/journaling.md).
	EncodedRecipientDomains []string `toml:"encoded_recipient_domains" yaml:"encoded_recipient_domains"`
}

// StorageConfig configures the store.
type StorageConfig struct {
	SealSize  string `toml:"seal_size" yaml:"seal_size"`               // default "1GiB"
	MinFree   string `toml:"min_free" yaml:"min_free"`                 // default "1GiB"; "0" disables
	ShutdownT string `toml:"shutdown_timeout" yaml:"shutdown_timeout"` // default "30s"
}

// AuditConfig says how often the audit log writes a signed checkpoint.
type AuditConfig struct {
	CheckpointEvery    int    `toml:"checkpoint_every" yaml:"checkpoint_every"`       // entries; default 1000
	CheckpointInterval string `toml:"checkpoint_interval" yaml:"checkpoint_interval"` // default "5m"
}

// LogConfig configures diagnostics.
type LogConfig struct {
	Level  string `toml:"level" yaml:"level"`   // debug, info, warn, error
	Format string `toml:"format" yaml:"format"` // text or json
}

// loadConfig reads a configuration file; unknown keys are errors, so that a
// typo does not silently fall back to a default.
func loadConfig(path string) (*Config, error) {
	var c Config
	if path == "" {
		return &c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	default:
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
				return nil, fmt.Errorf("config %s:%d:%d: %w", path, row, col, err)
			}
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
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
	for _, s := range []struct{ key, v string }{{"smtp.max_message_size", c.SMTP.MaxMessageSize}, {"storage.seal_size", c.Storage.SealSize}, {"storage.min_free", c.Storage.MinFree}} {
		if _, err := parseSize(s.v); err != nil {
			bad("%s: %v", s.key, err)
		}
	}
	for _, d := range []struct{ key, v string }{{"smtp.command_timeout", c.SMTP.CommandTimeout}, {"smtp.data_timeout", c.SMTP.DataTimeout}, {"storage.shutdown_timeout", c.Storage.ShutdownT}, {"audit.checkpoint_interval", c.Audit.CheckpointInterval}} {
		if _, err := parseDuration(d.v); err != nil {
			bad("%s: %v", d.key, err)
		}
	}
	if _, err := parsePrefixes(c.SMTP.AllowNetworks); err != nil {
		bad("smtp.allow_networks: %v", err)
	}
	if _, err := parsePrefixes(c.Journal.Sources); err != nil {
		bad("journal.sources: %v", err)
	}
	for u, h := range c.SMTP.Users {
		if !strings.HasPrefix(h, "$2") {
			bad("smtp.users.%s: want a bcrypt hash ($2a$…/$2b$…); make one with `htpasswd -nbBC 12 USER PASSWORD`", u)
		}
	}
	if (c.SMTP.CertFile == "") != (c.SMTP.KeyFile == "") {
		bad("smtp.cert_file and smtp.key_file: give both or neither")
	}
	if c.Audit.CheckpointEvery < 0 {
		bad("audit.checkpoint_every = %d: want a positive number of entries", c.Audit.CheckpointEvery)
	}
	if c.SMTP.MaxRecipients < 0 || c.SMTP.MaxConnections < 0 {
		bad("smtp.max_recipients and smtp.max_connections must not be negative")
	}
	for _, s := range []struct{ key, v string }{{"smtp.max_command_line", c.SMTP.MaxCommandLine}, {"smtp.max_in_flight", c.SMTP.MaxInFlight}} {
		if _, err := parseSize(s.v); err != nil {
			bad("%s: %v", s.key, err)
		}
	}
	if n, _ := parseSize(c.SMTP.MaxCommandLine); n != 0 && n < 512 {
		bad("smtp.max_command_line = %q: want at least 512 bytes (RFC 5321 §4.5.3.1.4)", c.SMTP.MaxCommandLine)
	}
	if _, err := parseDuration(c.SMTP.MaxSessionTime); err != nil {
		bad("smtp.max_session_time: %v", err)
	}
	if c.SMTP.ReservedConnections < 0 || c.SMTP.MaxIdleCommands < 0 || c.SMTP.AuthFailuresPerIP < 0 || c.SMTP.AuthFailuresPerUser < 0 {
		bad("smtp.reserved_connections, max_idle_commands, auth_failures_per_ip and auth_failures_per_user must not be negative")
	}
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

// parseSize parses "64MiB", "10M", "500K", "1GiB" or a plain byte count;
// K/M/G and KiB/MiB/GiB are all powers of 1024. Empty is 0.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	u := strings.ToUpper(s)
	for _, suf := range []struct {
		s string
		m int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(u, suf.s) {
			mult = suf.m
			u = strings.TrimSpace(strings.TrimSuffix(u, suf.s))
			break
		}
	}
	var n int64
	if _, err := fmt.Sscanf(u, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != u {
		return 0, fmt.Errorf("size %q: want a number with an optional unit, e.g. 64MiB or 500K", s)
	}
	return n * mult, nil
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("duration %q: want e.g. 30s, 5m or 1h", s)
	}
	return d, nil
}

func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		for _, part := range strings.Split(s, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			p, err := netip.ParsePrefix(part)
			if err != nil {
				a, aerr := netip.ParseAddr(part)
				if aerr != nil {
					return nil, fmt.Errorf("%q: want a CIDR such as 10.0.0.0/8 or an address", part)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			out = append(out, p.Masked())
		}
	}
	return out, nil
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
