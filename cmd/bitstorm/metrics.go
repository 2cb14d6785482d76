package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/bitstorm/bitstorm/stages"
)

// metricsServer serves --metrics: the torrents' counters in the Prometheus text format
// at /metrics, beside the process metrics of VictoriaMetrics/metrics (go_*, process_*).
// It serves where it is told, without authentication: a loopback address unless the
// network is trusted (README.md).
type metricsServer struct {
	ln     net.Listener
	srv    *http.Server
	r      *reporter
	log    *slog.Logger
	served chan struct{} // closed when Serve returns; nil until serve

	mu  sync.Mutex // one refresh of set at a time
	set *metrics.Set
}

// torrentMetrics are the per-torrent families, each with the label info_hash, and the
// family of its sum over the torrents ("" for none). README.md's table lists them.
var torrentMetrics = []struct {
	name, total string
	counter     bool
	value       func(t *tracked, st stages.Stats) int64
}{
	{"bitstorm_torrent_downloaded_bytes_total", "bitstorm_downloaded_bytes_total", true,
		func(_ *tracked, st stages.Stats) int64 { return st.Downloaded }},
	{"bitstorm_torrent_uploaded_bytes_total", "bitstorm_uploaded_bytes_total", true,
		func(_ *tracked, st stages.Stats) int64 { return st.Uploaded }},
	{"bitstorm_torrent_wasted_bytes_total", "bitstorm_wasted_bytes_total", true,
		func(_ *tracked, st stages.Stats) int64 { return st.Wasted }},
	{"bitstorm_torrent_pieces_verified_total", "bitstorm_pieces_verified_total", true,
		func(t *tracked, _ stages.Stats) int64 { return t.piecesVerified.Load() }},
	{"bitstorm_torrent_pieces_failed_total", "bitstorm_pieces_failed_total", true,
		func(t *tracked, _ stages.Stats) int64 { return t.piecesFailed.Load() }},
	{"bitstorm_torrent_peers_banned_total", "bitstorm_peers_banned_total", true,
		func(t *tracked, _ stages.Stats) int64 { return t.peersBanned.Load() }},
	{"bitstorm_torrent_tracker_failures_total", "bitstorm_tracker_failures_total", true,
		func(t *tracked, _ stages.Stats) int64 { return t.trackerFails.Load() }},
	{"bitstorm_torrent_peers_discarded_total", "bitstorm_peers_discarded_total", true,
		func(t *tracked, _ stages.Stats) int64 { return t.peersDiscarded.Load() }},
	{"bitstorm_torrent_peers", "bitstorm_peers", false,
		func(_ *tracked, st stages.Stats) int64 { return int64(st.Peers) }},
	{"bitstorm_torrent_verified_bytes", "bitstorm_verified_bytes", false,
		func(_ *tracked, st stages.Stats) int64 { return st.Verified }},
	{"bitstorm_torrent_size_bytes", "", false,
		func(_ *tracked, st stages.Stats) int64 { return st.Total }},
}

// listenMetrics opens addr's listener; serve starts answering there.
func listenMetrics(addr string, r *reporter, log *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	metrics.ExposeMetadata(true) // # TYPE lines: counters are told from gauges
	m := &metricsServer{ln: ln, r: r, log: log, set: metrics.NewSet()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", m.handle)
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return m, nil
}

func (m *metricsServer) serve() {
	m.served = make(chan struct{})
	m.log.Info("serving metrics", "url", fmt.Sprintf("http://%s/metrics", m.ln.Addr()))
	go func() {
		defer close(m.served)
		if err := m.srv.Serve(m.ln); !errors.Is(err, http.ErrServerClosed) {
			m.log.Warn("metrics server stopped", "err", err)
		}
	}()
}

func (m *metricsServer) close() {
	m.srv.Close()
	m.ln.Close()
	if m.served != nil {
		<-m.served
	}
}

func (m *metricsServer) handle(w http.ResponseWriter, _ *http.Request) {
	var b bytes.Buffer
	m.mu.Lock()
	m.refresh()
	m.set.WritePrometheus(&b)
	m.mu.Unlock()
	metrics.WriteProcessMetrics(&b)
	metrics.WriteFDMetrics(&b)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write(b.Bytes())
}

// refresh sets the set's metrics to the torrents' values now.
func (m *metricsServer) refresh() {
	totals := make([]int64, len(torrentMetrics))
	var states [len(stateNames)]int
	for _, t := range m.r.list() {
		st := t.stats()
		for i, f := range torrentMetrics {
			v := f.value(t, st)
			totals[i] += v
			m.put(fmt.Sprintf("%s{info_hash=%q}", f.name, t.hex), f.counter, v)
		}
		states[t.state.Load()]++
	}
	for i, f := range torrentMetrics {
		if f.total != "" {
			m.put(f.total, f.counter, totals[i])
		}
	}
	for st, n := range states {
		m.put(fmt.Sprintf("bitstorm_torrents{state=%q}", stateNames[st]), false, int64(n))
	}
}

func (m *metricsServer) put(name string, counter bool, v int64) {
	if counter {
		m.set.GetOrCreateCounter(name).Set(uint64(max(v, 0)))
	} else {
		m.set.GetOrCreateGauge(name, nil).Set(float64(v))
	}
}
