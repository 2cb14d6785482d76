package pipeline

import (
	"context"
	"net"
	"slices"

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
// extra) merged, Dial, and the connections Listen accepts. Out: *Conn.
func (p *Pipeline) conns(ctx context.Context, sw *stages.Swarm, ln net.Listener, extra ...stages.PeerSource) streams.Flow {
	sources := append(slices.Clip(p.sources), extra...)
	if len(sources) == 0 { // web seeds alone: no peer to dial, but incoming ones are welcome
		sources = append(sources, stages.StaticPeers(nil))
	}
	var addrs []streams.Flow
	for _, s := range sources {
		addrs = append(addrs, s.Open(ctx, sw).Via(flow.NewPassThrough()))
	}
	var conns streams.Flow = merge(addrs).Via(stages.Dial(ctx, sw, p.cfg.Dial))
	if ln != nil {
		incoming := stages.Listen(ctx, sw, ln, p.cfg.Dial.MaxPeers, p.cfg.Dial.HandshakeTimeout).Via(flow.NewPassThrough())
		conns = flow.Merge(conns, incoming)
	}
	if lim, ok, _ := p.limits(); ok { // checked by New and NewMagnet
		conns = conns.Via(stages.Limit(lim))
	}
	return conns
}

// merge fans flows in; one flow needs no Merge.
func merge(fs []streams.Flow) streams.Flow {
	if len(fs) == 1 {
		return fs[0]
	}
	return flow.Merge(fs...)
}
