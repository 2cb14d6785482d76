package pipeline

import (
	"context"
	"net"
	"slices"
	"sync/atomic"

	"github.com/reugn/go-streams"
	"github.com/reugn/go-streams/flow"

	"github.com/bitstorm/bitstorm/stages"
)

// graph wires the piece stages after conns (made by conns or metadataGraph below) and
// blocks until the sink has drained; this file is the only place that connects stages.
// Cancelling ctx closes the sources, and the close cascades down the graph.
//
//	sources ─┐
//	PEX ─────┴▶ Dial ──┐
//	                   ├─▶ Request ──┐
//	Listen ────────────┘             ├─▶ Assemble ─▶ Verify ─▶ Write
//	WebSeeds (BEP 19) ───────────────┘
//
// PEX is fed by the Request stage's sessions (the peers that peers tell us of). The web
// seeds' blocks (webseed.go) join the peers' before Assemble. Block buffers and the upload
// cache's budget come from sh: a Session's torrents share them.
func (p *Pipeline) graph(ctx context.Context, env *stages.Env, store stages.Storage, conns streams.Source, pex *stages.PEX, sh *shared) {
	blocks := sh.blocks
	req := p.cfg.Request
	req.Blocks = blocks
	req.Cache = stages.NewSharedPieceCache(env.Info, store, sh.cache)
	defer req.Cache.Close() // its pieces' bytes go back to the other torrents
	req.Pex = pex
	req.View = &p.peers
	var in streams.Flow = conns.Via(stages.Request(ctx, env, req))
	if web := p.webSeedSource(ctx, env, blocks); web != nil {
		in = flow.Merge(in, web.Via(flow.NewPassThrough()))
	}
	in.
		Via(stages.Assemble(env, blocks)).
		Via(stages.Verify(env.Info, p.cfg.Verifiers)).
		To(stages.Write(env, store, blocks, 2))
}

// metadataGraph wires the metadata phase of a magnet link (BEP 9): the peer sources,
// Dial and Listen into the MetadataGate, which fetches the info dictionary from the peers
// and keeps their connections until it is known; the gate's outlet then feeds graph. The
// wiring runs until ctx ends; wait blocks until it has.
//
//	sources ─▶ Dial ──┐
//	                  ├─▶ MetadataGate ─(Found: the info dictionary)
//	Listen ───────────┘        └─▶ *Conn ─▶ graph: Request ─▶ ...
func (p *Pipeline) metadataGraph(ctx context.Context, sw *stages.Swarm, ln net.Listener, extra ...stages.PeerSource) (gate *stages.MetadataGate, wait func()) {
	gate = stages.FetchMetadata(ctx, sw)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.conns(ctx, sw, ln, extra...).To(gate)
	}()
	return gate, func() { <-done }
}

// conns is the part of every graph that finds peers: the peer sources (the pipeline's and
// extra) merged, Dial, and the connections Listen accepts, given the run's rate limits
// (Limit: the Request stage's reader and writer wait for them). Out: *Conn.
func (p *Pipeline) conns(ctx context.Context, sw *stages.Swarm, ln net.Listener, extra ...stages.PeerSource) streams.Flow {
	sources := append(slices.Clip(p.sources), extra...)
	if len(sources) == 0 { // web seeds alone: no peer to dial, but incoming ones are welcome
		sources = append(sources, stages.StaticPeers(nil))
	}
	addrs := make([]streams.Outlet, len(sources))
	for i, s := range sources {
		addrs[i] = s.Open(ctx, sw)
	}
	dial := stages.Dial(ctx, sw, p.cfg.Dial)
	feed(dial, addrs...)
	var conns streams.Flow = dial
	if ln != nil {
		incoming := stages.Listen(ctx, sw, ln, p.cfg.Dial.MaxPeers, p.cfg.Dial.HandshakeTimeout)
		conns = flow.NewPassThrough()
		feed(conns, dial, incoming)
	}
	lim, _ := p.limits() // made, and checked, by New and NewMagnet
	return conns.Via(stages.Limit(lim))
}

// feed fans outlets into to's inlet and closes it once every outlet has closed: what
// flow.Merge does, less the PassThrough each Source needs to be given to it, and the
// Merge's own; a goroutine per outlet, where Via and Merge run three. A Session holds a
// graph per torrent, and each goroutine costs a few KiB for as long as the torrent runs.
func feed(to streams.Inlet, from ...streams.Outlet) {
	var left atomic.Int32
	left.Store(int32(len(from)))
	for _, o := range from {
		go func() {
			for e := range o.Out() {
				to.In() <- e
			}
			if left.Add(-1) == 0 {
				close(to.In())
			}
		}()
	}
}
