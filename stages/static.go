package stages

import (
	"context"
	"net/netip"

	"github.com/reugn/go-streams"
)

// StaticPeers is a PeerSource that emits a fixed list of addresses (the CLI's --peer, tests),
// then stays open until the run ends. Out: *PeerAddr.
type StaticPeers []netip.AddrPort

var _ PeerSource = StaticPeers(nil)

// Open emits the addresses.
func (s StaticPeers) Open(ctx context.Context, _ *Swarm) streams.Source {
	out := make(chan any, len(s))
	for _, a := range s {
		out <- &PeerAddr{Addr: a}
	}
	go func() {
		<-ctx.Done()
		close(out)
	}()
	return NewSource(out)
}
