// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/smtpd"
)

// exposedNames returns the metric names the daemon registers (histograms
// with their _bucket, _sum and _count series).
func exposedNames(t *testing.T) map[string]bool {
	t.Helper()
	// Gauges with every optional figure present, so that each is exposed.
	now := time.Now()
	g := archive.Gauges{LastCheckpoint: now, LastBackup: now, Scrub: archive.ScrubStatus{Last: &archive.ScrubPass{Ended: now}}, ReaderSeen: now}
	m := newMetrics(func() (archive.Gauges, error) { return g, nil },
		func() smtpd.Stats { return smtpd.Stats{} }, nil, []string{"192.0.2.0/24"},
		func() []archive.JournalGap { return nil }, func() error { return nil }, slog.New(slog.DiscardHandler))
	m.refused.WithLabelValues("452")
	m.lastMsg.WithLabelValues("192.0.2.1")
	m.tls.WithLabelValues("TLS 1.3")
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := make(map[string]bool)
	for _, f := range fams {
		names[f.GetName()] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			names[f.GetName()+s] = true
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\bsealmail_[a-z_]+`)

// checkExpr fails for a sealmail metric in expr that the daemon does not
// expose: a renamed metric must not silently break the shipped alerts.
func checkExpr(t *testing.T, where, expr string, names map[string]bool) {
	t.Helper()
	found := metricName.FindAllString(expr, -1)
	if len(found) == 0 {
		return
	}
	for _, n := range found {
		if !names[n] {
			t.Errorf("%s: %q uses %s, which the daemon does not expose", where, expr, n)
		}
	}
}

// TestAlertRules: packaging/prometheus/sealmail-alerts.yml is valid YAML in
// Prometheus's rule-file shape, has the expected alerts, and uses only
// metrics the daemon exposes.
func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("../../packaging/prometheus/sealmail-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("sealmail-alerts.yml: %v", err)
	}
	names := exposedNames(t)
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %q: expr, severity and summary are required", r.Alert)
			}
			checkExpr(t, r.Alert, r.Expr, names)
		}
	}
	for _, want := range []string{"SealmailJournalGap", "SealmailNotReady", "SealmailDown", "SealmailRefusing4xx", "SealmailDiskLow",
		"SealmailScrubFoundDamage", "SealmailAuditNotCheckpointed", "SealmailBackupOld", "SealmailReaderNotFollowing", "SealmailIndexBehind"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s missing; have %v", want, alerts)
		}
	}
}

// TestGrafanaDashboard: packaging/grafana/sealmail.json is a dashboard
// whose queries use only metrics the daemon exposes.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../packaging/grafana/sealmail.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("sealmail.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) < 5 {
		t.Fatalf("dashboard %q (uid %q) with %d panels", d.Title, d.UID, len(d.Panels))
	}
	names := exposedNames(t)
	used := 0
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			checkExpr(t, p.Title, q.Expr, names)
			used += len(metricName.FindAllString(q.Expr, -1))
		}
	}
	if used == 0 {
		t.Error("no panel queries a sealmail metric")
	}
}
