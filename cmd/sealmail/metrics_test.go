// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"net/smtp"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsAddr returns the daemon's metrics listener from `status`.
func (d *daemon) metricsAddr() string {
	d.t.Helper()
	out, errOut, code := cli(d.t, nil, "status", "--json", "--data", d.dir)
	if code != 0 {
		d.t.Fatalf("status: exit %d: %s", code, errOut)
	}
	var st struct {
		Listeners []string `json:"listeners"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		d.t.Fatal(err)
	}
	for _, l := range st.Listeners {
		if a, ok := strings.CutPrefix(l, "metrics "); ok {
			return a
		}
	}
	d.t.Fatalf("no metrics listener in %v", st.Listeners)
	return ""
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// value returns the single sample of a counter or gauge family, or the
// sample count of a histogram.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok || len(f.GetMetric()) == 0 {
		t.Fatalf("metric %s missing", name)
	}
	m := f.GetMetric()[0]
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	t.Fatalf("metric %s: unexpected type %v", name, f.GetType())
	return 0
}

// TestMetricsEndpoint runs the daemon with --metrics, delivers one message
// over STARTTLS with net/smtp and checks that the counters moved, and that
// /healthz and /readyz answer.
func TestMetricsEndpoint(t *testing.T) {
	dir, identity := initArchive(t)
	d := startDaemon(t, dir, "--metrics", "127.0.0.1:0")
	addr := d.metricsAddr()
	if !strings.Contains(d.stderr.String(), "metrics "+addr) {
		t.Errorf("the log does not name the metrics address %s: %s", addr, d.stderr)
	}

	before := scrape(t, addr)
	if v := value(t, before, "sealmail_messages_accepted_total"); v != 0 {
		t.Fatalf("accepted before any mail = %v", v)
	}
	if v := value(t, before, "sealmail_disk_free_bytes"); v <= 0 {
		t.Errorf("sealmail_disk_free_bytes = %v", v)
	}
	if v := value(t, before, "sealmail_segments"); v < 1 {
		t.Errorf("sealmail_segments = %v, want the active segment", v)
	}

	msg := "From: a@example.com\r\nTo: b@example.com\r\nSubject: metrics\r\n\r\nhello\r\n"
	c, err := smtp.Dial(d.addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil { // the daemon's self-signed certificate
		t.Fatal(err)
	}
	if err := c.Mail("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.com"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, msg); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("DATA not accepted: %v", err)
	}
	// One refused command: counted by its reply code.
	cid, err := c.Text.Cmd("FOO")
	if err != nil {
		t.Fatal(err)
	}
	c.Text.StartResponse(cid)
	code, _, _ := c.Text.ReadResponse(0)
	c.Text.EndResponse(cid)
	if code < 500 {
		t.Fatalf("unknown command answered %d", code)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}

	after := scrape(t, addr)
	if v := value(t, after, "sealmail_messages_accepted_total"); v != 1 {
		t.Errorf("sealmail_messages_accepted_total = %v, want 1", v)
	}
	if v := value(t, after, "sealmail_bytes_accepted_total"); v < float64(len(msg)) {
		t.Errorf("sealmail_bytes_accepted_total = %v, want ≥ %d", v, len(msg))
	}
	byLabel := func(name, label string) map[string]float64 {
		out := make(map[string]float64)
		for _, m := range after[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
		return out
	}
	if r := byLabel("sealmail_smtp_refused_total", "code"); r[strconv.Itoa(code)] != 1 || len(r) != 1 {
		t.Errorf("sealmail_smtp_refused_total = %v, want %d: 1", r, code)
	}
	// 220 greeting, EHLO, 220 STARTTLS, EHLO, MAIL, RCPT, 250 after DATA: 2xx;
	// 354: 3xx; the refused command: 5xx. (QUIT's 221 may not be counted
	// yet when the scrape runs.)
	if r := byLabel("sealmail_smtp_replies_total", "class"); r["2xx"] < 7 || r["3xx"] != 1 || r["5xx"] != 1 {
		t.Errorf("sealmail_smtp_replies_total = %v", r)
	}
	if v := value(t, after, "sealmail_commit_seconds"); v < 1 {
		t.Errorf("sealmail_commit_seconds has %v observations, want ≥ 1", v)
	}
	if v := value(t, after, "sealmail_commit_batch_entries"); v < 1 {
		t.Errorf("sealmail_commit_batch_entries has %v observations, want ≥ 1", v)
	}
	if v := value(t, after, "sealmail_messages"); v != 1 {
		t.Errorf("sealmail_messages = %v, want 1", v)
	}
	// The delivery came over STARTTLS (TLS 1.3 with net/smtp); its fsync
	// is timed apart from the commit; the audit log and its checkpoint
	// (init's) are exported.
	if r := byLabel("sealmail_messages_accepted_tls_total", "version"); r["TLS 1.3"] != 1 || len(r) != 1 {
		t.Errorf("sealmail_messages_accepted_tls_total = %v, want TLS 1.3: 1", r)
	}
	if v := value(t, after, "sealmail_segment_fsync_seconds"); v < 1 {
		t.Errorf("sealmail_segment_fsync_seconds has %v observations, want ≥ 1", v)
	}
	if v := value(t, after, "sealmail_audit_entries"); v < 3 {
		t.Errorf("sealmail_audit_entries = %v, want the init, start and ingest entries at least", v)
	}
	if v := value(t, after, "sealmail_audit_last_checkpoint_timestamp_seconds"); v < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("sealmail_audit_last_checkpoint_timestamp_seconds = %v", v)
	}
	if v := value(t, after, "sealmail_audit_unsigned_entries"); v < 1 {
		t.Errorf("sealmail_audit_unsigned_entries = %v, want the entries since init's checkpoint", v)
	}
	if v := value(t, after, "sealmail_scrub_pass_progress_ratio"); v != 0 {
		t.Errorf("sealmail_scrub_pass_progress_ratio = %v before the first pass (10 minutes after the start)", v)
	}
	// The client is a journaling source (loopback by default): its IP
	// is the label, nothing else.
	f := after["sealmail_journal_last_message_timestamp_seconds"]
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatalf("last message by source: %v", f)
	}
	lbl := f.GetMetric()[0].GetLabel()
	if len(lbl) != 1 || lbl[0].GetName() != "source" || lbl[0].GetValue() != "127.0.0.1" {
		t.Errorf("source labels = %v, want source=127.0.0.1", lbl)
	}
	if f.GetMetric()[0].GetGauge().GetValue() <= 0 {
		t.Errorf("last message time = %v", f.GetMetric()[0].GetGauge().GetValue())
	}
	for name := range after {
		if strings.Contains(name, "example") {
			t.Errorf("an address leaked into a metric name: %s", name)
		}
	}
	if _, body := httpGet(t, "http://"+addr+"/metrics"); strings.Contains(body, "example.com") {
		t.Errorf("an address leaked into /metrics")
	}

	if code, body := httpGet(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := httpGet(t, "http://"+addr+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if v := value(t, after, "sealmail_ready"); v != 1 {
		t.Errorf("sealmail_ready = %v, want 1", v)
	}

	// The index's lag: absent until a reader follows, then how far its
	// last feed request was behind the log.
	if after["sealmail_reader_last_feed_timestamp_seconds"] != nil || after["sealmail_reader_lag_entries"] != nil {
		t.Errorf("reader metrics without a reader: %v %v", after["sealmail_reader_last_feed_timestamp_seconds"], after["sealmail_reader_lag_entries"])
	}
	r := startReader(t, dir, "", "--identity", identity)
	r.caughtUp()
	following := scrape(t, addr)
	if v := value(t, following, "sealmail_reader_last_feed_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("sealmail_reader_last_feed_timestamp_seconds = %v, want within the last minute", v)
	}
	// The reader's own entries (its start, reindex) may be a feed request
	// ahead of it; the ingest and the daemon's entries are not.
	if v, head := value(t, following, "sealmail_reader_lag_entries"), value(t, following, "sealmail_audit_entries"); v >= head || v > 10 {
		t.Errorf("sealmail_reader_lag_entries = %v of %v entries, want a caught-up reader's", v, head)
	}
	r.stop()
	d.stop()
}

// TestMetricsReadyzFullDisk: with free space below storage.min_free the
// daemon still runs (/healthz 200) but is not ready (/readyz 503).
func TestMetricsReadyzFullDisk(t *testing.T) {
	dir, _ := initArchive(t)
	cfg := filepath.Join(t.TempDir(), "sealmail.toml")
	if err := os.WriteFile(cfg, []byte("[storage]\nmin_free = \"100000TiB\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n"+
		"[[journal.expect]]\nsource = \"127.0.0.1\"\nmax_silence = \"1h\"\nhours = \"07-19\"\nweekdays = \"mon-fri\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dir, "--config", cfg)
	addr := d.metricsAddr()
	if code, body := httpGet(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}
	// The journal.expect source is exposed, not in a gap (the daemon
	// has just started).
	f := scrape(t, addr)["sealmail_journal_gap"]
	if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetLabel()[0].GetValue() != "127.0.0.1/32" || f.GetMetric()[0].GetGauge().GetValue() != 0 {
		t.Errorf("sealmail_journal_gap = %v, want one series source=127.0.0.1/32 at 0", f)
	}
	if v := value(t, scrape(t, addr), "sealmail_ready"); v != 0 {
		t.Errorf("sealmail_ready on a full disk = %v, want 0", v)
	}
	code, body := httpGet(t, "http://"+addr+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "storage full") {
		t.Errorf("/readyz on a full disk: %d %q, want 503 naming storage full", code, body)
	}
	d.stop()
}

// TestMetricsListenRefusedBeyondLoopback: a metrics address beyond
// loopback needs metrics.allow_remote, and the error names that key.
func TestMetricsListenRefusedBeyondLoopback(t *testing.T) {
	for _, tc := range []struct {
		cfg     Config
		wantErr bool
	}{
		{Config{Metrics: MetricsConfig{Listen: "127.0.0.1:9465"}}, false},
		{Config{Metrics: MetricsConfig{Listen: "[::1]:9465"}}, false},
		{Config{Metrics: MetricsConfig{Listen: "0.0.0.0:9465"}}, true},
		{Config{Metrics: MetricsConfig{Listen: "0.0.0.0:9465", AllowRemote: true}}, false},
		{Config{Metrics: MetricsConfig{Listen: "9465"}}, true},
	} {
		var found error
		for _, err := range tc.cfg.Validate() {
			if strings.Contains(err.Error(), "metrics.") {
				found = err
			}
		}
		if (found != nil) != tc.wantErr {
			t.Errorf("%+v: error %v, want error %v", tc.cfg.Metrics, found, tc.wantErr)
		}
		if found != nil && tc.cfg.Metrics.Listen == "0.0.0.0:9465" && !strings.Contains(found.Error(), "metrics.allow_remote") {
			t.Errorf("the refusal does not name metrics.allow_remote: %v", found)
		}
	}
}

// TestJournalExpectValidation: every [[journal.expect]] problem is named
// with its index and key.
func TestJournalExpectValidation(t *testing.T) {
	src := Network(netip.MustParsePrefix("192.0.2.0/24"))
	for _, tc := range []struct {
		e    JournalExpect
		want string // "" = valid
	}{
		{JournalExpect{Source: src, MaxSilence: Duration(time.Hour), Hours: "07-19", Weekdays: "mon-fri"}, ""},
		{JournalExpect{Source: src, MaxSilence: Duration(time.Hour)}, ""},
		{JournalExpect{MaxSilence: Duration(time.Hour)}, "journal.expect[0].source"},
		{JournalExpect{Source: src}, "journal.expect[0].max_silence"},
		{JournalExpect{Source: src, MaxSilence: Duration(time.Hour), Hours: "19-07"}, "journal.expect[0].hours"},
		{JournalExpect{Source: src, MaxSilence: Duration(time.Hour), Weekdays: "weekend"}, "journal.expect[0].weekdays"},
	} {
		c := Config{Journal: JournalConfig{Expect: []JournalExpect{tc.e}}}
		var got []string
		for _, err := range c.Validate() {
			got = append(got, err.Error())
		}
		joined := strings.Join(got, "; ")
		if tc.want == "" && joined != "" || tc.want != "" && !strings.Contains(joined, tc.want) {
			t.Errorf("%+v: errors %q, want %q", tc.e, joined, tc.want)
		}
	}
}
