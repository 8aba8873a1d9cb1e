// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/archive"
	"github.com/sealmail/sealmail/smtpd"
)

// maxSourceLabels bounds the source label's values: one per client IP of a
// configured journaling source, at most this many.
const maxSourceLabels = 64

// metrics are the daemon's Prometheus figures (README "Monitoring"). No
// label carries content or an address but the IP of a configured
// journaling source.
type metrics struct {
	reg      *prometheus.Registry
	accepted prometheus.Counter
	bytes    prometheus.Counter
	refused  *prometheus.CounterVec
	replies  *prometheus.CounterVec
	commit   prometheus.Histogram
	fsync    prometheus.Histogram
	batch    prometheus.Histogram
	lastMsg  *prometheus.GaugeVec
	tls      *prometheus.CounterVec

	sources []netip.Prefix
	mu      sync.Mutex
	seen    map[string]bool // source label values in use
}

// newMetrics registers the daemon's metrics. gauges and stats are read at
// every scrape; sources are the journaling networks whose client IPs get a
// last-message time.
func newMetrics(gauges func() (archive.Gauges, error), srv func() smtpd.Stats, sources []netip.Prefix, expect []string, gaps func() []archive.JournalGap, ready func() error, log *slog.Logger) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sealmail_messages_accepted_total", Help: "Messages stored durably and acknowledged (250).",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sealmail_bytes_accepted_total", Help: "Bytes of the messages accepted.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealmail_smtp_refused_total", Help: "SMTP replies 4xx and 5xx, by reply code.",
		}, []string{"code"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealmail_smtp_replies_total", Help: "SMTP replies, by class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"class"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sealmail_commit_seconds", Help: "Group commit latency (encryption, segment write and fsync, audit entries).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sealmail_segment_fsync_seconds", Help: "Latency of a group commit's fsync of the segment (part of sealmail_commit_seconds).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		tls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealmail_messages_accepted_tls_total", Help: "Messages accepted, by the TLS version of their connection (\"none\": plaintext).",
		}, []string{"version"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sealmail_commit_batch_entries", Help: "Entries per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		lastMsg: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sealmail_journal_last_message_timestamp_seconds", Help: "Unix time of the last message accepted from a journaling source (by client IP).",
		}, []string{"source"}),
		sources: sources,
		seen:    make(map[string]bool),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(m.accepted, m.bytes, m.refused, m.replies, m.commit, m.fsync, m.batch, m.lastMsg, m.tls,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&archiveCollector{gauges: gauges, log: log},
		&gapCollector{expect: expect, gaps: gaps},
		gauge("sealmail_ready", "1 while /readyz answers 200 (the archive can take mail), else 0.", func() float64 {
			if ready() != nil {
				return 0
			}
			return 1
		}),
		gauge("sealmail_smtp_connections", "Open SMTP connections.", func() float64 { return float64(srv().Connections) }),
		gauge("sealmail_smtp_in_flight_bytes", "Bytes charged to the in-flight budget.", func() float64 { return float64(srv().InFlightBytes) }),
	)
	return m
}

// archiveCollector reads the archive's figures once per scrape.
type archiveCollector struct {
	gauges func() (archive.Gauges, error)
	log    *slog.Logger
}

var (
	descFree       = prometheus.NewDesc("sealmail_disk_free_bytes", "Free space on the data directory's file system.", nil, nil)
	descSegments   = prometheus.NewDesc("sealmail_segments", "Segments in the store.", nil, nil)
	descSealed     = prometheus.NewDesc("sealmail_segments_sealed", "Sealed segments in the store.", nil, nil)
	descMessages   = prometheus.NewDesc("sealmail_messages", "Messages in the archive.", nil, nil)
	descAudit      = prometheus.NewDesc("sealmail_audit_entries", "The audit log's last entry (its sequence number).", nil, nil)
	descCheckpoint = prometheus.NewDesc("sealmail_audit_last_checkpoint_timestamp_seconds", "Unix time of the audit log's newest signed checkpoint.", nil, nil)
	descUnsigned   = prometheus.NewDesc("sealmail_audit_unsigned_entries", "Audit entries after the newest signed checkpoint.", nil, nil)
	descBackup     = prometheus.NewDesc("sealmail_backup_last_success_timestamp_seconds", "Unix time the last backup completed (absent: none known).", nil, nil)
	descScrubBytes = prometheus.NewDesc("sealmail_scrub_bytes_total", "Bytes of sealed segments the scrubber read again.", nil, nil)
	descScrubSegs  = prometheus.NewDesc("sealmail_scrub_segments_total", "Sealed segments the scrubber checked.", nil, nil)
	descScrubFound = prometheus.NewDesc("sealmail_scrub_findings_total", "Damaged sealed segments the scrubber found.", nil, nil)
	descScrubLast  = prometheus.NewDesc("sealmail_scrub_last_pass_timestamp_seconds", "Unix time the scrubber's last full pass ended (absent: none yet).", nil, nil)
	descScrubProbs = prometheus.NewDesc("sealmail_scrub_last_pass_problems", "Damaged segments the last full pass found.", nil, nil)
	descScrubProg  = prometheus.NewDesc("sealmail_scrub_pass_progress_ratio", "Share of the sealed segments the pass under way has checked (0 when none runs).", nil, nil)
	descOffLast    = prometheus.NewDesc("sealmail_offsite_last_success_timestamp_seconds", "Unix time the last offsite sync to the S3 bucket completed (absent: none since the start).", nil, nil)
	descOffObjects = prometheus.NewDesc("sealmail_offsite_objects", "Objects the last offsite sync found in the bucket as the archive wants them.", nil, nil)
	descOffBytes   = prometheus.NewDesc("sealmail_offsite_uploaded_bytes_total", "Bytes uploaded to the offsite bucket.", nil, nil)
	descOffOps     = prometheus.NewDesc("sealmail_offsite_operations_total", "Offsite operations: object versions uploaded, locks extended, versions removed after their lock.", []string{"op"}, nil)
	descOffFail    = prometheus.NewDesc("sealmail_offsite_failures_total", "Offsite syncs that failed.", nil, nil)
	descReaderLag  = prometheus.NewDesc("sealmail_reader_lag_entries", "Audit entries the reader service's index has not covered yet, as of its last feed request (absent: no reader asked since the start).", nil, nil)
	descReaderSeen = prometheus.NewDesc("sealmail_reader_last_feed_timestamp_seconds", "Unix time of the reader service's last feed request (absent: none since the start; a locked or stopped reader asks none).", nil, nil)
)

func (c *archiveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFree, descSegments, descSealed, descMessages, descAudit, descCheckpoint, descUnsigned, descBackup,
		descScrubBytes, descScrubSegs, descScrubFound, descScrubLast, descScrubProbs, descScrubProg,
		descOffLast, descOffObjects, descOffBytes, descOffOps, descOffFail, descReaderLag, descReaderSeen} {
		ch <- d
	}
}

func (c *archiveCollector) Collect(ch chan<- prometheus.Metric) {
	g, err := c.gauges()
	if err != nil {
		c.log.Warn("metrics: archive figures", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descFree, prometheus.GaugeValue, float64(g.FreeBytes))
	ch <- prometheus.MustNewConstMetric(descSegments, prometheus.GaugeValue, float64(g.Segments))
	ch <- prometheus.MustNewConstMetric(descSealed, prometheus.GaugeValue, float64(g.Sealed))
	ch <- prometheus.MustNewConstMetric(descMessages, prometheus.GaugeValue, float64(g.Messages))
	ch <- prometheus.MustNewConstMetric(descAudit, prometheus.GaugeValue, float64(g.AuditEntries))
	if !g.LastCheckpoint.IsZero() {
		ch <- prometheus.MustNewConstMetric(descCheckpoint, prometheus.GaugeValue, float64(g.LastCheckpoint.Unix()))
	}
	ch <- prometheus.MustNewConstMetric(descUnsigned, prometheus.GaugeValue, float64(g.UnsignedEntries))
	if !g.LastBackup.IsZero() {
		ch <- prometheus.MustNewConstMetric(descBackup, prometheus.GaugeValue, float64(g.LastBackup.Unix()))
	}
	if !g.ReaderSeen.IsZero() {
		ch <- prometheus.MustNewConstMetric(descReaderLag, prometheus.GaugeValue, float64(g.AuditEntries-min(g.AuditEntries, g.ReaderSeq)))
		ch <- prometheus.MustNewConstMetric(descReaderSeen, prometheus.GaugeValue, float64(g.ReaderSeen.Unix()))
	}
	s := g.Scrub
	ch <- prometheus.MustNewConstMetric(descScrubBytes, prometheus.CounterValue, float64(s.BytesTotal))
	ch <- prometheus.MustNewConstMetric(descScrubSegs, prometheus.CounterValue, float64(s.SegmentsTotal))
	ch <- prometheus.MustNewConstMetric(descScrubFound, prometheus.CounterValue, float64(s.FindingsTotal))
	if p := s.Last; p != nil {
		ch <- prometheus.MustNewConstMetric(descScrubLast, prometheus.GaugeValue, float64(p.Ended.Unix()))
		ch <- prometheus.MustNewConstMetric(descScrubProbs, prometheus.GaugeValue, float64(len(p.Problems)))
	}
	progress := 0.0
	if p := s.Current; p != nil && p.Total > 0 {
		progress = float64(p.Segments) / float64(p.Total)
	}
	ch <- prometheus.MustNewConstMetric(descScrubProg, prometheus.GaugeValue, progress)
	if o := g.Offsite; o.Syncs > 0 {
		if !o.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(descOffLast, prometheus.GaugeValue, float64(o.LastSuccess.Unix()))
		}
		ch <- prometheus.MustNewConstMetric(descOffObjects, prometheus.GaugeValue, float64(o.Objects))
		ch <- prometheus.MustNewConstMetric(descOffBytes, prometheus.CounterValue, float64(o.UploadedBytes))
		ch <- prometheus.MustNewConstMetric(descOffOps, prometheus.CounterValue, float64(o.Uploaded), "upload")
		ch <- prometheus.MustNewConstMetric(descOffOps, prometheus.CounterValue, float64(o.Extended), "extend")
		ch <- prometheus.MustNewConstMetric(descOffOps, prometheus.CounterValue, float64(o.Removed), "remove")
		ch <- prometheus.MustNewConstMetric(descOffFail, prometheus.CounterValue, float64(o.Failures))
	}
}

// gapCollector exposes sealmail_journal_gap per [[journal.expect]] source:
// 1 during a gap, else 0.
type gapCollector struct {
	expect []string
	gaps   func() []archive.JournalGap
}

var descGap = prometheus.NewDesc("sealmail_journal_gap", "1 while a journal.expect source is silent beyond its max_silence, else 0.", []string{"source"}, nil)

func (c *gapCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descGap }

func (c *gapCollector) Collect(ch chan<- prometheus.Metric) {
	open := make(map[string]bool)
	for _, g := range c.gaps() {
		open[g.Source] = true
	}
	seen := make(map[string]bool)
	for _, s := range c.expect {
		if seen[s] {
			continue
		}
		seen[s] = true
		v := 0.0
		if open[s] {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descGap, prometheus.GaugeValue, v, s)
	}
}

// observeSync is the store's OnSegmentSync.
func (m *metrics) observeSync(took time.Duration) { m.fsync.Observe(took.Seconds()) }

// observeCommit is the store's OnCommitDone.
func (m *metrics) observeCommit(entries int, took time.Duration) {
	m.commit.Observe(took.Seconds())
	m.batch.Observe(float64(entries))
}

// ingester wraps the archive for smtpd and counts what it accepts and
// refuses.
func (m *metrics) ingester(ing smtpd.Ingester) smtpd.Ingester { return &countingIngester{ing, m} }

type countingIngester struct {
	ing smtpd.Ingester
	m   *metrics
}

func (c *countingIngester) Admit(ctx context.Context, size int64) error {
	return c.ing.Admit(ctx, size)
}

func (c *countingIngester) Ingest(ctx context.Context, env *sealmail.Envelope, data []byte) (sealmail.MessageID, error) {
	id, err := c.ing.Ingest(ctx, env, data)
	if err != nil {
		return id, err
	}
	c.m.accepted.Inc()
	c.m.bytes.Add(float64(len(data)))
	tlsVersion := env.TLS // "TLS 1.3": tls.VersionName of the connection
	if tlsVersion == "" {
		tlsVersion = "none"
	}
	c.m.tls.WithLabelValues(tlsVersion).Inc()
	c.m.source(env.ClientIP, time.Now())
	return id, nil
}

// reply is smtpd's OnReply: every reply by class, refusals (4xx, 5xx) by
// code. The codes are the server's own, so the label stays small.
func (m *metrics) reply(code int) {
	if code < 200 || code > 599 {
		return
	}
	m.replies.WithLabelValues(strconv.Itoa(code/100) + "xx").Inc()
	if code >= 400 {
		m.refused.WithLabelValues(strconv.Itoa(code)).Inc()
	}
}

// source records a message from client IP ip when ip is in a configured
// journaling source, for at most maxSourceLabels distinct IPs.
func (m *metrics) source(ip string, at time.Time) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return
	}
	addr = addr.Unmap()
	in := false
	for _, p := range m.sources {
		if p.Contains(addr) {
			in = true
			break
		}
	}
	if !in {
		return
	}
	label := addr.String()
	m.mu.Lock()
	if !m.seen[label] && len(m.seen) >= maxSourceLabels {
		m.mu.Unlock()
		return
	}
	m.seen[label] = true
	m.mu.Unlock()
	m.lastMsg.WithLabelValues(label).Set(float64(at.Unix()))
}

// metricsHandler serves /metrics, /healthz (the process answers) and
// /readyz (ready() returns nil: 200, else 503 with the reason).
func metricsHandler(reg *prometheus.Registry, ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// serveMetrics listens on addr and serves h until Shutdown of the returned
// server.
func serveMetrics(addr string, h http.Handler) (*http.Server, net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics listen on %s: %w", addr, err)
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, l, nil
}
