// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if c.SMTP.Listen != "0.0.0.0:25" || c.Storage.MinFree != "1GiB" {
		t.Errorf("sample config parsed as %+v", c)
	}
}

func TestYAMLConfig(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("smtp:\n  listen: 127.0.0.1:2525\njournal:\n  sources: [10.1.0.0/16]\n"), 0o600)
	c, err := loadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.Listen != "127.0.0.1:2525" || len(c.Journal.Sources) != 1 {
		t.Errorf("loadConfig(yaml) = %+v", c)
	}
	os.WriteFile(p, []byte("smtp:\n  lisen: x\n"), 0o600)
	if _, err := loadConfig(p); err == nil {
		t.Error("loadConfig accepted an unknown YAML key")
	}
	os.WriteFile(p, nil, 0o600)
	if _, err := loadConfig(p); err != nil {
		t.Errorf("loadConfig(empty yaml) = %v", err)
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"", 0, true}, {"0", 0, true}, {"512", 512, true}, {"500K", 500 << 10, true}, {"10M", 10 << 20, true},
		{"64MiB", 64 << 20, true}, {"1GiB", 1 << 30, true}, {"2 GB", 2 << 30, true}, {"1000000T", 1000000 << 40, true},
		{"lots", 0, false}, {"-1", 0, false}, {"1.5M", 0, false}, {"M", 0, false},
	} {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParsePrefixes(t *testing.T) {
	t.Parallel()
	got, err := parsePrefixes([]string{"10.0.0.0/8, 192.0.2.7", "::1"})
	if err != nil || len(got) != 3 || got[1].String() != "192.0.2.7/32" || got[2].String() != "::1/128" {
		t.Errorf("parsePrefixes = %v, %v", got, err)
	}
	if _, err := parsePrefixes([]string{"10.0.0.0/33"}); err == nil {
		t.Error("parsePrefixes accepted /33")
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
		c := &Config{}
		c.SMTP.MaxMessageSize = tc.size
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
