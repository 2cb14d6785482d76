package stages

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bitstorm/bitstorm/internal/dhtnode"
)

// fakeDHT answers each Announce with the next scripted traversal, at once, and records
// when it was called and with what.
type fakeDHT struct {
	mu     sync.Mutex
	script []traversal
	calls  []dhtCall
	block  bool // Announce waits for its context to end
}

type traversal struct {
	res   dhtnode.Result
	err   error
	peers []netip.AddrPort
}

type dhtCall struct {
	at       time.Time
	infoHash [20]byte
	port     uint16
}

func (f *fakeDHT) Announce(ctx context.Context, ih [20]byte, port uint16, found func(netip.AddrPort)) (dhtnode.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, dhtCall{at: time.Now(), infoHash: ih, port: port})
	tr := traversal{res: dhtnode.Result{Contacted: 1, Responded: 1}} // past the script: a warm table
	if len(f.script) > 0 {
		tr, f.script = f.script[0], f.script[1:]
	}
	block := f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return dhtnode.Result{}, ctx.Err()
	}
	for _, p := range tr.peers {
		found(p)
	}
	return tr.res, tr.err
}

// dhtLogs counts the dht stage's records by level.
type dhtLogs struct{ info, warn atomic.Int64 }

func (l *dhtLogs) Enabled(context.Context, slog.Level) bool { return true }
func (l *dhtLogs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *dhtLogs) WithGroup(string) slog.Handler            { return l }
func (l *dhtLogs) Handle(_ context.Context, r slog.Record) error {
	switch {
	case r.Level >= slog.LevelWarn:
		l.warn.Add(1)
	case r.Level >= slog.LevelInfo:
		l.info.Add(1)
	}
	return nil
}

// TestDHTSchedule runs the DHT source in a bubble of fake time against a scripted node:
// a cold start that reaches no one is retried after Retry, doubled; once the table is
// warm the traversal repeats every Interval; a failure after that retries after Retry
// again. Every traversal's peers come out once each (the peer list keeps one entry per
// address, and takes back one it forgot), the swarm's info hash and port are announced, the
// run never fails, and a DHT that reaches no one logs one Info line, no more.
func TestDHTSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, c := netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"), netip.MustParseAddrPort("10.0.0.3:3")
		node := &fakeDHT{script: []traversal{
			{res: dhtnode.Result{Cold: true, Contacted: 4}},                              // routers silent
			{res: dhtnode.Result{Cold: true, Contacted: 4}},                              // still silent
			{res: dhtnode.Result{Cold: true, Contacted: 4}, err: errors.New("no nodes")}, // and an error
			{res: dhtnode.Result{Cold: true, Contacted: 9, Responded: 3, Peers: 2}, peers: []netip.AddrPort{a, b}},
			{res: dhtnode.Result{Contacted: 20, Responded: 12, Peers: 3}, peers: []netip.AddrPort{b, c, a}},
			{res: dhtnode.Result{Contacted: 20}}, // the table went stale
			{res: dhtnode.Result{Contacted: 20, Responded: 12}},
		}}
		var logs dhtLogs
		var failed atomic.Int64
		sw := NewSwarm([20]byte{'d', 'h', 't'}, [20]byte{'p'}, 6999, slog.New(&logs), func(error) { failed.Add(1) })
		ctx, cancel := context.WithCancel(t.Context())
		d := &DHT{Node: node, Interval: 15 * time.Minute, Retry: 15 * time.Second}
		src := d.Open(ctx, sw)
		start := time.Now()

		time.Sleep(time.Hour)
		synctest.Wait()
		cancel()
		var got []netip.AddrPort
		for e := range src.Out() { // closes once ctx has ended
			got = append(got, e.(*PeerAddr).Addr)
		}

		if want := []netip.AddrPort{a, b, b, c, a}; !equalAddrs(got, want) {
			t.Errorf("emitted %v, want %v (each traversal's peers once)", got, want)
		}
		// Cold or failed: 15s, 30s, 60s, 120s (cold but answered), then warm: 15m; stale:
		// 15s; then warm again: 15m.
		offsets := []time.Duration{0, 15 * time.Second, 45 * time.Second, 105 * time.Second, 225 * time.Second,
			225*time.Second + 15*time.Minute, 240*time.Second + 15*time.Minute, 240*time.Second + 30*time.Minute,
			240*time.Second + 45*time.Minute}
		node.mu.Lock()
		defer node.mu.Unlock()
		if len(node.calls) != len(offsets) {
			t.Fatalf("%d traversals in an hour, want %d", len(node.calls), len(offsets))
		}
		for i, call := range node.calls {
			if d := call.at.Sub(start); d != offsets[i] {
				t.Errorf("traversal %d at %v, want %v", i, d, offsets[i])
			}
			if call.infoHash != sw.InfoHash || call.port != sw.Port {
				t.Errorf("traversal %d for %x port %d, want %x port %d", i, call.infoHash, call.port, sw.InfoHash, sw.Port)
			}
		}
		if n := failed.Load(); n != 0 {
			t.Errorf("the DHT called Fail %d times, want never", n)
		}
		// One Info line for the first failure, one per answered traversal (5 of them).
		if w, i := logs.warn.Load(), logs.info.Load(); w != 0 || i != 6 {
			t.Errorf("%d warnings and %d info lines, want none and 6", w, i)
		}
	})
}

// TestDHTCancelMidTraversal: the outlet closes when the run ends during a traversal.
func TestDHTCancelMidTraversal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		node := &fakeDHT{block: true}
		sw := NewSwarm([20]byte{1}, [20]byte{2}, 1, slog.New(slog.DiscardHandler), nil)
		ctx, cancel := context.WithCancel(t.Context())
		src := (&DHT{Node: node}).Open(ctx, sw)
		synctest.Wait() // blocked in Announce
		cancel()
		for range src.Out() {
			t.Error("an address from a traversal that found none")
		}
	})
}

func equalAddrs(a, b []netip.AddrPort) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// nodeRecorder is a DHTContact that records the nodes offered to it.
type nodeRecorder struct {
	mu    sync.Mutex
	added []netip.AddrPort
	done  chan struct{}
	want  int
}

func (r *nodeRecorder) Addr() netip.AddrPort { return netip.MustParseAddrPort("127.0.0.1:6881") }

func (r *nodeRecorder) AddNode(a netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.added = append(r.added, a)
	if len(r.added) == r.want {
		close(r.done)
	}
}

// TestDHTTorrentNodes: a trackerless torrent's nodes (BEP 5 "nodes") are offered to the
// DHT node when the DHT source opens: addresses as they are, a name resolved, what does
// not parse or resolve skipped.
func TestDHTTorrentNodes(t *testing.T) {
	rec := &nodeRecorder{done: make(chan struct{}), want: 3}
	sw := NewSwarm([20]byte{'n'}, [20]byte{'p'}, 6999, slog.New(slog.NewTextHandler(io.Discard, nil)), func(error) {})
	sw.DHT = rec
	d := &DHT{Node: &fakeDHT{}, Nodes: []string{"10.0.0.9:6881", "no-port", "[::1]:7000", "10.0.0.10:0", "localhost:6882", "host.invalid:1"}}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	src := d.Open(ctx, sw)
	select {
	case <-rec.done:
	case <-ctx.Done():
	}
	cancel()
	for range src.Out() {
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.added) < 3 || rec.added[0] != netip.MustParseAddrPort("10.0.0.9:6881") || rec.added[1] != netip.MustParseAddrPort("[::1]:7000") ||
		!rec.added[2].Addr().IsLoopback() || rec.added[2].Port() != 6882 {
		t.Errorf("nodes offered %v, want 10.0.0.9:6881, [::1]:7000, then localhost's addresses on 6882", rec.added)
	}
}
