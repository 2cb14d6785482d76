package pipeline_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/dhtnode"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// portNode is a DHT node for the port message alone: it finds no peers, says its UDP
// address, and records the nodes peers name.
type portNode struct {
	addr  netip.AddrPort
	mu    sync.Mutex
	added []netip.AddrPort
	seen  chan struct{}
}

func (n *portNode) Announce(ctx context.Context, _ [20]byte, _ uint16, _ func(netip.AddrPort)) (dhtnode.Result, error) {
	<-ctx.Done()
	return dhtnode.Result{}, ctx.Err()
}

func (n *portNode) Addr() netip.AddrPort { return n.addr }

func (n *portNode) AddNode(a netip.AddrPort) {
	n.mu.Lock()
	n.added = append(n.added, a)
	n.mu.Unlock()
	select {
	case n.seen <- struct{}{}:
	default:
	}
}

// TestPortMessage: with a DHT node, BitStorm sets the DHT bit, sends a peer that sets it
// too our node's UDP port (BEP 5 port message), and adds the node the peer names, at the
// peer's IP, to its DHT.
func TestPortMessage(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 61, "port", 32<<10, 100_000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := make(chan uint16, 1)
	peer := stagetest.NewHostilePeer(t, tor, stagetest.DHTHandshake, stagetest.PortExchange(6999, got))
	node := &portNode{addr: netip.MustParseAddrPort("127.0.0.1:7001"), seen: make(chan struct{}, 1)}
	p, err := pipeline.New(tor.Meta, pipeline.WithStorage(stagetest.NewMemStorage(tor.Meta.Info.Length)),
		pipeline.WithPeerSource(stages.StaticPeers{peer.Addr()}), pipeline.WithDHT(node),
		pipeline.WithConfig(pipeline.Config{NoListen: true}))
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	select {
	case port := <-got:
		if port != 7001 {
			t.Errorf("our port message says %d, want 7001", port)
		}
	case <-ctx.Done():
		t.Fatal("no port message from BitStorm")
	}
	select {
	case <-node.seen:
	case <-ctx.Done():
		t.Fatal("the peer's DHT node was never added")
	}
	stop()
	<-done
	node.mu.Lock()
	defer node.mu.Unlock()
	if want := netip.AddrPortFrom(peer.Addr().Addr(), 6999); len(node.added) != 1 || node.added[0] != want {
		t.Errorf("nodes added = %v, want [%v]", node.added, want)
	}
}
