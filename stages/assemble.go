package stages

import (
	"github.com/bitstorm/bitstorm/internal/bufpool"
	"github.com/reugn/go-streams"
)

// Assemble folds blocks into whole pieces.
// In: *Block, each block at most once per piece attempt (the Scheduler filters duplicates).
// Out: *Piece, complete, with the peers that sent it; in completion order. Parallelism 1:
// it owns the partial pieces. Piece buffers come from pieces, and block buffers go back to
// blocks once copied; the Scheduler's cap on pieces in progress bounds what it holds.
func Assemble(env *Env, pieces, blocks *bufpool.Pool) streams.Flow {
	return newNode(4, func(in <-chan any, out chan<- any) {
		a := assembler{env: env, pieces: pieces, blocks: blocks, partial: make(map[int]*partialPiece)}
		for e := range in {
			if p := a.add(e.(*Block)); p != nil {
				out <- p
			}
		}
		for _, pp := range a.partial {
			pieces.Put(pp.p.Data)
		}
	})
}

type partialPiece struct {
	p    *Piece
	have int
}

type assembler struct {
	env     *Env
	pieces  *bufpool.Pool
	blocks  *bufpool.Pool
	partial map[int]*partialPiece
}

// add copies b into its piece and returns the piece once all its bytes are there.
func (a *assembler) add(b *Block) *Piece {
	pp := a.partial[b.Piece]
	if pp == nil {
		size := a.env.Info.PieceSize(b.Piece)
		pp = &partialPiece{p: &Piece{Index: b.Piece, Data: a.pieces.Get()[:size]}}
		a.partial[b.Piece] = pp
	}
	copy(pp.p.Data[b.Begin:], b.Data)
	pp.have += len(b.Data)
	a.blocks.Put(b.Data)
	if !containsPeer(pp.p.Peers, b.Peer) {
		pp.p.Peers = append(pp.p.Peers, b.Peer)
	}
	freeBlock(b)
	if pp.have < len(pp.p.Data) {
		return nil
	}
	delete(a.partial, pp.p.Index)
	return pp.p
}
