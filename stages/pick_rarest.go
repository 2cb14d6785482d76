package stages

import (
	"math/rand/v2"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// Rarest is the rarest-first Picker (BEP 3's recommendation, as libtorrent does it): among
// the pieces the peer has and we want, the one the fewest connected peers hold, with ties
// broken at random. At the start every piece is equally rare, so the first pieces are
// random, which spreads a new swarm's pieces; later, rare pieces are fetched before the
// peers holding them leave.
type Rarest struct {
	avail []int
	rand  *rand.Rand
}

var _ Picker = (*Rarest)(nil)

// NewRarest returns a rarest-first picker over numPieces pieces; seed makes its tie-breaking
// reproducible (experiments, the simulator).
func NewRarest(numPieces int, seed uint64) *Rarest {
	return &Rarest{avail: make([]int, numPieces), rand: rand.New(rand.NewPCG(seed, seed+1))}
}

// Pick returns the rarest piece that has and want accept; ties are broken uniformly at
// random (reservoir sampling over the ties, in one pass).
func (r *Rarest) Pick(has wire.Bitfield, want func(int) bool) (int, bool) {
	best, bestAvail, ties := -1, 0, 0
	for i, a := range r.avail {
		if !has.Has(i) || !want(i) {
			continue
		}
		switch {
		case best < 0 || a < bestAvail:
			best, bestAvail, ties = i, a, 1
		case a == bestAvail:
			ties++
			if r.rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return best, best >= 0
}

// PeerHas counts one more holder of piece.
func (r *Rarest) PeerHas(piece int) {
	if piece >= 0 && piece < len(r.avail) {
		r.avail[piece]++
	}
}

// PeerGone forgets a peer's pieces.
func (r *Rarest) PeerGone(has wire.Bitfield) {
	for i := range r.avail {
		if has.Has(i) && r.avail[i] > 0 {
			r.avail[i]--
		}
	}
}

// Random picks uniformly among the pieces the peer has and we want: a baseline for
// experiments.
type Random struct {
	n    int
	rand *rand.Rand
}

var _ Picker = (*Random)(nil)

// NewRandom returns a random picker over numPieces pieces.
func NewRandom(numPieces int, seed uint64) *Random {
	return &Random{n: numPieces, rand: rand.New(rand.NewPCG(seed, seed+1))}
}

// Pick returns a uniformly random piece that has and want accept.
func (r *Random) Pick(has wire.Bitfield, want func(int) bool) (int, bool) {
	pick, seen := -1, 0
	for i := range r.n {
		if has.Has(i) && want(i) {
			seen++
			if r.rand.IntN(seen) == 0 {
				pick = i
			}
		}
	}
	return pick, pick >= 0
}

// PeerHas is a no-op.
func (r *Random) PeerHas(int) {}

// PeerGone is a no-op.
func (r *Random) PeerGone(wire.Bitfield) {}
