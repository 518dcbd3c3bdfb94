package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// sessionMetric is one per-session series read from node.Progress.
type sessionMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(s sessionJSON) float64
}

// sessionCollector exports every session's progress at scrape time.
type sessionCollector struct {
	src     progressSource
	metrics []sessionMetric
}

// newSessionCollector returns a collector over the sessions of src.
func newSessionCollector(src progressSource) *sessionCollector {
	labels := []string{"cid", "name"}
	m := func(name, help string, kind prometheus.ValueType, v func(s sessionJSON) float64) sessionMetric {
		return sessionMetric{prometheus.NewDesc("romap2p_session_"+name, help, labels, nil), kind, v}
	}
	return &sessionCollector{src: src, metrics: []sessionMetric{
		m("goodput_bytes_per_second", "Rate of new (useful) symbol bytes arriving.", prometheus.GaugeValue,
			func(s sessionJSON) float64 { return s.GoodputBps }),
		m("symbols_received_total", "Symbols received from upstreams.", prometheus.CounterValue,
			func(s sessionJSON) float64 { return float64(s.SymbolsIn) }),
		m("symbols_new_total", "Symbols received that were new (not duplicates).", prometheus.CounterValue,
			func(s sessionJSON) float64 { return float64(s.SymbolsNew) }),
		m("symbols_needed", "Source symbols of the content (K summed over blocks).", prometheus.GaugeValue,
			func(s sessionJSON) float64 { return float64(s.SymbolsNeeded) }),
		m("uploaded_bytes_total", "Bytes sent to children.", prometheus.CounterValue,
			func(s sessionJSON) float64 { return float64(s.UploadedBytes) }),
		m("child_peers", "Peers this node feeds (each over one or more stripes).", prometheus.GaugeValue,
			func(s sessionJSON) float64 { return float64(len(peersOf(s.Children))) }),
		m("parent_peers", "Peers feeding this node (each over one or more stripes; probes left out).", prometheus.GaugeValue,
			func(s sessionJSON) float64 { return float64(len(peersOf(s.Upstreams))) }),
		m("subscriptions", "Stripe subscriptions feeding this node (probes included).", prometheus.GaugeValue,
			func(s sessionJSON) float64 { return float64(len(s.Upstreams)) }),
		m("verified_blocks", "Source blocks decoded and verified.", prometheus.GaugeValue,
			func(s sessionJSON) float64 { return float64(s.BlocksDone) }),
		m("blocks", "Source blocks of the content.", prometheus.GaugeValue,
			func(s sessionJSON) float64 { return float64(s.Blocks) }),
		m("verified_bytes_total", "Bytes decoded and verified (whole blocks).", prometheus.CounterValue,
			func(s sessionJSON) float64 { return float64(s.BytesDone) }),
		m("progress_ratio", "Share of the content held, 0..1: verified blocks, or new symbols over those needed.", prometheus.GaugeValue,
			func(s sessionJSON) float64 { return s.Percent / 100 }),
		m("blamed_peers", "Peers proven to have sent bad data in this session (dropped as parents, refused as children).", prometheus.GaugeValue,
			func(s sessionJSON) float64 { return float64(len(s.Blamed)) }),
		m("bad_symbols_total", "Symbols dropped as wrong (failed their block tree, or differed from the decoded block).", prometheus.CounterValue,
			func(s sessionJSON) float64 { return float64(s.BadSymbols) }),
		m("size_bytes", "Size of the content.", prometheus.GaugeValue,
			func(s sessionJSON) float64 { return float64(s.Size) }),
		m("complete", "1 once this node has the whole content (source or complete), else 0.", prometheus.GaugeValue,
			func(s sessionJSON) float64 {
				if s.Role != "fetching" {
					return 1
				}
				return 0
			}),
	}}
}

// Describe implements prometheus.Collector.
func (c *sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (c *sessionCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range snapshot(c.src) {
		for _, m := range c.metrics {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s), s.CID, s.Name)
		}
	}
}

// metricsRegistry builds a registry with the session collector and the
// usual Go runtime and process collectors.
func metricsRegistry(src progressSource) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	// The session series, the Go runtime and the process; libp2p's own
	// metrics are on the default registry, gathered beside this one.
	for _, c := range []prometheus.Collector{
		newSessionCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return reg, nil
}

// startMetrics serves Prometheus metrics for src on addr.
func startMetrics(src progressSource, addr string) (*httpService, error) {
	reg, err := metricsRegistry(src)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{reg, libp2pGatherer{}}, promhttp.HandlerOpts{Registry: reg}))
	s, err := listenHTTP(addr, mux, false)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return s, nil
}

// libp2pGatherer gathers what libp2p registers on the default registry
// (resource manager, swarm, identify, ...), leaving out the Go and process
// collectors the session registry has already.
type libp2pGatherer struct{}

// Gather implements prometheus.Gatherer.
func (libp2pGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := prometheus.DefaultGatherer.Gather()
	out := mfs[:0]
	for _, mf := range mfs {
		if n := mf.GetName(); !strings.HasPrefix(n, "go_") && !strings.HasPrefix(n, "process_") {
			out = append(out, mf)
		}
	}
	return out, err
}
