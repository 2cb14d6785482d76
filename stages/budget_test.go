package stages

import (
	"sync"
	"testing"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/wire"
)

// twoBlockInfo is a torrent of n pieces of two 16 KiB blocks.
func twoBlockInfo(n int) *metainfo.Info {
	return &metainfo.Info{Name: "t", PieceLength: 2 * wire.BlockSize, Length: int64(n) * 2 * wire.BlockSize, Pieces: make([]byte, n*20)}
}

// piecesOf lists the distinct pieces of reqs, in order.
func piecesOf(reqs []BlockReq) []int {
	var l []int
	for _, r := range reqs {
		if len(l) == 0 || l[len(l)-1] != r.Piece {
			l = append(l, r.Piece)
		}
	}
	return l
}

func kicked(p *Peer) bool {
	select {
	case <-p.Kicked():
		return true
	default:
		return false
	}
}

// receiveAll has p deliver every block of reqs and reports the pieces made whole done.
func receiveAll(s *Scheduler, p *Peer, reqs []BlockReq, done bool) {
	for _, r := range reqs {
		s.Received(p, r)
	}
	if done {
		for _, i := range piecesOf(reqs) {
			s.PieceDone(i)
		}
	}
}

func TestInFlightBudgetShared(t *testing.T) {
	info := twoBlockInfo(20)
	plen := info.PieceLength
	b := NewInFlightBudget(4 * plen)
	sa := NewScheduler(info, NewSequential(20), 100)
	sb := NewScheduler(info, NewSequential(20), 100)
	sa.SetBudget(b)
	sb.SetBudget(b)
	has := allPieces(20)
	a, pb, c := peerAt(1), peerAt(2), peerAt(3)

	// a's torrent takes the whole budget, though its cap would allow 100 pieces.
	ra := sa.Next(a, has, 100, never, nil)
	if got := piecesOf(ra); len(got) != 4 || b.Used() != 4*plen {
		t.Fatalf("first torrent started pieces %v, budget used %d; want 4 pieces and %d", got, b.Used(), 4*plen)
	}
	// The second still gets its MinActive pieces, past the budget, and no more.
	rb := sb.Next(pb, has, 100, never, nil)
	if got := piecesOf(rb); len(got) != MinActive || b.Used() != int64(4+MinActive)*plen {
		t.Fatalf("second torrent started pieces %v, budget used %d; want %d pieces and %d", got, b.Used(), MinActive, int64(4+MinActive)*plen)
	}
	// Its other peer finds nothing: every block of its pieces is requested.
	if got := sb.Next(c, has, 100, never, nil); len(got) != 0 {
		t.Fatalf("second torrent's other peer got %v with the budget spent, want nothing", got)
	}
	if kicked(c) {
		t.Fatal("starved peer kicked before any byte came back")
	}

	// The first torrent's pieces complete: each gives its bytes back, and the waiting
	// torrent's starved peer is woken.
	receiveAll(sa, a, ra[:2], true) // piece 0
	if b.Used() != int64(3+MinActive)*plen {
		t.Fatalf("budget used %d after a piece verified, want %d", b.Used(), int64(3+MinActive)*plen)
	}
	if !kicked(c) {
		t.Fatal("the waiting torrent's starved peer was not woken when bytes came back")
	}
	// Still past the limit: c waits again, and is woken again when one more is done.
	if got := sb.Next(c, has, 100, never, nil); len(got) != 0 {
		t.Fatalf("peer got %v with the budget still spent", got)
	}
	receiveAll(sa, a, ra[2:6], true) // pieces 1 and 2
	if !kicked(c) {
		t.Fatal("starved peer not woken by the second give")
	}
	if got := piecesOf(sb.Next(c, has, 100, never, nil)); len(got) != 1 {
		t.Fatalf("peer started pieces %v with one piece of budget free, want one", got)
	}
	if b.Used() != b.Limit() || b.Peak() != int64(4+MinActive)*plen {
		t.Fatalf("used %d, peak %d; want %d and %d", b.Used(), b.Peak(), b.Limit(), int64(4+MinActive)*plen)
	}

	// Both runs end: everything is given back, and a later run starts over.
	sa.EndRun()
	sb.EndRun()
	if b.Used() != 0 {
		t.Fatalf("budget used %d after both runs ended, want 0", b.Used())
	}
	if got := piecesOf(sa.Next(a, has, 100, never, nil)); len(got) != 4 || got[0] != 3 {
		t.Fatalf("after EndRun the first torrent started %v, want 4 pieces from 3 (0-2 are done)", got)
	}
	sa.EndRun()
	if b.Used() != 0 {
		t.Fatalf("budget used %d after the last run ended, want 0", b.Used())
	}
}

// TestInFlightBudgetEveryPath follows one piece's bytes through a hash failure, a skip
// and a reader's PriorityNow, and checks that the download ends with the budget whole.
func TestInFlightBudgetEveryPath(t *testing.T) {
	info := twoBlockInfo(8)
	plen := info.PieceLength
	b := NewInFlightBudget(3 * plen)
	s := NewScheduler(info, NewSequential(8), 100)
	s.SetBudget(b)
	has := allPieces(8)
	p, q := peerAt(1), peerAt(2)

	reqs := s.Next(p, has, 100, never, nil)
	if got := piecesOf(reqs); len(got) != 3 {
		t.Fatalf("started %v, want 3 pieces (the budget)", got)
	}
	receiveAll(s, p, reqs, false)
	// A piece that fails its hash is fetched again: it keeps its bytes.
	s.PieceFailed(0, []*Peer{p})
	if b.Used() != 3*plen {
		t.Fatalf("used %d after a hash failure, want %d (the piece is still in progress)", b.Used(), 3*plen)
	}
	// A skipped piece in progress keeps its blocks in assembly, and its bytes.
	s.SetPriority(1, PrioritySkip)
	if b.Used() != 3*plen {
		t.Fatalf("used %d after skipping a piece in progress, want %d", b.Used(), 3*plen)
	}
	// A piece a reader waits for starts past the budget.
	s.SetPriority(6, PriorityNow)
	now := s.Next(q, has, 100, never, nil)
	if got := piecesOf(now); len(got) == 0 || got[0] != 6 || b.Used() != 4*plen {
		t.Fatalf("with a PriorityNow piece Next gave %v and used %d, want piece 6 first and %d", got, b.Used(), 4*plen)
	}
	s.PieceDone(2)
	receiveAll(s, q, now[:2], true)
	if b.Used() != 2*plen {
		t.Fatalf("used %d with pieces 0 and 1 left in progress, want %d", b.Used(), 2*plen)
	}
	// The rest of the download, piece 0 again from q: every verified piece gives back.
	for _, i := range download(s, q, has) {
		if i == 1 {
			t.Fatal("the skipped piece was fetched")
		}
	}
	if !s.IsComplete() {
		t.Fatal("download incomplete")
	}
	if b.Used() != plen {
		t.Fatalf("used %d once complete, want %d: the skipped piece's, until the run ends", b.Used(), plen)
	}
	s.EndRun()
	if b.Used() != 0 {
		t.Fatalf("used %d after EndRun, want 0", b.Used())
	}
}

// TestInFlightBudgetConcurrent has four torrents on one budget downloaded at once, by two
// peers each: the budget is never past its limit but for each torrent's MinActive pieces,
// every torrent completes, and the budget is whole after.
func TestInFlightBudgetConcurrent(t *testing.T) {
	const torrents, pieces = 4, 64
	info := twoBlockInfo(pieces)
	plen := info.PieceLength
	b := NewInFlightBudget(6 * plen)
	var wg sync.WaitGroup
	scheds := make([]*Scheduler, torrents)
	for k := range scheds {
		s := NewScheduler(info, NewRarest(pieces, uint64(k)), 1000)
		s.SetBudget(b)
		scheds[k] = s
		var mu sync.Mutex // the torrent's assembly: blocks received per piece
		got := make([]int, pieces)
		for j := range 2 {
			p := peerAt(uint16(10*k + j))
			wg.Go(func() {
				has := allPieces(pieces)
				var reqs []BlockReq
				for !s.IsComplete() {
					reqs = s.Next(p, has, 50, never, reqs[:0])
					if len(reqs) == 0 {
						select {
						case <-p.Kicked():
						case <-s.Complete():
						}
						continue
					}
					for _, r := range reqs {
						if s.Received(p, r) {
							mu.Lock()
							got[r.Piece]++
							whole := got[r.Piece] == 2
							mu.Unlock()
							if whole {
								s.PieceDone(r.Piece)
							}
						}
					}
				}
			})
		}
	}
	wg.Wait()
	for k, s := range scheds {
		if st := s.Stats(); st.Pieces != pieces {
			t.Errorf("torrent %d: %d of %d pieces", k, st.Pieces, pieces)
		}
		s.EndRun()
	}
	if bound := b.Limit() + torrents*MinActive*plen; b.Peak() > bound || b.Peak() < b.Limit() {
		t.Errorf("peak %d, want between the limit %d and %d (the limit and each torrent's MinActive pieces)", b.Peak(), b.Limit(), bound)
	}
	if b.Used() != 0 {
		t.Errorf("used %d after every run ended, want 0", b.Used())
	}
}

func TestPriorityLowAfterNormal(t *testing.T) {
	for name, newPicker := range pickers(10) {
		t.Run(name, func(t *testing.T) {
			s := NewScheduler(oneBlockInfo(10), newPicker(), 4)
			for _, i := range []int{0, 1, 2, 7} {
				s.SetPriority(i, PriorityLow)
			}
			s.SetPriority(9, PriorityHigh)
			p := peerAt(1)
			// p lacks piece 8: low pieces come after every normal one p has, not all.
			has := allPieces(10)
			has.Clear(8)
			order := download(s, p, has)
			if len(order) != 9 || order[0] != 9 {
				t.Fatalf("order %v, want 9 pieces, the high one (9) first", order)
			}
			for k, i := range order[1:5] {
				if s.Priority(i) != PriorityNormal {
					t.Fatalf("order %v: piece %d (place %d) is %v, want the normal pieces 3-6 before any low one", order, i, k+1, s.Priority(i))
				}
			}
			if low := order[5:]; low[0] != 0 || low[1] != 1 || low[2] != 2 || low[3] != 7 {
				t.Fatalf("order %v, want the low pieces last, by index: 0 1 2 7", order)
			}
			// A low piece raised to normal is picked again by the picker (it was offered
			// none while low).
			s2 := NewScheduler(oneBlockInfo(10), newPicker(), 4)
			s2.SetPriorities(func(int) Priority { return PriorityLow })
			s2.SetPriority(5, PriorityNormal)
			got := s2.Next(p, allPieces(10), 1, never, nil)
			if len(got) != 1 || got[0].Piece != 5 {
				t.Fatalf("Next = %v, want the one normal piece, 5", got)
			}
			receiveAll(s2, p, got, true)
			s2.SetPriority(8, PriorityNormal)
			got = s2.Next(p, allPieces(10), 1, never, nil)
			if len(got) != 1 || got[0].Piece != 8 {
				t.Fatalf("Next = %v after piece 8 went from low to normal, want piece 8", got)
			}
			receiveAll(s2, p, got, true)
			if n := len(download(s2, p, allPieces(10))); n != 8 {
				t.Fatalf("%d more pieces downloaded, want the 8 left", n)
			}
			if !s2.IsComplete() {
				t.Fatal("low pieces do not complete the download")
			}
		})
	}
}

// TestEndRunRequeues: the pieces in progress when a run ends are fetched by the next run
// in their priority's place: high first, low last, normal ones by the picker (which takes
// them back, or the Scheduler picks them itself).
func TestEndRunRequeues(t *testing.T) {
	for name, newPicker := range pickers(6) {
		t.Run(name, func(t *testing.T) {
			s := NewScheduler(oneBlockInfo(6), newPicker(), 8)
			s.SetBudget(NewInFlightBudget(8 * wire.BlockSize))
			s.SetPriority(0, PriorityLow)
			s.SetPriority(1, PriorityHigh)
			p := peerAt(1)
			if got := piecesOf(s.Next(p, allPieces(6), 6, never, nil)); len(got) != 6 || got[0] != 1 || got[5] != 0 {
				t.Fatalf("first run started %v, want all 6, the high one (1) first and the low one (0) last", got)
			}
			s.EndRun()
			order := download(s, peerAt(2), allPieces(6))
			if len(order) != 6 || order[0] != 1 || order[5] != 0 || !s.IsComplete() {
				t.Fatalf("after EndRun the download went %v, want all 6, the high one (1) first and the low one (0) last", order)
			}
			if used := s.budget.Used(); used != 0 {
				t.Fatalf("budget used %d once every piece is done, want 0", used)
			}
		})
	}
}
