package stages

import (
	"testing"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// benchDownload has four peers fetch a whole torrent through s, n blocks per request
// round each, every block arriving at once and each piece verified when whole: the
// Scheduler's work per block (Next, Received) and per piece (start, PieceDone).
func benchDownload(b *testing.B, s *Scheduler, n int) {
	peers := []*Peer{peerAt(1), peerAt(2), peerAt(3), peerAt(4)}
	has := allPieces(s.info.NumPieces())
	got := make([]int, s.info.NumPieces())
	var reqs []BlockReq
	for !s.IsComplete() {
		progress := false
		for _, p := range peers {
			reqs = s.Next(p, has, n, never, reqs[:0])
			for _, r := range reqs {
				progress = true
				if s.Received(p, r) {
					if got[r.Piece] += r.Length; int64(got[r.Piece]) == s.info.PieceSize(r.Piece) {
						s.PieceDone(r.Piece)
					}
				}
			}
		}
		if !progress {
			b.Fatal("no peer got a block before the download completed")
		}
	}
}

// BenchmarkSchedulerDownload is a 1 GiB torrent of 256 KiB pieces (16 blocks each)
// downloaded by four peers asking for 64 blocks a round, with a 64 MiB cap on pieces in
// progress: 4096 piece starts and 65536 blocks per iteration.
func BenchmarkSchedulerDownload(b *testing.B) {
	const pieces, plen = 4096, 256 << 10
	info := &metainfo.Info{Name: "b", PieceLength: plen, Length: pieces * plen, Pieces: make([]byte, pieces*20)}
	b.SetBytes(info.Length)
	for b.Loop() {
		s := NewScheduler(info, NewSequential(pieces), 64<<20/plen)
		benchDownload(b, s, 64)
	}
}

// BenchmarkSchedulerDownloadBudget is BenchmarkSchedulerDownload with the pieces' bytes
// taken from a 64 MiB InFlightBudget (what the cap allows): the budget's cost per piece.
func BenchmarkSchedulerDownloadBudget(b *testing.B) {
	const pieces, plen = 4096, 256 << 10
	info := &metainfo.Info{Name: "b", PieceLength: plen, Length: pieces * plen, Pieces: make([]byte, pieces*20)}
	b.SetBytes(info.Length)
	budget := NewInFlightBudget(64 << 20)
	for b.Loop() {
		s := NewScheduler(info, NewSequential(pieces), 64<<20/plen)
		s.SetBudget(budget)
		benchDownload(b, s, 64)
		s.EndRun()
	}
	if budget.Used() != 0 {
		b.Fatalf("budget used %d after the runs, want 0", budget.Used())
	}
}
