package dhtnode

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
)

// levelCounter counts log records per level.
type levelCounter struct{ debug, info, warn atomic.Int64 }

func (c *levelCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *levelCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *levelCounter) WithGroup(string) slog.Handler            { return c }
func (c *levelCounter) Handle(_ context.Context, r slog.Record) error {
	switch {
	case r.Level >= slog.LevelWarn:
		c.warn.Add(1)
	case r.Level >= slog.LevelInfo:
		c.info.Add(1)
	default:
		c.debug.Add(1)
	}
	return nil
}

// startNode starts a node on 127.0.0.1 that bootstraps from the given nodes, with short
// query timeouts and no table maintenance; it is closed when the test ends.
func startNode(t *testing.T, cfg Config, bootstrap ...*Node) *Node {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	for _, b := range bootstrap {
		cfg.Bootstrap = append(cfg.Bootstrap, b.Addr().String())
	}
	if cfg.Bootstrap == nil {
		cfg.Bootstrap = []string{} // never the public routers
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = time.Second
	}
	cfg.NoMaintain = true
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// unusedUDP returns a UDP address on 127.0.0.1 that nothing listens on.
func unusedUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

func announce(t *testing.T, n *Node, ih [20]byte, port uint16) (Result, []netip.AddrPort) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var found []netip.AddrPort
	res, err := n.Announce(ctx, ih, port, func(a netip.AddrPort) { found = append(found, a) })
	if err != nil {
		t.Fatalf("Announce: %v", err)
	}
	return res, found
}

// TestDHTAnnounceAndFind: a node announces a port for an info hash to a router node, and
// another node that bootstraps from the same router finds it there, all on loopback.
func TestDHTAnnounceAndFind(t *testing.T) {
	router := startNode(t, Config{AllowPrivate: true})
	seeder := startNode(t, Config{}, router)
	leecher := startNode(t, Config{}, router)
	ih := [20]byte{1, 2, 3}

	res, _ := announce(t, seeder, ih, 7001)
	if !res.Cold || res.Responded == 0 {
		t.Fatalf("seeder's first traversal = %+v, want cold and answered", res)
	}
	waitStored(t, router, ih)
	res, found := announce(t, leecher, ih, 0)
	want := netip.MustParseAddrPort("127.0.0.1:7001")
	if res.Peers == 0 || !containsAddr(found, want) {
		t.Fatalf("leecher found %v (%+v), want %v", found, res, want)
	}
	if leecher.NumNodes() == 0 {
		t.Error("the leecher's routing table is empty after a traversal that was answered")
	}
}

// waitStored waits until n stores a peer for ih: the library answers announce_peer
// before it stores the peer, from another goroutine.
func waitStored(t *testing.T, n *Node, ih [20]byte) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); len(n.srv.PeerStore().GetPeers(ih)) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the announced peer was never stored")
		}
	}
}

func containsAddr(as []netip.AddrPort, a netip.AddrPort) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// TestDHTUnreachableBootstrap: a bootstrap router that does not answer makes a traversal
// that ends after one query timeout, answered by no one, without an error or a log line
// above Debug.
func TestDHTUnreachableBootstrap(t *testing.T) {
	var logs levelCounter
	n := startNode(t, Config{Bootstrap: []string{unusedUDP(t)}, QueryTimeout: 200 * time.Millisecond, Log: slog.New(&logs)})
	res, found := announce(t, n, [20]byte{9}, 6881)
	if !res.Cold || res.Responded != 0 || len(found) != 0 || res.Contacted != 1 {
		t.Errorf("traversal = %+v, found %v; want cold, one contacted, none answered", res, found)
	}
	if w, i := logs.warn.Load(), logs.info.Load(); w != 0 || i != 0 {
		t.Errorf("%d warnings and %d info lines, want none above Debug", w, i)
	}
}

// TestDHTAnnounceCancel: ending the context stops a traversal that waits on a silent
// router at once, not after the query timeout.
func TestDHTAnnounceCancel(t *testing.T) {
	n := startNode(t, Config{Bootstrap: []string{unusedUDP(t)}, QueryTimeout: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := n.Announce(ctx, [20]byte{9}, 6881, func(netip.AddrPort) {})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Announce after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second): // a bound, not a measure: an hour is what it would take
		t.Fatal("Announce did not return after its context was cancelled")
	}
}

// TestDHTNoBootstrap: a node with neither routers nor saved nodes fails a traversal at
// once, with an error, and sends nothing.
func TestDHTNoBootstrap(t *testing.T) {
	n := startNode(t, Config{})
	_, err := n.Announce(t.Context(), [20]byte{9}, 6881, func(netip.AddrPort) {})
	if err == nil {
		t.Fatal("Announce without any starting node = nil, want an error")
	}
}

// TestDHTWarmRestart: a node saves its id and table on Close; a node started from that
// file, whose only router answers nothing, keeps the id and finds the peer through the
// saved nodes.
func TestDHTWarmRestart(t *testing.T) {
	router := startNode(t, Config{AllowPrivate: true})
	seeder := startNode(t, Config{}, router)
	ih := [20]byte{4, 5, 6}
	announce(t, seeder, ih, 7002)
	waitStored(t, router, ih)

	state := filepath.Join(t.TempDir(), "state", "dht.dat")
	first := startNode(t, Config{StateFile: state}, router)
	announce(t, first, ih, 0)
	id := first.ID()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := LoadState(state)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != id || len(st.Nodes) == 0 {
		t.Fatalf("saved state: id %x, %d nodes; want id %x and the router", st.ID, len(st.Nodes), id)
	}

	second := startNode(t, Config{StateFile: state, Bootstrap: []string{unusedUDP(t)}})
	if second.ID() != id {
		t.Errorf("restarted node id %x, want the saved %x", second.ID(), id)
	}
	_, found := announce(t, second, ih, 0)
	if want := netip.MustParseAddrPort("127.0.0.1:7002"); !containsAddr(found, want) {
		t.Fatalf("after a warm restart found %v, want %v", found, want)
	}
}

// TestDHTAddNode: a node that learns another's address from a port message (BEP 5)
// pings it and puts it in its routing table.
func TestDHTAddNode(t *testing.T) {
	a := startNode(t, Config{AllowPrivate: true})
	b := startNode(t, Config{AllowPrivate: true})
	a.AddNode(b.Addr())
	for deadline := time.Now().Add(30 * time.Second); a.NumNodes() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the pinged node never entered the routing table")
		}
	}
	if got := a.Nodes(); len(got) != 1 || got[0].Addr != b.Addr() || got[0].ID != b.ID() {
		t.Errorf("table = %+v, want %v at %v", got, b.ID(), b.Addr())
	}
}

// TestDHTPrivateAddresses: private and loopback addresses are refused unless allowed, and
// a bootstrap router on such an address allows them.
func TestDHTPrivateAddresses(t *testing.T) {
	for _, tt := range []struct {
		addr    string
		private bool
	}{
		{"10.77.1.3", true}, {"192.168.1.1", true}, {"172.20.0.1", true}, {"127.0.0.1", true},
		{"169.254.0.9", true}, {"100.64.0.1", true}, {"::1", true}, {"fd00::1", true}, {"fe80::1", true},
		{"::ffff:10.0.0.1", true}, {"8.8.8.8", false}, {"2001:4860::8888", false}, {"172.32.0.1", false},
	} {
		if got := isPrivate(netip.MustParseAddr(tt.addr)); got != tt.private {
			t.Errorf("isPrivate(%s) = %v, want %v", tt.addr, got, tt.private)
		}
	}
	// No traffic: neither maintenance nor a traversal runs.
	public := startNode(t, Config{Bootstrap: []string{"router.example.org:6881"}})
	if public.cfg.AllowPrivate || public.allowed(netip.MustParseAddrPort("10.0.0.1:6881")) {
		t.Error("a node with a public router accepts private addresses")
	}
	if !public.allowed(netip.MustParseAddrPort("8.8.8.8:6881")) || public.allowed(netip.MustParseAddrPort("8.8.8.8:0")) {
		t.Error("allowed: a public address with a port must pass, one with port 0 must not")
	}
	lan := startNode(t, Config{Bootstrap: []string{"10.77.1.1:6881"}})
	if !lan.cfg.AllowPrivate {
		t.Error("a router on a private address did not allow private addresses")
	}
	if _, err := Start(Config{Addr: "127.0.0.1:0", Bootstrap: []string{"no-port"}}); err == nil {
		t.Error("Start with a bootstrap without a port = nil error")
	}
}

func TestDHTStateRoundTrip(t *testing.T) {
	st := State{ID: [20]byte{0xaa, 19: 0xbb}, Nodes: []NodeInfo{
		{ID: [20]byte{1}, Addr: netip.MustParseAddrPort("10.77.1.1:6881")},
		{ID: [20]byte{2}, Addr: netip.MustParseAddrPort("[2001:db8::1]:51413")},
		{ID: [20]byte{3}, Addr: netip.MustParseAddrPort("192.0.2.7:1")},
	}}
	data := MarshalState(st)
	if !bytes.HasPrefix(data, []byte("d2:id20:\xaa")) {
		t.Errorf("MarshalState = %q, want a dictionary that starts with the id", data)
	}
	got, err := UnmarshalState(data)
	// IPv4 nodes come first ("nodes"), then IPv6 ("nodes6").
	want := State{ID: st.ID, Nodes: []NodeInfo{st.Nodes[0], st.Nodes[2], st.Nodes[1]}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("UnmarshalState(MarshalState(%+v)) = %+v, %v", st, got, err)
	}
	for _, bad := range []string{"", "le", "de", "d2:id3:abce", "d2:id20:aaaaaaaaaaaaaaaaaaaa5:nodes3:abce",
		"d2:id20:aaaaaaaaaaaaaaaaaaaa5:nodesi1ee"} {
		if _, err := UnmarshalState([]byte(bad)); err == nil {
			t.Errorf("UnmarshalState(%q) = nil error", bad)
		}
	}
	path := filepath.Join(t.TempDir(), "a", "dht.dat")
	if err := SaveState(path, st); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadState(path); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadState = %+v, %v", got, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("%d files beside the state, want only it (no temporary left)", len(entries))
	}
	if _, err := LoadState(""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadState(\"\") = %v, want os.ErrNotExist", err)
	}
}

// FuzzDHTState: any bytes either fail to parse or parse into a state that round-trips.
func FuzzDHTState(f *testing.F) {
	f.Add(MarshalState(State{ID: [20]byte{1}, Nodes: []NodeInfo{{Addr: netip.MustParseAddrPort("10.0.0.1:1")}}}))
	f.Add([]byte("d2:id20:aaaaaaaaaaaaaaaaaaaa6:nodes638:" + string(make([]byte, 38)) + "e"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := UnmarshalState(data)
		if err != nil {
			return
		}
		if len(st.Nodes) > maxStateNodes {
			t.Fatalf("%d nodes, more than %d", len(st.Nodes), maxStateNodes)
		}
		again, err := UnmarshalState(MarshalState(st))
		if err != nil || again.ID != st.ID || len(again.Nodes) != len(st.Nodes) {
			t.Fatalf("round trip of %+v = %+v, %v", st, again, err)
		}
	})
}

func TestDHTPeerStore(t *testing.T) {
	s := newPeerStore()
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	ih := [20]byte{7}
	for i := range maxPeersPerHash + 10 {
		s.AddPeer(ih, krpcNodeAddr(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 6881)))
	}
	if got := len(s.GetPeers(ih)); got != maxPeersReturned {
		t.Errorf("GetPeers = %d peers, want %d", got, maxPeersReturned)
	}
	if got := len(s.peers[ih]); got != maxPeersPerHash {
		t.Errorf("stored %d peers, want the cap %d", got, maxPeersPerHash)
	}
	now = now.Add(peerTTL + time.Second)
	if got := s.GetPeers(ih); len(got) != 0 {
		t.Errorf("after the TTL GetPeers = %v, want none", got)
	}
}

func krpcNodeAddr(a netip.AddrPort) krpc.NodeAddr {
	var na krpc.NodeAddr
	na.FromAddrPort(a)
	return na
}
