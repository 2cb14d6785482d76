package stages

import (
	"crypto/sha1"
	"fmt"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/reugn/go-streams"
	"github.com/reugn/go-streams/flow"
)

// Verify checks each piece against its SHA-1 from the metainfo (BEP 3).
// In: *Piece, assembled. Out: *Piece, with Err wrapping ErrHashMismatch on a bad hash; any
// order. Parallelism workers (one per core: SHA-1 is the costliest step of the data path).
func Verify(info *metainfo.Info, workers int) streams.Flow {
	return flow.NewMap(func(p *Piece) *Piece { return verifyPiece(info, p) }, max(workers, 1))
}

func verifyPiece(info *metainfo.Info, p *Piece) *Piece {
	h := sha1.New()
	for _, b := range p.Blocks {
		h.Write(b)
	}
	var sum [sha1.Size]byte
	if [sha1.Size]byte(h.Sum(sum[:0])) != info.PieceHash(p.Index) {
		p.Err = fmt.Errorf("piece %d: %w", p.Index, ErrHashMismatch)
	}
	return p
}
