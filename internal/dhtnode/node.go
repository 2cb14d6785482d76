// Package dhtnode runs BitStorm's node of the mainline DHT (BEP 5) on
// github.com/anacrolix/dht/v2: one UDP socket shared by every torrent of the process, a
// routing table saved on exit and loaded on start (so that a restart starts warm), the
// bootstrap routers, and a bounded store of the peers other nodes announce to us.
//
// A Node lives beside the swarms, not inside one: the DHT peer source of each torrent
// (stages.DHT) runs its traversals through it, and peer sessions hand it the DHT ports
// that peers send (AddNode, for the BEP 5 port message). It returns errors and never
// logs above Debug: a DHT that cannot reach anyone (no internet, a test machine) must
// cost a download nothing.
package dhtnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	"golang.org/x/time/rate"
)

// DefaultBootstrap are the public routers a node asks when its routing table is empty:
// the ones libtorrent, Transmission and uTorrent ship. They answer find_node and
// get_peers with nodes, and never enter a routing table themselves.
var DefaultBootstrap = []string{
	"router.bittorrent.com:6881",
	"router.utorrent.com:6881",
	"dht.transmissionbt.com:6881",
	"dht.libtorrent.org:25401",
}

// Config configures a Node. The zero value of each field means its default.
type Config struct {
	// Addr is the UDP address to listen on (default ":6881", every interface). When its
	// port is taken, the node takes any free port of the same address instead.
	Addr string
	// Bootstrap are the HOST:PORT routers asked when the routing table is empty (default
	// DefaultBootstrap). Hosts are resolved each time they are needed.
	Bootstrap []string
	// StateFile holds the routing table and node id across runs: loaded by Start, saved
	// by Save and Close. "" keeps no state.
	StateFile string
	// AllowPrivate accepts nodes and peers on private, loopback and link-local addresses
	// (a LAN, a test network in a namespace). By default they are ignored, as libtorrent
	// ignores them on the internet: their nodes are other people's LANs. A bootstrap
	// router given as such an address turns this on.
	AllowPrivate bool
	// QueryTimeout is how long a query waits for its answer (default 2s, the library's).
	QueryTimeout time.Duration
	// NoMaintain turns off the table maintenance (bootstrap, bucket refresh, pings of
	// questionable nodes); traversals still fill the table. For tests.
	NoMaintain bool
	// Log receives the library's messages, all at Debug; default: discarded.
	Log *slog.Logger
}

// Node is a running DHT node. Its methods are safe for concurrent use.
type Node struct {
	srv          *dht.Server
	conn         net.PacketConn
	cfg          Config
	log          *slog.Logger
	saved        []NodeInfo    // nodes of the state file, starting points beside the routers; read-only
	pings        chan struct{} // bounds the pings AddNode starts
	hintsMu      sync.Mutex
	hints        []netip.AddrPort // AddNode's latest addresses (maxHints), starting points beside the routers
	wg           sync.WaitGroup
	ctx          context.Context // ends at Close
	cancel       context.CancelFunc
	closeOnce    sync.Once
	maintainDone chan struct{}
}

// Start listens on cfg.Addr and starts a node with the node id and nodes of cfg.StateFile,
// when it holds any. A missing or unreadable state file only means a cold start.
func Start(cfg Config) (*Node, error) {
	if cfg.Addr == "" {
		cfg.Addr = ":6881"
	}
	if cfg.Bootstrap == nil {
		cfg.Bootstrap = DefaultBootstrap
	}
	for _, b := range cfg.Bootstrap {
		host, _, err := net.SplitHostPort(b)
		if err != nil {
			return nil, fmt.Errorf("dht: bootstrap %q: want HOST:PORT: %w", b, err)
		}
		if a, err := netip.ParseAddr(host); err == nil && isPrivate(a) {
			cfg.AllowPrivate = true
		}
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 2 * time.Second
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("stage", "dht")
	conn, err := listen(cfg.Addr)
	if err != nil {
		return nil, err
	}
	st, err := LoadState(cfg.StateFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Debug("dht: ignoring the saved state", "file", cfg.StateFile, "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{conn: conn, cfg: cfg, log: log, pings: make(chan struct{}, 16), ctx: ctx, cancel: cancel}
	for _, ni := range st.Nodes {
		if n.allowed(ni.Addr) {
			n.saved = append(n.saved, ni)
		}
	}
	sc := dht.NewDefaultServerConfig()
	sc.Conn = conn
	sc.NodeId = st.ID // zero: a random one
	sc.NoSecurity = true
	sc.StartingNodes = n.startingNodes
	sc.PeerStore = newPeerStore()
	sc.Logger = anacrolixLogger(log)
	// BEP 44 (put and get of arbitrary items) is optional, and the library's store of
	// other people's items has no bound: such queries go unanswered.
	sc.OnQuery = func(q *krpc.Msg, _ net.Addr) bool { return q.Q != "put" && q.Q != "get" }
	sc.SendLimiter = rate.NewLimiter(50, 50)
	sc.QueryResendDelay = func() time.Duration { return cfg.QueryTimeout }
	if !cfg.AllowPrivate {
		sc.IPBlocklist = privateRanges{}
	}
	srv, err := dht.NewServer(sc)
	if err != nil {
		cancel()
		conn.Close()
		return nil, fmt.Errorf("dht: %w", err)
	}
	n.srv = srv
	if !cfg.NoMaintain {
		n.maintainDone = make(chan struct{})
		go func() {
			defer close(n.maintainDone)
			srv.TableMaintainer() // returns once the server is closed
		}()
	}
	log.Debug("dht node started", "addr", n.Addr(), "id", fmt.Sprintf("%x", srv.ID()), "saved_nodes", len(n.saved))
	return n, nil
}

// listen opens the UDP socket at addr, or at any free port of addr's host when its
// port is taken (another client on 6881).
func listen(addr string) (net.PacketConn, error) {
	conn, err := net.ListenPacket("udp", addr)
	if err == nil {
		return conn, nil
	}
	host, _, serr := net.SplitHostPort(addr)
	if serr != nil {
		return nil, fmt.Errorf("dht: listen: %w", err)
	}
	conn, err2 := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err2 != nil {
		return nil, fmt.Errorf("dht: listen: %w", err)
	}
	return conn, nil
}

// Addr is the UDP address the node listens on.
func (n *Node) Addr() netip.AddrPort {
	return n.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// ID is the node's id.
func (n *Node) ID() [20]byte { return n.srv.ID() }

// NumNodes is how many nodes the routing table holds.
func (n *Node) NumNodes() int { return n.srv.NumNodes() }

// maxHints bounds the addresses AddNode keeps as starting points.
const maxHints = 64

// startingNodes is where a traversal starts when the routing table is empty: the nodes
// of the state file, those AddNode was given (a trackerless torrent's "nodes", peers'
// port messages), then the bootstrap routers. The saved nodes come first, and the
// routers beside them, so that a stale state file costs one round of timeouts, not the
// DHT.
func (n *Node) startingNodes() ([]dht.Addr, error) {
	var out []dht.Addr
	for _, ni := range n.saved {
		out = append(out, dht.NewAddr(net.UDPAddrFromAddrPort(ni.Addr)))
	}
	n.hintsMu.Lock()
	for _, a := range n.hints {
		out = append(out, dht.NewAddr(net.UDPAddrFromAddrPort(a)))
	}
	n.hintsMu.Unlock()
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	var errs []error
	for _, hp := range n.cfg.Bootstrap {
		addrs, err := resolve(ctx, hp)
		if err != nil {
			errs = append(errs, err)
		}
		for _, a := range addrs {
			if n.allowed(a) {
				out = append(out, dht.NewAddr(net.UDPAddrFromAddrPort(a)))
			}
		}
	}
	if len(out) == 0 {
		errs = append(errs, errors.New("no saved node, no node given and no bootstrap router"))
		return nil, fmt.Errorf("dht: bootstrap: %w", errors.Join(errs...))
	}
	return out, nil
}

// resolve looks up the addresses of a HOST:PORT; an IP address needs no lookup.
func resolve(ctx context.Context, hostPort string) ([]netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(hostPort)
	if err != nil {
		return nil, err
	}
	port, err := net.DefaultResolver.LookupPort(ctx, "udp", portStr)
	if err != nil {
		return nil, err
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(a.Unmap(), uint16(port))}, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, len(ips))
	for i, ip := range ips {
		out[i] = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	}
	return out, nil
}

// allowed reports whether a may be a node or a peer: a routable unicast address with a
// port, and not a private one unless AllowPrivate.
func (n *Node) allowed(a netip.AddrPort) bool {
	ip := a.Addr().Unmap()
	if a.Port() == 0 || !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() {
		return false
	}
	return n.cfg.AllowPrivate || !isPrivate(ip)
}

// Result tells what one Announce traversal saw.
type Result struct {
	// Cold is set when the routing table was empty: the traversal started from the saved
	// nodes and the bootstrap routers.
	Cold bool
	// Contacted is how many nodes were queried, and Responded how many answered.
	Contacted, Responded int
	// Peers is how many peer addresses the nodes returned, repeats included.
	Peers int
}

// Announce runs one get_peers traversal toward infoHash (BEP 5), calls found with each
// peer address the nodes return (the same address may come more than once), and once
// the traversal has found the nodes closest to infoHash, announces port to them with
// their tokens (announce_peer, implied_port 0); port 0 announces nothing. It returns
// when the traversal and the announces are done, or when ctx ends (with ctx's error).
// found is called from the calling goroutine.
func (n *Node) Announce(ctx context.Context, infoHash [20]byte, port uint16, found func(netip.AddrPort)) (res Result, err error) {
	res.Cold = n.srv.NumNodes() == 0
	var opts []dht.AnnounceOpt
	if port != 0 {
		opts = append(opts, dht.AnnouncePeer(dht.AnnouncePeerOpts{Port: int(port)}))
	}
	a, err := n.srv.AnnounceTraversal(infoHash, opts...)
	if err != nil {
		return res, fmt.Errorf("dht: get_peers: %w", err)
	}
	defer func() {
		st := a.TraversalStats()
		res.Contacted, res.Responded = int(st.NumAddrsTried), int(st.NumResponses)
	}()
	// Our own announce comes back as a peer; when the socket is bound to an address, we
	// know it is ours.
	self := netip.AddrPortFrom(n.Addr().Addr().Unmap(), port)
	done := ctx.Done()
	for {
		select {
		case pv, ok := <-a.Peers:
			if !ok {
				return res, nil
			}
			for _, p := range pv.Peers {
				ip, ok := netip.AddrFromSlice(p.IP)
				if !ok || p.Port <= 0 || p.Port > 65535 {
					continue
				}
				ap := netip.AddrPortFrom(ip.Unmap(), uint16(p.Port))
				if !n.allowed(ap) || ap == self {
					continue
				}
				res.Peers++
				found(ap)
			}
		case <-done:
			// Stop the traversal and its announces; Peers closes promptly once the
			// queries in flight see the cancellation.
			a.Close()
			for range a.Peers {
			}
			return res, ctx.Err()
		}
	}
}

// AddNode takes a DHT node's address: a peer's, from its BEP 5 port message, or one of a
// trackerless torrent's "nodes". The node pings it, and adds it to the routing table if
// it answers; until then, and while the table is empty, it is also where a traversal
// starts (startingNodes), so that a traversal started at once can use it. It never
// blocks: when too many pings are in flight, the ping is dropped.
func (n *Node) AddNode(addr netip.AddrPort) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if !n.allowed(addr) || n.ctx.Err() != nil {
		return
	}
	n.hintsMu.Lock()
	if !slices.Contains(n.hints, addr) {
		if len(n.hints) == maxHints {
			n.hints = append(n.hints[:0], n.hints[1:]...)
		}
		n.hints = append(n.hints, addr)
	}
	n.hintsMu.Unlock()
	select {
	case n.pings <- struct{}{}:
	default:
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() { <-n.pings }()
		ctx, cancel := context.WithTimeout(n.ctx, 2*n.cfg.QueryTimeout)
		defer cancel()
		// A reply adds the node to the table: the server does that for every answer.
		res := n.srv.Query(ctx, dht.NewAddr(net.UDPAddrFromAddrPort(addr)), "ping", dht.QueryInput{})
		n.log.Debug("dht: pinged node from a port message", "node", addr, "err", res.ToError())
	}()
}

// Nodes returns the routing table's nodes that are not known bad.
func (n *Node) Nodes() []NodeInfo {
	var out []NodeInfo
	for _, ni := range n.srv.Nodes() {
		if a := ni.Addr.ToNodeAddrPort().AddrPort; a.IsValid() {
			out = append(out, NodeInfo{ID: ni.ID, Addr: netip.AddrPortFrom(a.Addr().Unmap(), a.Port())})
		}
	}
	return out
}

// Save writes the node id and the routing table to the state file, atomically. When
// the table is empty (no node answered this run), the nodes loaded at start are kept.
func (n *Node) Save() error {
	if n.cfg.StateFile == "" {
		return nil
	}
	nodes := n.Nodes()
	if len(nodes) == 0 {
		nodes = n.saved
	}
	return SaveState(n.cfg.StateFile, State{ID: n.srv.ID(), Nodes: nodes})
}

// closeGrace is how long Close waits for the table maintenance to end.
const closeGrace = 100 * time.Millisecond

// Close saves the state, stops the node and waits for its pings. It waits for the table
// maintenance only closeGrace: the library's maintenance queries ignore cancellation,
// and one in flight would hold a process's exit for up to QueryTimeout, for nothing (it
// ends by itself, on a closed socket, holding nothing of ours). It is safe to call more
// than once.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		err = n.Save()
		n.cancel()
		n.srv.Close()
		n.wg.Wait()
		if n.maintainDone != nil {
			select {
			case <-n.maintainDone:
			case <-time.After(closeGrace):
			}
		}
	})
	return err
}
