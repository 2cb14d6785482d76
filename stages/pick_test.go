package stages

import (
	"testing"

	"github.com/bitstorm/bitstorm/internal/wire"
)

func TestRarestPicksTheRarestWantedPiece(t *testing.T) {
	r := NewRarest(6, 1)
	// availability: piece 0..5 held by 3, 1, 2, 1, 0, 2 peers
	for i, n := range []int{3, 1, 2, 1, 0, 2} {
		for range n {
			r.PeerHas(i)
		}
	}
	has := wire.NewBitfield(6)
	for _, i := range []int{0, 1, 2, 3, 5} {
		has.Set(i)
	}
	seen := map[int]int{}
	for range 200 {
		i, ok := r.Pick(has, func(i int) bool { return true })
		if !ok {
			t.Fatal("Pick found nothing")
		}
		seen[i]++
	}
	if len(seen) != 2 || seen[1] == 0 || seen[3] == 0 {
		t.Fatalf("picks = %v, want only pieces 1 and 3 (the rarest the peer has), both chosen", seen)
	}
	// piece 1 is no longer wanted; a peer holding pieces 1 and 3 leaves.
	gone := wire.NewBitfield(6)
	gone.Set(1)
	gone.Set(3)
	r.PeerGone(gone)
	if i, _ := r.Pick(has, func(i int) bool { return i != 1 }); i != 3 {
		t.Fatalf("Pick = %d, want 3 (now held by nobody else)", i)
	}
	if _, ok := r.Pick(has, func(int) bool { return false }); ok {
		t.Fatal("Pick returned a piece nobody wants")
	}
}

func TestSequentialAndRandomPickers(t *testing.T) {
	has := wire.NewBitfield(10)
	has.Set(4)
	has.Set(7)
	if i, ok := NewSequential(10).Pick(has, func(i int) bool { return i != 4 }); !ok || i != 7 {
		t.Fatalf("Sequential.Pick = %d, %v; want 7", i, ok)
	}
	r := NewRandom(10, 3)
	seen := map[int]bool{}
	for range 100 {
		i, _ := r.Pick(has, func(int) bool { return true })
		seen[i] = true
	}
	if len(seen) != 2 || !seen[4] || !seen[7] {
		t.Fatalf("Random picks = %v, want both 4 and 7 and nothing else", seen)
	}
}
