package stages

import (
	"net/netip"
	"testing"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/wire"
)

// testInfo is a torrent of 3 pieces of 40 KiB (3 blocks each, the last 8 KiB) and a short
// last piece of 20 KiB (2 blocks).
func testInfo() *metainfo.Info {
	return &metainfo.Info{Name: "t", PieceLength: 40 << 10, Length: 3*(40<<10) + 20<<10, Pieces: make([]byte, 4*20)}
}

func allPieces(n int) wire.Bitfield {
	bf := wire.NewBitfield(n)
	for i := range n {
		bf.Set(i)
	}
	return bf
}

func never(BlockReq) bool { return false }

func TestSchedulerNextAssignsWholePiecesToOnePeer(t *testing.T) {
	info := testInfo()
	s := NewScheduler(info, NewSequential(info.NumPieces()), 8)
	a, b := NewPeer(netip.MustParseAddrPort("127.0.0.1:1")), NewPeer(netip.MustParseAddrPort("127.0.0.1:2"))
	has := allPieces(4)
	got := s.Next(a, has, 2, never, nil)
	want := []BlockReq{{0, 0, 16384}, {0, 16384, 16384}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Next(a, 2) = %v, want %v", got, want)
	}
	// b does not take a's piece while a new one is available.
	got = s.Next(b, has, 1, never, nil)
	if len(got) != 1 || got[0].Piece != 1 {
		t.Fatalf("Next(b, 1) = %v, want a block of piece 1", got)
	}
	// a finishes its piece first: the last block is short.
	got = s.Next(a, has, 1, never, nil)
	if len(got) != 1 || got[0] != (BlockReq{0, 32768, 8192}) {
		t.Fatalf("Next(a, 1) = %v, want the 8 KiB tail of piece 0", got)
	}
}

func TestSchedulerReleaseAndReceive(t *testing.T) {
	info := testInfo()
	s := NewScheduler(info, NewSequential(info.NumPieces()), 1)
	a, b := NewPeer(netip.MustParseAddrPort("127.0.0.1:1")), NewPeer(netip.MustParseAddrPort("127.0.0.1:2"))
	has := allPieces(4)
	reqs := s.Next(a, has, 3, never, nil)
	if len(reqs) != 3 {
		t.Fatalf("Next(a, 3) = %v, want the 3 blocks of piece 0", reqs)
	}
	// maxActive is 1 and every block is requested: b is starved.
	if got := s.Next(b, has, 3, never, nil); len(got) != 0 {
		t.Fatalf("Next(b) = %v, want nothing (endgame needs every piece started)", got)
	}
	if !s.Received(a, reqs[0]) {
		t.Fatal("Received(first block) = false, want true")
	}
	if s.Received(a, reqs[0]) {
		t.Fatal("Received(same block again) = true, want false (duplicate)")
	}
	// a chokes us: its two other requests go back, and b was kicked to take them.
	s.Release(a, reqs[1:])
	select {
	case <-b.Kicked():
	default:
		t.Fatal("starved peer b was not kicked after a release")
	}
	got := s.Next(b, has, 3, never, nil)
	if len(got) != 2 || got[0] != reqs[1] || got[1] != reqs[2] {
		t.Fatalf("Next(b) after release = %v, want %v", got, reqs[1:])
	}
}

func TestSchedulerFailedPieceBlameAndBan(t *testing.T) {
	info := testInfo()
	s := NewScheduler(info, NewSequential(info.NumPieces()), 8)
	bad := NewPeer(netip.MustParseAddrPort("127.0.0.1:1"))
	good := NewPeer(netip.MustParseAddrPort("127.0.0.1:2"))
	has := allPieces(4)
	for round := 1; round <= 2; round++ {
		reqs := s.Next(bad, has, 3, never, nil)
		for _, r := range reqs {
			s.Received(bad, r)
		}
		banned := s.PieceFailed(reqs[0].Piece, []*Peer{bad})
		if round == 1 && (len(banned) != 0 || bad.Banned()) {
			t.Fatalf("round 1: banned = %v, want nobody yet", banned)
		}
		if round == 2 && (len(banned) != 1 || !bad.Banned() || !s.Banned(bad.Addr)) {
			t.Fatalf("round 2: banned = %v, want the bad peer", banned)
		}
	}
	// The failed pieces are fetched again, and the good peer gets them first.
	got := s.Next(good, has, 3, never, nil)
	if len(got) != 3 || got[0].Piece != 0 {
		t.Fatalf("Next(good) = %v, want the blocks of failed piece 0", got)
	}
	if st := s.Stats(); st.Wasted != 2*(40<<10) {
		t.Errorf("Stats().Wasted = %d, want %d", st.Wasted, 2*(40<<10))
	}
}

func TestSchedulerEndgameAndCompletion(t *testing.T) {
	info := testInfo()
	s := NewScheduler(info, NewSequential(info.NumPieces()), 8)
	a, b := NewPeer(netip.MustParseAddrPort("127.0.0.1:1")), NewPeer(netip.MustParseAddrPort("127.0.0.1:2"))
	has := allPieces(4)
	reqs := s.Next(a, has, 100, never, nil)
	if len(reqs) != 11 {
		t.Fatalf("Next(a, 100) = %d blocks, want all 11", len(reqs))
	}
	pendingA := make(map[BlockReq]bool)
	for _, r := range reqs {
		pendingA[r] = true
	}
	dup := s.Next(b, has, 100, func(r BlockReq) bool { return false }, nil)
	if len(dup) != 11 {
		t.Fatalf("endgame Next(b) = %d blocks, want 11 duplicates", len(dup))
	}
	if again := s.Next(b, has, 100, func(r BlockReq) bool { return true }, nil); len(again) != 0 {
		t.Fatalf("third request for a block: got %v, want none (at most two per block)", again)
	}
	for _, r := range reqs {
		if !s.Received(a, r) {
			t.Fatalf("Received(a, %v) = false", r)
		}
		if c := b.takeCancels(nil); len(c) != 1 || c[0] != r {
			t.Fatalf("after a delivered %v, b must cancel it; b's cancels = %v", r, c)
		}
		if s.Received(b, r) {
			t.Fatalf("duplicate Received(b, %v) = true, want false", r)
		}
	}
	if c := a.takeCancels(nil); len(c) != 0 {
		t.Fatalf("a delivered every block first but was asked to cancel %v", c)
	}
	for i := range 4 {
		select {
		case <-s.Complete():
			t.Fatalf("complete before piece %d was done", i)
		default:
		}
		s.PieceDone(i)
	}
	select {
	case <-s.Complete():
	default:
		t.Fatal("not complete after every piece was done")
	}
	if st := s.Stats(); st.Verified != info.Length || st.Left() != 0 || st.Pieces != 4 {
		t.Errorf("Stats() = %+v, want everything verified", st)
	}
}

// A block counted as received whose hand-off to assembly was abandoned is wanted again.
func TestSchedulerLostBlockIsRequestedAgain(t *testing.T) {
	info := testInfo()
	s := NewScheduler(info, NewSequential(info.NumPieces()), 1)
	a, b := NewPeer(netip.MustParseAddrPort("127.0.0.1:1")), NewPeer(netip.MustParseAddrPort("127.0.0.1:2"))
	has := allPieces(4)
	reqs := s.Next(a, has, 3, never, nil)
	for _, r := range reqs {
		if !s.Received(a, r) {
			t.Fatalf("Received(%v) = false, want true", r)
		}
	}
	down := s.Stats().Downloaded
	s.Lost(reqs[1])
	if got := s.Stats().Downloaded; got != down-int64(reqs[1].Length) {
		t.Errorf("downloaded after Lost = %d, want %d", got, down-int64(reqs[1].Length))
	}
	got := s.Next(b, has, 3, never, nil)
	if len(got) != 1 || got[0] != reqs[1] {
		t.Fatalf("Next(b) after Lost = %v, want [%v]", got, reqs[1])
	}
	// Lost twice, or for a block never received, changes nothing.
	s.Lost(reqs[1])
	s.Lost(BlockReq{Piece: 3, Begin: 0, Length: 16384})
	if !s.Received(b, reqs[1]) {
		t.Fatal("Received of the re-requested block = false, want true")
	}
}

// A banned peer stays banned from another port: by IP, except on loopback where a whole
// swarm shares one address.
func TestSchedulerBanByIP(t *testing.T) {
	info := testInfo()
	s := NewScheduler(info, NewSequential(info.NumPieces()), 8)
	remote := NewPeer(netip.MustParseAddrPort("192.0.2.7:6881"))
	local := NewPeer(netip.MustParseAddrPort("127.0.0.1:6881"))
	has := allPieces(4)
	for _, bad := range []*Peer{remote, local} {
		for range 2 {
			reqs := s.Next(bad, has, 3, never, nil)
			for _, r := range reqs {
				s.Received(bad, r)
			}
			s.PieceFailed(reqs[0].Piece, []*Peer{bad})
		}
		if !bad.Banned() {
			t.Fatalf("%v not banned after two bad pieces", bad.Addr)
		}
	}
	for addr, want := range map[string]bool{
		"192.0.2.7:6881":  true,
		"192.0.2.7:51413": true, // the same host from another port
		"192.0.2.8:6881":  false,
		"127.0.0.1:6881":  true,
		"127.0.0.1:51413": false, // loopback: another peer of a local swarm
	} {
		if got := s.Banned(netip.MustParseAddrPort(addr)); got != want {
			t.Errorf("Banned(%s) = %v, want %v", addr, got, want)
		}
	}
}
