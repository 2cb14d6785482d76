package stages

import (
	"slices"
	"testing"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// drain picks until nothing is left, each piece picked becoming unwanted (as it does in the
// Scheduler once started), and returns the picks in order.
func drain(p Picker, has wire.Bitfield) []int {
	var picked []int
	for {
		i, ok := p.Pick(has, func(i int) bool { return !slices.Contains(picked, i) })
		if !ok {
			return picked
		}
		picked = append(picked, i)
	}
}

func bits(n int, set ...int) wire.Bitfield {
	bf := wire.NewBitfield(n)
	for _, i := range set {
		bf.Set(i)
	}
	return bf
}

func TestRarestPicksTheRarestWantedPiece(t *testing.T) {
	// availability: piece 0..5 held by 3, 1, 2, 1, 0, 2 peers; the peer has all but 4.
	avail := []int{3, 1, 2, 1, 0, 2}
	has := bits(6, 0, 1, 2, 3, 5)
	firsts := map[int]bool{}
	for seed := range uint64(40) {
		r := NewRarest(6, seed)
		for i, n := range avail {
			for range n {
				r.PeerHas(i)
			}
		}
		got := drain(r, has)
		// Rarest first: {1, 3} in some order, then {2, 5}, then 0; never 4.
		if len(got) != 5 || !sameSet(got[:2], 1, 3) || !sameSet(got[2:4], 2, 5) || got[4] != 0 {
			t.Fatalf("seed %d: picks in order %v, want 1 and 3, then 2 and 5, then 0", seed, got)
		}
		firsts[got[0]] = true
	}
	if !firsts[1] || !firsts[3] {
		t.Errorf("first picks over 40 seeds = %v, want ties broken both ways", firsts)
	}
	// A peer holding pieces 1 and 3 leaves: 3 is then held by nobody else, the rarest.
	r := NewRarest(6, 1)
	for i, n := range avail {
		for range n {
			r.PeerHas(i)
		}
	}
	r.PeerGone(bits(6, 1, 3))
	if i, _ := r.Pick(has, func(i int) bool { return i != 1 }); i != 3 {
		t.Fatalf("Pick = %d, want 3", i)
	}
	if _, ok := r.Pick(has, func(int) bool { return false }); ok {
		t.Fatal("Pick returned a piece nobody wants")
	}
}

func sameSet(got []int, want ...int) bool {
	return len(got) == len(want) && !slices.ContainsFunc(got, func(i int) bool { return !slices.Contains(want, i) }) &&
		!slices.ContainsFunc(want, func(i int) bool { return !slices.Contains(got, i) })
}

func TestSequentialAndRandomPickers(t *testing.T) {
	has := bits(10, 4, 7, 8)
	if got := drain(NewSequential(10), has); !slices.Equal(got, []int{4, 7, 8}) {
		t.Fatalf("Sequential picks %v, want 4, 7, 8", got)
	}
	if i, ok := NewSequential(10).Pick(has, func(i int) bool { return i != 4 }); !ok || i != 7 {
		t.Fatalf("Sequential.Pick = %d, %v; want 7", i, ok)
	}
	firsts := map[int]bool{}
	for seed := range uint64(40) {
		got := drain(NewRandom(10, seed), has)
		if !sameSet(got, 4, 7, 8) {
			t.Fatalf("seed %d: Random picks %v, want 4, 7 and 8 once each", seed, got)
		}
		firsts[got[0]] = true
	}
	if len(firsts) != 3 {
		t.Errorf("Random's first picks over 40 seeds = %v, want each of 4, 7 and 8", firsts)
	}
}

// BenchmarkRarestPick is a whole download's worth of picks from one seeder (every piece
// equally rare): each pick starts the piece, as in the Scheduler.
func BenchmarkRarestPick(b *testing.B) {
	const n = 16384 // 4 GiB in 256 KiB pieces
	has := wire.NewBitfield(n)
	for i := range n {
		has.Set(i)
	}
	for b.Loop() {
		r := NewRarest(n, 1)
		for i := range n {
			r.PeerHas(i)
		}
		started := wire.NewBitfield(n)
		for range n {
			i, _ := r.Pick(has, func(i int) bool { return !started.Has(i) })
			started.Set(i)
		}
	}
}
