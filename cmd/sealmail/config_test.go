// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealmail/sealmail/access"
)

func TestSampleConfigIsValid(t *testing.T) {
	t.Parallel()
	c, err := loadConfig("../../packaging/sealmail.toml")
	if err != nil {
		t.Fatal(err)
	}
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("packaging/sealmail.toml: %v", errs)
	}
	if c.SMTP.Listen != "0.0.0.0:25" || c.Storage.MinFree == nil || *c.Storage.MinFree != 1<<30 ||
		c.SMTP.MaxMessageSize != 64<<20 || time.Duration(c.SMTP.DataTimeout) != 10*time.Minute ||
		len(c.Journal.Sources) != 2 || prefixes(c.Journal.Sources)[1].String() != "::1/128" {
		t.Errorf("sample config parsed as %+v", c)
	}
	var o access.Options
	if err := c.Access.Apply(&o); err != nil || len(o.FourEyes.Off) != 0 {
		t.Errorf("the sample's [access]: %v, four eyes off for %v", err, o.FourEyes.Off)
	}
}

// TestAccessConfig: the reader takes [access] (WebAuthn, sessions, four
// eyes) and [reader.extract] from the configuration file; a bad [access]
// stops it before it starts anything, with every problem named; the
// removed [reader] webauthn keys are refused as unknown.
func TestAccessConfig(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(writeConfig(t, "[reader.extract]\ntimeout = \"5s\"\nmax_text = \"1MiB\"\n"+
		"[access.webauthn]\nrp_id = \"archive.example.com\"\n[access.sessions]\nidle = \"10m\"\n"+
		"[access.four_eyes]\nerase = false\nretention_shorten = false\nexpiry = \"1h\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	var o access.Options
	if err := c.Access.Apply(&o); err != nil {
		t.Fatal(err)
	}
	if o.WebAuthn.RPID != "archive.example.com" || o.Sessions.Idle != 10*time.Minute || o.FourEyes.Expiry != time.Hour ||
		fmt.Sprint(o.FourEyes.Off) != "[erase retention.shorten]" {
		t.Errorf("[access] applied as %+v", o)
	}
	if eo := c.Reader.Extract.options(nil); eo.Timeout != 5*time.Second || eo.MaxTextBytes != 1<<20 {
		t.Errorf("[reader.extract] = %+v", eo)
	}
	bad := writeConfig(t, "[access.webauthn]\norigins = [\"https://x.example\"]\n[[access.oidc.provider]]\nname = \"corp\"\nissuer = \"http://id.example.org\"\nclient_id = \"s\"\n")
	_, errOut, code := cli(t, nil, "access", "--config", bad, "--data", t.TempDir(), "--state", filepath.Join(t.TempDir(), "s"))
	if code != exitUsage || !strings.Contains(errOut, "access.webauthn") || !strings.Contains(errOut, "access.oidc") {
		t.Errorf("access with a bad [access]: exit %d, want %d naming both problems: %s", code, exitUsage, errOut)
	}
	if _, err := loadConfig(writeConfig(t, "[reader]\nwebauthn_rp_id = \"x\"\n")); err == nil || !strings.Contains(err.Error(), "webauthn_rp_id") {
		t.Errorf("[reader] webauthn_rp_id: %v, want refused as unknown", err)
	}
}

func writeConfigAs(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A value that does not parse is reported while the file is decoded: once,
// with its line, column and key.
func TestConfigValueErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text, want string
	}{
		{"size", "[smtp]\nlisten = \"127.0.0.1:25\"\nmax_message_size = \"lots\"\n", `:3:20: smtp.max_message_size: size "lots"`},
		{"size overflow", "[storage]\nseal_size = \"9000000T\"\n", `:2:13: storage.seal_size: size "9000000T": too large`},
		{"size with a space", "[storage]\nmin_free = \"2 GB\"\n", `:2:12: storage.min_free: size "2 GB": want a number`},
		{"duration", "[audit]\ncheckpoint_interval = \"soon\"\n", `:2:23: audit.checkpoint_interval: duration "soon"`},
		{"negative duration", "[smtp]\ndata_timeout = \"-5m\"\n", `:2:16: smtp.data_timeout: duration "-5m"`},
		{"network", "[journal]\nsources = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n", `:2:26: journal.sources: "10.0.0.0/33": want a CIDR`},
		{"networks in one element", "[smtp]\nallow_networks = [\"10.0.0.0/8,192.0.2.0/24\"]\n", `one per list element`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadConfig(writeConfigAs(t, "c.toml", tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("loadConfig = %v, want an error containing %q", err, tc.want)
			}
			if n := strings.Count(err.Error(), "config "); n != 1 {
				t.Errorf("error %q names the file %d times, want once", err, n)
			}
		})
	}
}

func TestConfigMinFreeZeroDisables(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(writeConfigAs(t, "c.toml", "[storage]\nmin_free = \"0\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.MinFree == nil || *c.Storage.MinFree != 0 {
		t.Errorf("min_free = \"0\" parsed as %v, want a set zero", c.Storage.MinFree)
	}
	c, err = loadConfig(writeConfigAs(t, "c.toml", "[storage]\n"))
	if err != nil || c.Storage.MinFree != nil {
		t.Errorf("no min_free parsed as %v, %v; want unset", c.Storage.MinFree, err)
	}
}

func TestYAMLConfigRefused(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"c.yaml", "c.YML"} {
		_, err := loadConfig(writeConfigAs(t, name, "smtp:\n  listen: 127.0.0.1:2525\n"))
		if err == nil || !strings.Contains(err.Error(), "write it as TOML") {
			t.Errorf("loadConfig(%s) = %v, want a refusal that says to use TOML", name, err)
		}
	}
}

func TestParseNetworks(t *testing.T) {
	t.Parallel()
	got, err := parseNetworks("10.0.0.0/8, 192.0.2.7,::1")
	ps := prefixes(got)
	if err != nil || len(ps) != 3 || ps[1].String() != "192.0.2.7/32" || ps[2].String() != "::1/128" {
		t.Errorf("parseNetworks = %v, %v", ps, err)
	}
	if _, err := parseNetworks("10.0.0.0/33"); err == nil {
		t.Error("parseNetworks accepted /33")
	}
	if prefixes([]Network{}) != nil {
		t.Error("prefixes of an empty list is not nil: journal.sources = [] would trust no one instead of loopback")
	}
}

// The configuration's log.level applies unless --log-level was given, even
// when it was given as the default "info".
func TestLogLevelPrecedence(t *testing.T) {
	t.Parallel()
	cfg := &Config{Log: LogConfig{Level: "debug"}}
	for _, tc := range []struct {
		flag  string
		set   bool
		debug bool
	}{{"info", false, true}, {"info", true, false}, {"warn", true, false}, {"debug", true, true}} {
		l := newLogger(&globalOptions{logLevel: tc.flag, logLevelSet: tc.set}, cfg)
		if got := l.Enabled(t.Context(), -4); got != tc.debug {
			t.Errorf("--log-level %s (given: %v) with log.level = debug: debug enabled = %v, want %v", tc.flag, tc.set, got, tc.debug)
		}
	}
}

// TestValidateMaxMessageSizeBound: a max_message_size the store cannot
// keep (a journal report holds the DATA and its original, together at most
// store.MaxMessageBytes) is refused at start-up, naming the limit, instead
// of answering 250 to what cannot be stored.
func TestValidateMaxMessageSizeBound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		size string
		ok   bool
	}{{"64MiB", true}, {"512MiB", true}, {"513MiB", false}, {"4GiB", false}, {"1000000T", false}} {
		var size Size
		if err := size.UnmarshalText([]byte(tc.size)); err != nil {
			if tc.ok {
				t.Errorf("max_message_size = %s: %v", tc.size, err)
			}
			continue // refused while the file is read (an overflow)
		}
		c := &Config{}
		c.SMTP.MaxMessageSize = size
		var found error
		for _, err := range c.Validate() {
			if strings.Contains(err.Error(), "max_message_size") {
				found = err
			}
		}
		if (found == nil) != tc.ok {
			t.Errorf("Validate(max_message_size = %s) = %v, want ok=%v", tc.size, found, tc.ok)
		}
		if found != nil && !strings.Contains(found.Error(), "536870912 bytes") {
			t.Errorf("Validate(max_message_size = %s) = %q: does not name the limit", tc.size, found)
		}
	}
}
