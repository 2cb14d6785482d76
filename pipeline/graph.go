package pipeline

import (
	"context"

	"github.com/bitstorm/bitstorm/internal/bufpool"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/stages"
)

// graph wires the stages and blocks until the sink has drained; it is the only place that
// connects stages. Cancelling ctx closes the source, and the close cascades down the graph.
//
//	source ─▶ Dial ─▶ Request ─▶ Assemble ─▶ Verify ─▶ Write
func (p *Pipeline) graph(ctx context.Context, env *stages.Env, store stages.Storage) {
	pieceLen := int(p.meta.Info.PieceLength)
	pieces := bufpool.New(pieceLen, 8)
	blocks := bufpool.New(wire.BlockSize, 512)
	req := p.cfg.Request
	req.Blocks = blocks
	p.source.Open(ctx, env).
		Via(stages.Dial(ctx, env, p.cfg.Dial)).
		Via(stages.Request(ctx, env, req)).
		Via(stages.Assemble(env, pieces, blocks)).
		Via(stages.Verify(env.Info, p.cfg.Verifiers)).
		To(stages.Write(env, store, pieces, 2))
}
