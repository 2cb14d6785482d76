package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/dhtnode"
	"github.com/bitstorm/bitstorm/internal/magnet"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// stageLevels counts the records of one stage (its "stage" attribute) by level.
type stageLevels struct {
	stage  string
	mu     sync.Mutex
	counts map[slog.Level]int
}

func (s *stageLevels) handler() slog.Handler { return &stageHandler{s: s} }

func (s *stageLevels) count(atLeast slog.Level) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for l, c := range s.counts {
		if l >= atLeast {
			n += c
		}
	}
	return n
}

type stageHandler struct {
	s     *stageLevels
	stage string
}

func (h *stageHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *stageHandler) WithGroup(string) slog.Handler            { return h }
func (h *stageHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	for _, a := range as {
		if a.Key == "stage" {
			c.stage = a.Value.String()
		}
	}
	return &c
}
func (h *stageHandler) Handle(_ context.Context, r slog.Record) error {
	stage := h.stage
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "stage" {
			stage = a.Value.String()
		}
		return true
	})
	if stage == h.s.stage {
		h.s.mu.Lock()
		if h.s.counts == nil {
			h.s.counts = make(map[slog.Level]int)
		}
		h.s.counts[r.Level]++
		h.s.mu.Unlock()
	}
	return nil
}

// watchedNode counts the traversals started through a DHT node, and those that ended
// because the run did.
type watchedNode struct {
	stages.DHTNode
	started, cancelled atomic.Int64
}

func (w *watchedNode) Announce(ctx context.Context, ih [20]byte, port uint16, found func(netip.AddrPort)) (dhtnode.Result, error) {
	w.started.Add(1)
	res, err := w.DHTNode.Announce(ctx, ih, port, found)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		w.cancelled.Add(1)
	}
	return res, err
}

// silentRouter returns the address of a UDP socket on 127.0.0.1 that reads nothing: a
// bootstrap router that never answers.
func silentRouter(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().String()
}

// TestDHTBootstrapFailureDoesNotDelayDownload downloads from a --peer with the DHT on,
// whose only bootstrap router never answers and whose queries wait an hour: the download
// completes (within the test's minute, so without waiting on the DHT), the traversal in
// flight is cut when the run ends, and the DHT logs nothing at Warn or above.
func TestDHTBootstrapFailureDoesNotDelayDownload(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 50, "dht-off", 32<<10, 500_001)
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	levels := &stageLevels{stage: "dht"}
	log := slog.New(levels.handler())
	node, err := dhtnode.Start(dhtnode.Config{Addr: "127.0.0.1:0", Bootstrap: []string{silentRouter(t)},
		QueryTimeout: time.Hour, NoMaintain: true, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	watched := &watchedNode{DHTNode: node}
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)

	p, err := pipeline.New(tor.Meta, pipeline.WithLogger(log), withConfig(pipeline.Config{}),
		pipeline.WithPeerSource(addrs(honest)), pipeline.WithDHT(watched), pipeline.WithStorage(store))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	if s, c := watched.started.Load(), watched.cancelled.Load(); s == 0 || c != s {
		t.Errorf("%d traversals started, %d cut by the end of the run; want at least one, all cut", s, c)
	}
	if n := levels.count(slog.LevelDebug); n == 0 {
		t.Error("no record from the dht stage at all: was the DHT in the graph?")
	}
	if n := levels.count(slog.LevelWarn); n != 0 {
		t.Errorf("%d records from the dht stage at Warn or above, want none", n)
	}
}

// TestDHTPrivateTorrent: a private torrent (BEP 27) never asks the DHT, even when given
// one; a public one does.
func TestDHTPrivateTorrent(t *testing.T) {
	for _, private := range []bool{true, false} {
		tor := stagetest.NewTorrent(t, 51, "private", 32<<10, 100_000)
		tor.Meta.Info.Private = private
		honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
		node := &watchedNode{DHTNode: idleDHT{}}
		err, _ := run(t, tor, time.Minute, pipeline.WithPeerSource(addrs(honest)), pipeline.WithDHT(node),
			pipeline.WithStorage(stagetest.NewMemStorage(tor.Meta.Info.Length)))
		if err != nil {
			t.Fatalf("private %v: Run() = %v", private, err)
		}
		if got := node.started.Load() > 0; got == private {
			t.Errorf("private %v: DHT asked: %v", private, got)
		}
	}
}

// idleDHT is a DHT node that finds nothing until the traversal's context ends.
type idleDHT struct{}

func (idleDHT) Announce(ctx context.Context, _ [20]byte, _ uint16, _ func(netip.AddrPort)) (dhtnode.Result, error) {
	<-ctx.Done()
	return dhtnode.Result{}, ctx.Err()
}

// TestDHTMagnetWithoutTrackers: a magnet link with neither tr nor x.pe is an error
// without a DHT, and a metadata fetch through the DHT with one.
func TestDHTMagnetWithoutTrackers(t *testing.T) {
	mag := &magnet.Magnet{InfoHash: [20]byte{'l', 'o', 'n', 'e'}}
	cfg := withConfig(pipeline.Config{OutDir: t.TempDir(), NoPeersTimeout: time.Second})
	if _, err := pipeline.FetchMetadata(t.Context(), mag, cfg); err == nil {
		t.Fatal("FetchMetadata without trackers, peers or DHT = nil error")
	}
	node := &watchedNode{DHTNode: idleDHT{}}
	_, err := pipeline.FetchMetadata(t.Context(), mag, cfg, pipeline.WithDHT(node))
	if !errors.Is(err, pipeline.ErrNoMetadata) || node.started.Load() == 0 {
		t.Fatalf("FetchMetadata with a DHT that finds no one = %v after %d traversals; want ErrNoMetadata after one",
			err, node.started.Load())
	}
}

// gatedDHT is a DHT node that finds peer once open reports true, and nothing before.
type gatedDHT struct {
	peer netip.AddrPort
	open func() bool
}

func (g gatedDHT) Announce(ctx context.Context, _ [20]byte, _ uint16, found func(netip.AddrPort)) (dhtnode.Result, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !g.open() {
		select {
		case <-ctx.Done():
			return dhtnode.Result{}, ctx.Err()
		case <-tick.C:
		}
	}
	found(g.peer)
	return dhtnode.Result{Contacted: 1, Responded: 1, Peers: 1}, nil
}

// TestDHTDeadTrackers: beside the DHT, trackers that never answer do not end the run. The
// torrent's only tracker refuses every announce; the DHT finds the seeder only after the
// tracker's fifth failed round, the one that ends a run without the DHT
// (ErrTrackerUnreachable), and the download completes.
func TestDHTDeadTrackers(t *testing.T) {
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/announce" // refused once closed
	ln.Close()
	tor := stagetest.NewTorrent(t, 52, "dead-trackers", 32<<10, 200_000).WithAnnounce(t, dead)
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	var failed atomic.Int32 // TrackerFailed events: one per round, with one tracker
	events := func(e stages.Event) {
		if f, ok := e.(stages.TrackerFailed); ok && f.URL == dead {
			failed.Add(1)
		}
	}
	node := gatedDHT{peer: honest.Addr(), open: func() bool { return failed.Load() >= 5 }}
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	p, err := pipeline.New(tor.Meta, pipeline.WithEvents(events), withConfig(pipeline.Config{}),
		pipeline.WithDHT(node), pipeline.WithStorage(store))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run() = %v after %d failed announces, want nil", err, failed.Load())
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
}

// TestDHTTorrentNodes: a trackerless torrent whose "nodes" (BEP 5) name a DHT node that
// knows the seeder downloads through a DHT node with no bootstrap router and no saved
// node: the torrent's node is where its traversal starts.
func TestDHTTorrentNodes(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 52, "dht-nodes", 32<<10, 300_001)
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	start := func(bootstrap ...string) *dhtnode.Node {
		n, err := dhtnode.Start(dhtnode.Config{Addr: "127.0.0.1:0", Bootstrap: append([]string{}, bootstrap...),
			AllowPrivate: true, QueryTimeout: 5 * time.Second, NoMaintain: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	router := start()
	announcer := start(router.Addr().String())
	// The seeder's port, announced from 127.0.0.1: the router now lists the fake peer.
	if _, err := announcer.Announce(ctx, tor.Meta.InfoHash, honest.Addr().Port(), func(netip.AddrPort) {}); err != nil {
		t.Fatal(err)
	}
	leecher := start() // no router, no state file
	tor.Meta.Nodes = []string{router.Addr().String()}
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	p, err := pipeline.New(tor.Meta, withConfig(pipeline.Config{}), pipeline.WithDHT(leecher), pipeline.WithStorage(store))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
}
