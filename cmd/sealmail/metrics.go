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
	batch    prometheus.Histogram
	lastMsg  *prometheus.GaugeVec

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
	m.reg.MustRegister(m.accepted, m.bytes, m.refused, m.replies, m.commit, m.batch, m.lastMsg,
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
	descFree     = prometheus.NewDesc("sealmail_disk_free_bytes", "Free space on the data directory's file system.", nil, nil)
	descSegments = prometheus.NewDesc("sealmail_segments", "Segments in the store.", nil, nil)
	descSealed   = prometheus.NewDesc("sealmail_segments_sealed", "Sealed segments in the store.", nil, nil)
	descMessages = prometheus.NewDesc("sealmail_messages", "Messages in the archive.", nil, nil)
)

func (c *archiveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descFree
	ch <- descSegments
	ch <- descSealed
	ch <- descMessages
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
