package resume

import (
	"context"
	"crypto/sha1"
	"io"
	"sync"
	"sync/atomic"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/wire"
)

// Recheck hashes every piece of info read from r (an io.ReaderAt over the torrent's
// concatenated byte space) with workers goroutines and returns the bitfield of pieces
// whose SHA-1 matches (BEP 3). A piece that r cannot read in full, because its file is
// missing or too short, is simply not set: that is data still to download, not an error.
// Padding (BEP 47) counts as the zeros it is and is never read from r, so a piece that is
// all padding is had without reading anything.
// progress, if not nil, is called after each piece with the pieces done so far and the
// total, from the calling goroutine. Recheck stops early and returns ctx.Err() when ctx
// is done; it returns only once every goroutine it started has ended.
//
// Each worker claims the next piece in index order, reads it into its own piece-sized
// buffer and hashes it on the same core while it is still in cache. The disk thus sees
// an ascending scan with at most workers reads in flight, and memory stays at workers
// buffers. This beat one reader goroutine feeding hashers through a channel by 10-15%
// in throughput and CPU per byte (BenchmarkRecheck): the hand-off moved every piece
// between cores.
func Recheck(ctx context.Context, info *metainfo.Info, r io.ReaderAt, workers int, progress func(done, total int)) (wire.Bitfield, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	total := info.NumPieces()
	workers = max(min(workers, total), 1)
	have := wire.NewBitfield(total)
	var next atomic.Int64 // the next piece to claim
	results := make(chan verdict, workers)

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { checkPieces(ctx, info, r, &next, results) })
	}
	for done := 0; done < total; {
		select {
		case v := <-results:
			if v.ok {
				have.Set(v.index)
			}
			done++
			if progress != nil {
				progress(done, total)
			}
		case <-ctx.Done():
			wg.Wait() // every worker checks ctx before a piece and selects on it to send
			return nil, ctx.Err()
		}
	}
	wg.Wait()
	return have, nil
}

// verdict says whether piece index was read in full and matched its hash.
type verdict struct {
	index int
	ok    bool
}

// checkPieces claims pieces from next until none is left, checking each one.
func checkPieces(ctx context.Context, info *metainfo.Info, r io.ReaderAt, next *atomic.Int64, results chan<- verdict) {
	total := int64(info.NumPieces())
	buf := make([]byte, info.PieceLength)
	for ctx.Err() == nil {
		i := next.Add(1) - 1
		if i >= total {
			return
		}
		index := int(i)
		p := buf[:info.PieceSize(index)]
		ok := readPiece(info, r, p, info.PieceOffset(index)) && sha1.Sum(p) == info.PieceHash(index)
		select {
		case results <- verdict{index, ok}:
		case <-ctx.Done():
			return
		}
	}
}

// readPiece fills p with the torrent's bytes at off: the files' data read from r, and
// zeros for padding. It reports whether r had all of the data.
func readPiece(info *metainfo.Info, r io.ReaderAt, p []byte, off int64) bool {
	spans := info.DataSpans(off, int64(len(p)))
	if len(spans) == 1 && spans[0] == (metainfo.Span{Off: off, Len: int64(len(p))}) {
		// io.ReaderAt: a full read may still come with io.EOF at the very end.
		n, _ := r.ReadAt(p, off)
		return n == len(p)
	}
	clear(p)
	for _, s := range spans {
		q := p[s.Off-off : s.Off-off+s.Len]
		if n, _ := r.ReadAt(q, s.Off); n != len(q) {
			return false
		}
	}
	return true
}
