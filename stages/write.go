package stages

import (
	"fmt"
	"sync"

	"github.com/bitstorm/bitstorm/internal/bufpool"
	"github.com/reugn/go-streams"
)

// WriteSink writes verified pieces at their offsets in Storage (pwrite, across file
// boundaries) and tells the Scheduler: PieceDone once a piece is on disk, PieceFailed for a
// piece that failed its hash, which then goes back to be fetched again. A write error is
// fatal (disk full, read-only): it calls env.Fail, and the sink keeps draining, discarding,
// so that no stage upstream blocks. Block buffers go back to blocks.
type WriteSink struct {
	in   chan any
	done chan struct{}
}

var _ streams.Sink = (*WriteSink)(nil)

// Write returns the sink. In: *Piece, verified or with Err set. Parallelism workers.
func Write(env *Env, st Storage, blocks *bufpool.Pool, workers int) *WriteSink {
	s := &WriteSink{in: make(chan any), done: make(chan struct{})}
	log := env.Log.With("stage", "write")
	var failed sync.Once
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range s.in {
				p := e.(*Piece)
				switch {
				case p.Err != nil:
					env.Emit(PieceFailed{Piece: p.Index})
					for _, bad := range env.Sched.PieceFailed(p.Index, p.Peers) {
						log.Warn("banning peer", "peer", bad.Addr, "reason", "sent corrupt pieces")
						env.Emit(PeerBanned{Addr: bad.Addr, Reason: "sent corrupt pieces"})
					}
					log.Info("piece failed its hash, fetching it again", "piece", p.Index, "peers", len(p.Peers))
				default:
					if err := writePiece(st, p.Blocks, env.Info.PieceOffset(p.Index)); err != nil {
						failed.Do(func() { env.Fail(fmt.Errorf("disk error: piece %d: %w", p.Index, err)) })
					} else {
						env.Sched.PieceDone(p.Index)
						env.Emit(PieceVerified{Piece: p.Index})
					}
				}
				for _, b := range p.Blocks {
					blocks.Put(b)
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(s.done)
	}()
	return s
}

// In is the sink's inlet.
func (s *WriteSink) In() chan<- any { return s.in }

// AwaitCompletion blocks until every piece received has been written or discarded.
func (s *WriteSink) AwaitCompletion() { <-s.done }

// writePiece writes a piece's blocks at off: in one call when st is a VectorWriterAt.
func writePiece(st Storage, bufs [][]byte, off int64) error {
	if v, ok := st.(VectorWriterAt); ok {
		_, err := v.WriteVAt(bufs, off)
		return err
	}
	for _, b := range bufs {
		if _, err := st.WriteAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}
