package pipeline

import (
	"context"
	"net"

	"github.com/reugn/go-streams"
	"github.com/reugn/go-streams/flow"

	"github.com/bitstorm/bitstorm/internal/bufpool"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/stages"
)

// graph wires the stages and blocks until the sink has drained; it is the only place that
// connects stages. Cancelling ctx closes the sources, and the close cascades down the graph.
//
//	source ─▶ Dial ──┐
//	                 ├─▶ Request ─▶ Assemble ─▶ Verify ─▶ Write
//	Listen ──────────┘
func (p *Pipeline) graph(ctx context.Context, env *stages.Env, store stages.Storage, ln net.Listener) {
	blocks := bufpool.New(wire.BlockSize, 512)
	req := p.cfg.Request
	req.Blocks = blocks
	req.Cache = stages.NewPieceCache(env.Info, store, p.cfg.CacheBytes)
	var conns streams.Flow = p.source.Open(ctx, env.Swarm).Via(stages.Dial(ctx, env.Swarm, p.cfg.Dial))
	if ln != nil {
		incoming := stages.Listen(ctx, env.Swarm, ln, p.cfg.Dial.MaxPeers, p.cfg.Dial.HandshakeTimeout).Via(flow.NewPassThrough())
		conns = flow.Merge(conns, incoming)
	}
	conns.
		Via(stages.Request(ctx, env, req)).
		Via(stages.Assemble(env, blocks)).
		Via(stages.Verify(env.Info, p.cfg.Verifiers)).
		To(stages.Write(env, store, blocks, 2))
}
