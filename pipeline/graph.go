package pipeline

import (
	"context"
	"net"
	"slices"

	"github.com/reugn/go-streams"
	"github.com/reugn/go-streams/flow"

	"github.com/bitstorm/bitstorm/internal/bufpool"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/stages"
)

// graph wires the stages and blocks until the sink has drained; it is the only place that
// connects stages. Cancelling ctx closes the sources, and the close cascades down the graph.
//
//	sources ─┐
//	PEX ─────┴▶ Dial ──┐
//	                   ├─▶ Request ─▶ Assemble ─▶ Verify ─▶ Write
//	Listen ────────────┘
//
// PEX is fed by the Request stage's sessions (the peers that peers tell us of).
func (p *Pipeline) graph(ctx context.Context, env *stages.Env, store stages.Storage, ln net.Listener) {
	blocks := bufpool.New(wire.BlockSize, 512)
	req := p.cfg.Request
	req.Blocks = blocks
	req.Cache = stages.NewPieceCache(env.Info, store, p.cfg.CacheBytes)
	var extra []stages.PeerSource
	if !env.Info.Private && !p.cfg.NoPex { // BEP 27: a private torrent's peers come from its trackers only
		pex := stages.NewPEX(p.cfg.PexInterval)
		req.Pex = pex
		extra = append(extra, pex)
	}
	p.conns(ctx, env.Swarm, ln, extra...).
		Via(stages.Request(ctx, env, req)).
		Via(stages.Assemble(env, blocks)).
		Via(stages.Verify(env.Info, p.cfg.Verifiers)).
		To(stages.Write(env, store, blocks, 2))
}

// metadataGraph wires the metadata phase of a magnet link (BEP 9): the same peer sources,
// Dial and Listen as the download, into the MetadataSink, which calls found with each
// verified copy of the info dictionary. It blocks until the sink has let every
// connection go; cancelling ctx ends the phase.
//
//	sources ─▶ Dial ──┐
//	                  ├─▶ FetchMetadata
//	Listen ───────────┘
func (p *Pipeline) metadataGraph(ctx context.Context, sw *stages.Swarm, ln net.Listener, found func(raw []byte)) {
	p.conns(ctx, sw, ln).To(stages.FetchMetadata(ctx, sw, stages.MetadataConfig{}, found))
}

// conns is the part of every graph that finds peers: the peer sources (the pipeline's and
// extra) merged, Dial, and the connections Listen accepts. Out: *Conn.
func (p *Pipeline) conns(ctx context.Context, sw *stages.Swarm, ln net.Listener, extra ...stages.PeerSource) streams.Flow {
	var addrs []streams.Flow
	for _, s := range append(slices.Clip(p.sources), extra...) {
		addrs = append(addrs, s.Open(ctx, sw).Via(flow.NewPassThrough()))
	}
	var conns streams.Flow = merge(addrs).Via(stages.Dial(ctx, sw, p.cfg.Dial))
	if ln != nil {
		incoming := stages.Listen(ctx, sw, ln, p.cfg.Dial.MaxPeers, p.cfg.Dial.HandshakeTimeout).Via(flow.NewPassThrough())
		conns = flow.Merge(conns, incoming)
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
