package stages

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/bitstorm/bitstorm/internal/dhtnode"
	"github.com/reugn/go-streams"
)

// DHTNode is the DHT node a DHT source runs its traversals through (*dhtnode.Node).
type DHTNode interface {
	// Announce runs one get_peers traversal toward infoHash, calls found (from the
	// calling goroutine) with each peer address the nodes return, then announces port
	// to the closest nodes (none when port is 0). It returns when done or when ctx ends.
	Announce(ctx context.Context, infoHash [20]byte, port uint16, found func(netip.AddrPort)) (dhtnode.Result, error)
}

var _ DHTNode = (*dhtnode.Node)(nil)

// DHT is the PeerSource of the mainline DHT (BEP 5). For the swarm's info hash it runs a
// get_peers traversal toward the nodes closest to it, announces our port (Swarm.Port,
// implied_port 0) to them with the tokens they returned, and emits each peer found once.
// It runs the traversal again every Interval: BEP 5 tokens are good for about 10 minutes,
// so each announce needs a fresh traversal, and libtorrent re-announces every 15. A
// traversal that started from an empty routing table (or failed) is retried after Retry,
// doubled each time up to Interval: the first traversal of a cold start mostly fills the
// table, and the second, from it, reaches the nodes that hold the peers.
//
// The DHT never ends a run (it never calls Swarm.Fail) and a DHT that reaches no one
// costs nothing but a Debug line per traversal, and one Info line the first time.
// Out: *PeerAddr, each address once per traversal; the outlet closes when ctx ends.
type DHT struct {
	Node     DHTNode
	Interval time.Duration // between traversals (default 15m)
	Retry    time.Duration // first wait after a cold or failed traversal (default 15s)
	Timeout  time.Duration // bound on one traversal and its announces (default 2m)
	// Nodes are the DHT nodes a trackerless torrent names (BEP 5 "nodes", "host:port"):
	// each is resolved and offered to the node (Swarm.DHT's AddNode, which pings it and
	// keeps it if it answers), beside the first traversal.
	Nodes []string
}

var _ PeerSource = (*DHT)(nil)

// Open starts the traversals.
func (d *DHT) Open(ctx context.Context, sw *Swarm) streams.Source {
	out := make(chan any, 64)
	if len(d.Nodes) > 0 && sw.DHT != nil {
		// Addresses before the first traversal, which can then start from them; names
		// as they resolve.
		if names := addNodes(sw.DHT, d.Nodes); len(names) > 0 {
			go resolveNodes(ctx, sw.DHT, names, sw.Log)
		}
	}
	go d.run(ctx, sw, out)
	return NewSource(out)
}

// nodeLookupTimeout bounds the name lookup of a torrent's DHT nodes.
const nodeLookupTimeout = 10 * time.Second

// addNodes offers to node those of a torrent's DHT nodes that are addresses, and returns
// the others, names to resolve. A node that does not parse is skipped.
func addNodes(node DHTContact, nodes []string) (names []string) {
	for _, n := range nodes {
		host, port, ok := splitNode(n)
		if !ok {
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			node.AddNode(netip.AddrPortFrom(ip, port))
		} else {
			names = append(names, n)
		}
	}
	return names
}

func splitNode(n string) (host string, port uint16, ok bool) {
	host, portStr, err := net.SplitHostPort(n)
	p, perr := strconv.ParseUint(portStr, 10, 16)
	return host, uint16(p), err == nil && perr == nil && p != 0
}

// resolveNodes offers to node each address of the DHT nodes named by names; a name that
// does not resolve is skipped.
func resolveNodes(ctx context.Context, node DHTContact, names []string, log *slog.Logger) {
	for _, n := range names {
		host, port, _ := splitNode(n)
		lctx, cancel := context.WithTimeout(ctx, nodeLookupTimeout)
		ips, err := net.DefaultResolver.LookupNetIP(lctx, "ip", host)
		cancel()
		if err != nil {
			log.Debug("dht: torrent's node not resolved", "stage", "dht", "node", n, "err", err)
			continue
		}
		for _, ip := range ips {
			node.AddNode(netip.AddrPortFrom(ip.Unmap(), port))
		}
	}
}

func (d *DHT) run(ctx context.Context, sw *Swarm, out chan<- any) {
	defer close(out)
	defer func() {
		if r := recover(); r != nil { // the DHT never crashes a download
			sw.Log.Error("dht: panic", "stage", "dht", "panic", fmt.Sprint(r))
		}
	}()
	log := sw.Log.With("stage", "dht")
	interval, retry, timeout := cmp0(d.Interval, 15*time.Minute), cmp0(d.Retry, 15*time.Second), cmp0(d.Timeout, 2*time.Minute)
	failures, saidFailed := 0, false
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		// Each traversal offers every peer it finds, once: the peer list (PeerList.Add)
		// keeps one entry per address, and takes back a peer it forgot (dead, or gone for
		// a while) when the DHT finds it again.
		seen := make(map[netip.AddrPort]bool)
		tctx, cancel := context.WithTimeout(ctx, timeout)
		res, err := d.Node.Announce(tctx, sw.InfoHash, sw.Port, func(a netip.AddrPort) {
			if seen[a] {
				return
			}
			seen[a] = true
			select {
			case out <- &PeerAddr{Addr: a, From: FromDHT}:
			case <-ctx.Done():
			}
		})
		cancel()
		if ctx.Err() != nil {
			return
		}
		wait := interval
		if err != nil || res.Responded == 0 || res.Cold {
			wait = min(retry<<min(failures, 16), interval)
			failures++
		} else {
			failures = 0
		}
		attrs := []any{"nodes", res.Responded, "contacted", res.Contacted, "peers", res.Peers, "offered", len(seen), "next", wait}
		switch {
		case err == nil && res.Responded > 0:
			log.Info("dht announced", attrs...)
		case !saidFailed:
			saidFailed = true
			log.Info("dht: no node answered yet; retrying quietly", append(attrs, "err", err)...)
		default:
			log.Debug("dht: no node answered", append(attrs, "err", err)...)
		}
		timer.Reset(wait)
	}
}
