package stages

import (
	"github.com/bitstorm/bitstorm/internal/bufpool"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/reugn/go-streams"
)

// Assemble folds blocks into whole pieces.
// In: *Block, each block at most once per piece attempt (the Scheduler filters duplicates).
// Out: *Piece, complete, with the peers that sent it; in completion order. Parallelism 1:
// it owns the partial pieces. A piece takes over its blocks' buffers, no byte is copied;
// the buffers of pieces left partial at the end go back to blocks. The Scheduler's cap on
// pieces in progress bounds what it holds.
func Assemble(env *Env, blocks *bufpool.Pool) streams.Flow {
	return newNode(4, func(in <-chan any, out chan<- any) {
		a := assembler{env: env, partial: make(map[int]*partialPiece)}
		for e := range in {
			if p := a.add(e.(*Block)); p != nil {
				out <- p
			}
		}
		for _, pp := range a.partial {
			for _, b := range pp.p.Blocks {
				if b != nil {
					blocks.Put(b)
				}
			}
		}
	})
}

type partialPiece struct {
	p          *Piece
	have, size int
}

type assembler struct {
	env     *Env
	partial map[int]*partialPiece
}

// add puts b in its piece and returns the piece once all its bytes are there.
func (a *assembler) add(b *Block) *Piece {
	pp := a.partial[b.Piece]
	if pp == nil {
		size := a.env.Info.PieceSize(b.Piece)
		n := (size + wire.BlockSize - 1) / wire.BlockSize
		pp = &partialPiece{p: &Piece{Index: b.Piece, Blocks: make([][]byte, n)}, size: int(size)}
		a.partial[b.Piece] = pp
	}
	pp.p.Blocks[b.Begin/wire.BlockSize] = b.Data
	pp.have += len(b.Data)
	if !containsPeer(pp.p.Peers, b.Peer) {
		pp.p.Peers = append(pp.p.Peers, b.Peer)
	}
	freeBlock(b)
	if pp.have < pp.size {
		return nil
	}
	delete(a.partial, pp.p.Index)
	return pp.p
}
