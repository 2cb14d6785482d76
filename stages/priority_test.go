package stages

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/wire"
)

// oneBlockInfo is a torrent of n pieces of one 16 KiB block each: a request is a piece.
func oneBlockInfo(n int) *metainfo.Info {
	return &metainfo.Info{Name: "t", PieceLength: wire.BlockSize, Length: int64(n) * wire.BlockSize, Pieces: make([]byte, n*20)}
}

func peerAt(port uint16) *Peer {
	return NewPeer(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port))
}

// download has p fetch, one request at a time, everything the Scheduler hands out, each
// block arriving at once and each piece verified as soon as it is whole, and returns the
// pieces in the order they completed.
func download(s *Scheduler, p *Peer, has wire.Bitfield) []int {
	var order []int
	got := map[int]int{}
	for {
		reqs := s.Next(p, has, 1, never, nil)
		if len(reqs) == 0 {
			return order
		}
		r := reqs[0]
		s.Received(p, r)
		got[r.Piece] += r.Length
		if int64(got[r.Piece]) == s.info.PieceSize(r.Piece) {
			s.PieceDone(r.Piece)
			order = append(order, r.Piece)
		}
	}
}

func pickers(n int) map[string]func() Picker {
	return map[string]func() Picker{
		"rarest":     func() Picker { return NewRarest(n, 7) },
		"random":     func() Picker { return NewRandom(n, 7) },
		"sequential": func() Picker { return NewSequential(n) },
		"no requeue": func() Picker { return plainPicker{NewSequential(n)} }, // the Scheduler requeues itself
	}
}

// plainPicker hides its picker's Requeue.
type plainPicker struct{ p Picker }

func (pp plainPicker) Pick(has wire.Bitfield, want func(int) bool) (int, bool) {
	return pp.p.Pick(has, want)
}
func (pp plainPicker) PeerHas(i int)              { pp.p.PeerHas(i) }
func (pp plainPicker) PeerGone(has wire.Bitfield) { pp.p.PeerGone(has) }

func TestPrioritySkip(t *testing.T) {
	for name, picker := range pickers(10) {
		t.Run(name, func(t *testing.T) {
			info := oneBlockInfo(10)
			s := NewScheduler(info, picker(), 4)
			skip := []int{0, 3, 4, 9}
			s.SetPriorities(func(i int) Priority {
				if slices.Contains(skip, i) {
					return PrioritySkip
				}
				return PriorityNormal
			})
			if st := s.Stats(); st.Total != info.Length || st.Wanted != 6*wire.BlockSize || st.Left() != 6*wire.BlockSize {
				t.Fatalf("Stats() = total %d, wanted %d, left %d; want %d, %d, %d", st.Total, st.Wanted, st.Left(), info.Length, 6*wire.BlockSize, 6*wire.BlockSize)
			}
			if s.Interesting(bits(10, 0, 3, 9)) {
				t.Error("Interesting(a peer with only skipped pieces) = true")
			}
			if !s.Interesting(bits(10, 0, 5)) {
				t.Error("Interesting(a peer with piece 5) = false")
			}
			got := download(s, peerAt(1), allPieces(10))
			if !sameSet(got, 1, 2, 5, 6, 7, 8) {
				t.Fatalf("pieces fetched: %v, want 1, 2, 5, 6, 7, 8 (0, 3, 4, 9 skipped)", got)
			}
			if !s.IsComplete() {
				t.Fatal("IsComplete() = false once every wanted piece is done")
			}
			select {
			case <-s.Complete():
			default:
				t.Fatal("Complete() not closed once every wanted piece is done")
			}
			if st := s.Stats(); st.Left() != 0 || st.Verified != 6*wire.BlockSize || st.Pieces != 6 {
				t.Errorf("Stats() = left %d, verified %d, pieces %d; want 0, %d, 6", st.Left(), st.Verified, st.Pieces, 6*wire.BlockSize)
			}
		})
	}
}

// TestPriorityHighBeforeRarer: a high piece goes before normal ones however much rarer
// they are, high pieces in index order; the picker's order resumes after them.
func TestPriorityHighBeforeRarer(t *testing.T) {
	info := oneBlockInfo(8)
	s := NewScheduler(info, NewRarest(8, 3), 16)
	// Piece i is held by i+1 peers: 0 is the rarest, 7 the most common.
	for i := range 8 {
		for range i + 1 {
			s.PeerHas(i)
		}
	}
	s.SetPriority(6, PriorityHigh)
	s.SetPriority(5, PriorityHigh)
	s.SetPriority(7, PriorityHigh)
	s.SetPriority(7, PriorityNormal) // and back
	got := download(s, peerAt(1), allPieces(8))
	if want := []int{5, 6, 0, 1, 2, 3, 4, 7}; !slices.Equal(got, want) {
		t.Fatalf("pieces in order %v, want %v: the high ones by index, then rarest first", got, want)
	}
}

// TestPriorityNow: a now piece is started first, past the cap on pieces in progress, and
// its blocks go to any peer that has it, even when another one was assigned it.
func TestPriorityNow(t *testing.T) {
	info := testInfo() // 4 pieces of 3, 3, 3 and 2 blocks
	s := NewScheduler(info, NewSequential(4), 1)
	a, b := peerAt(1), peerAt(2)
	has := allPieces(4)
	if got := s.Next(a, has, 1, never, nil); len(got) != 1 || got[0].Piece != 0 {
		t.Fatalf("Next(a) = %v, want a block of piece 0", got)
	}
	// The cap (1) is reached: without priorities, b would get more of piece 0 only.
	s.SetPriority(2, PriorityNow)
	got := s.Next(b, has, 2, never, nil)
	if len(got) != 2 || got[0] != (BlockReq{2, 0, wire.BlockSize}) || got[1] != (BlockReq{2, wire.BlockSize, wire.BlockSize}) {
		t.Fatalf("Next(b, 2) after piece 2 went now = %v, want its first two blocks", got)
	}
	// Piece 2 is b's now, but a takes its last block before going on with its own piece.
	got = s.Next(a, has, 2, never, nil)
	if len(got) != 2 || got[0] != (BlockReq{2, 2 * wire.BlockSize, 8 << 10}) || got[1].Piece != 0 {
		t.Fatalf("Next(a, 2) = %v, want the last block of piece 2, then one of piece 0", got)
	}
	// A peer without the now piece gets normal work.
	if got := s.Next(peerAt(3), bits(4, 0, 1), 1, never, nil); len(got) != 1 || got[0].Piece != 0 {
		t.Fatalf("Next(a peer without piece 2) = %v, want a block of piece 0", got)
	}
}

// TestPriorityChangedMidDownload: a skipped piece wanted again is fetched, with every
// picker (they had forgotten it); a piece skipped while in progress is asked no more, and
// once wanted again goes on with the blocks it had.
func TestPriorityChangedMidDownload(t *testing.T) {
	for name, picker := range pickers(6) {
		t.Run(name, func(t *testing.T) {
			info := oneBlockInfo(6)
			s := NewScheduler(info, picker(), 8)
			s.SetPriority(2, PrioritySkip)
			s.SetPriority(4, PrioritySkip)
			p := peerAt(1)
			if got := download(s, p, allPieces(6)); !sameSet(got, 0, 1, 3, 5) {
				t.Fatalf("first pass fetched %v, want 0, 1, 3, 5", got)
			}
			first := s.Complete()
			if !s.IsComplete() {
				t.Fatal("not complete with pieces 2 and 4 skipped")
			}
			s.SetPriority(4, PriorityNormal)
			if s.IsComplete() || s.Complete() == first {
				t.Fatal("still complete after piece 4 is wanted again; want a new Complete channel")
			}
			select {
			case <-first:
			default:
				t.Fatal("the first Complete channel was reopened")
			}
			if got := download(s, p, allPieces(6)); !slices.Equal(got, []int{4}) {
				t.Fatalf("second pass fetched %v, want 4", got)
			}
			if !s.IsComplete() || s.Stats().Left() != 0 {
				t.Fatal("not complete once piece 4 is done")
			}
		})
	}
}

func TestPrioritySkipInProgress(t *testing.T) {
	info := testInfo() // 4 pieces of 3, 3, 3 and 2 blocks
	s := NewScheduler(info, NewSequential(4), 2)
	a, b := peerAt(1), peerAt(2)
	has := allPieces(4)
	reqs := s.Next(a, has, 2, never, nil) // blocks 0 and 1 of piece 0
	if len(reqs) != 2 || reqs[1].Piece != 0 {
		t.Fatalf("Next(a, 2) = %v, want two blocks of piece 0", reqs)
	}
	s.SetPriority(0, PrioritySkip)
	// The blocks already asked for are still taken; nothing more of piece 0 is asked.
	if !s.Received(a, reqs[0]) {
		t.Fatal("Received(a block of a piece skipped in progress) = false, want true")
	}
	var asked []BlockReq
	for _, p := range []*Peer{a, b} {
		asked = s.Next(p, has, 20, never, asked)
	}
	for _, r := range asked {
		if r.Piece == 0 {
			t.Fatalf("requests after piece 0 was skipped include %v", r)
		}
	}
	// It no longer counts against the cap of 2: pieces 1 and 2 are both in progress.
	if !slices.ContainsFunc(asked, func(r BlockReq) bool { return r.Piece == 2 }) {
		t.Fatalf("requests = %v, want piece 2 started beside 1", asked)
	}
	// Wanted again, piece 0 goes on from where it was: only block 2 is left to ask for
	// (block 1 is still pending at a, and arrives).
	s.SetPriority(0, PriorityHigh)
	s.Received(a, reqs[1])
	got := s.Next(b, has, 3, never, nil)
	if len(got) != 1 || got[0] != (BlockReq{0, 2 * wire.BlockSize, 8 << 10}) {
		t.Fatalf("Next(b) after piece 0 is wanted again = %v, want its last block only", got)
	}
}

// TestPriorityCompletionFollowsWanted: skipping the last missing pieces completes the
// download without them; Left and Wanted follow.
func TestPriorityCompletionFollowsWanted(t *testing.T) {
	info := oneBlockInfo(4)
	s := NewScheduler(info, NewRarest(4, 1), 4)
	p := peerAt(1)
	s.MarkDone(0)
	s.MarkDone(1)
	if s.IsComplete() {
		t.Fatal("complete with 2 of 4 pieces")
	}
	reqs := s.Next(p, allPieces(4), 1, never, nil) // piece 2 or 3 in progress
	if len(reqs) != 1 {
		t.Fatalf("Next = %v, want one block", reqs)
	}
	s.SetPriority(1, PrioritySkip) // done already: counts neither as wanted nor as done
	if st := s.Stats(); st.Wanted != 3*wire.BlockSize || st.Left() != 2*wire.BlockSize {
		t.Fatalf("Stats() = wanted %d, left %d; want %d, %d", st.Wanted, st.Left(), 3*wire.BlockSize, 2*wire.BlockSize)
	}
	s.SetPriorities(func(i int) Priority { return PrioritySkip * Priority(btoi(i >= 2)) })
	if !s.IsComplete() {
		t.Fatal("not complete with every missing piece skipped")
	}
	if st := s.Stats(); st.Wanted != 2*wire.BlockSize || st.Left() != 0 || st.Pieces != 2 {
		t.Fatalf("Stats() = wanted %d, left %d, pieces %d; want %d, 0, 2", st.Wanted, st.Left(), st.Pieces, 2*wire.BlockSize)
	}
	if got := s.Next(peerAt(2), allPieces(4), 4, never, nil); len(got) != 0 {
		t.Fatalf("Next with every missing piece skipped = %v, want nothing (not even endgame)", got)
	}
	// The block already requested still arrives and its piece is verified: it is had,
	// but not wanted, and completion stands.
	s.Received(p, reqs[0])
	s.PieceDone(reqs[0].Piece)
	if st := s.Stats(); !s.IsComplete() || st.Pieces != 3 || st.Left() != 0 {
		t.Fatalf("after an unwanted piece is done: complete %v, pieces %d, left %d", s.IsComplete(), st.Pieces, st.Left())
	}
}

func TestPickerRequeue(t *testing.T) {
	has := allPieces(6)
	for name, picker := range pickers(6) {
		p, ok := picker().(Requeuer)
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			pk := p.(Picker)
			rejected := func(i int) bool { return i != 2 && i != 3 }
			var first []int
			for {
				i, ok := pk.Pick(has, func(i int) bool { return rejected(i) && !slices.Contains(first, i) })
				if !ok {
					break
				}
				first = append(first, i)
			}
			if !sameSet(first, 0, 1, 4, 5) {
				t.Fatalf("picks %v, want 0, 1, 4, 5", first)
			}
			// 2 comes back once, however often it is requeued; 3 stays forgotten.
			p.Requeue(2)
			p.Requeue(2)
			var again []int
			for {
				i, ok := pk.Pick(has, func(i int) bool { return i <= 3 && !slices.Contains(again, i) })
				if !ok {
					break
				}
				again = append(again, i)
			}
			if name != "sequential" && !slices.Equal(again, []int{2}) {
				t.Fatalf("after Requeue(2): picks %v, want 2", again)
			}
			if name == "sequential" && !slices.Equal(again, []int{2, 3}) { // its cursor goes back to 2
				t.Fatalf("after Requeue(2): picks %v, want 2, 3", again)
			}
		})
	}
}
