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
	order shuffled
}

var (
	_ Picker   = (*Rarest)(nil)
	_ Requeuer = (*Rarest)(nil)
)

// NewRarest returns a rarest-first picker over numPieces pieces; seed makes its tie-breaking
// reproducible (experiments, the simulator).
func NewRarest(numPieces int, seed uint64) *Rarest {
	return &Rarest{avail: make([]int, numPieces), order: newShuffled(numPieces, seed)}
}

// Pick returns the rarest piece that has and want accept. Ties go to the piece first in a
// random order drawn once (as libtorrent orders pieces of equal availability), which costs
// no random draw per piece. A piece the peer has is held by one peer at least, so the
// first one held by just one is the answer: with one seeder, or early in a swarm, a pick
// takes a step or two instead of a pass over every piece.
func (r *Rarest) Pick(has wire.Bitfield, want func(int) bool) (int, bool) {
	best, bestAvail := -1, 0
	r.order.scan(want, func(i int) bool {
		if !has.Has(i) {
			return true
		}
		if a := r.avail[i]; best < 0 || a < bestAvail {
			best, bestAvail = i, a
		}
		return bestAvail > 1
	})
	return best, best >= 0
}

// Requeue takes back a piece wanted again (a skipped one, see Requeuer).
func (r *Rarest) Requeue(piece int) { r.order.requeue(piece) }

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

// Random picks at random among the pieces the peer has and we want: a baseline for
// experiments.
type Random struct {
	order shuffled
}

var (
	_ Picker   = (*Random)(nil)
	_ Requeuer = (*Random)(nil)
)

// NewRandom returns a random picker over numPieces pieces.
func NewRandom(numPieces int, seed uint64) *Random {
	return &Random{order: newShuffled(numPieces, seed)}
}

// Pick returns the first piece that has and want accept in a random order drawn once.
func (r *Random) Pick(has wire.Bitfield, want func(int) bool) (int, bool) {
	pick := -1
	r.order.scan(want, func(i int) bool {
		if has.Has(i) {
			pick = i
			return false
		}
		return true
	})
	return pick, pick >= 0
}

// Requeue takes back a piece wanted again (a skipped one, see Requeuer).
func (r *Random) Requeue(piece int) { r.order.requeue(piece) }

// shuffled holds the pieces in a random order drawn once, less those that want rejected:
// they are rejected for good (see Picker), and a scan drops them as it passes, unless
// requeued.
type shuffled struct {
	order []int32
	in    wire.Bitfield // the pieces in order
	rng   *rand.Rand
}

func newShuffled(n int, seed uint64) shuffled {
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	rng := rand.New(rand.NewPCG(seed, seed+1))
	rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	in := wire.NewBitfield(n)
	for i := range n {
		in.Set(i)
	}
	return shuffled{order: order, in: in, rng: rng}
}

// requeue puts piece back at a random place in the order, unless it is there still.
func (s *shuffled) requeue(piece int) {
	if piece < 0 || piece >= len(s.in)*8 || s.in.Has(piece) {
		return
	}
	s.in.Set(piece)
	s.order = append(s.order, int32(piece))
	j := s.rng.IntN(len(s.order))
	s.order[j], s.order[len(s.order)-1] = s.order[len(s.order)-1], s.order[j]
}

// scan calls f with each piece want accepts, in order, until f returns false.
func (s *shuffled) scan(want func(int) bool, f func(int) bool) {
	w := 0
	for k, i := range s.order {
		if !want(int(i)) {
			s.in.Clear(int(i))
			continue
		}
		s.order[w] = i
		w++
		if !f(int(i)) {
			if w == k+1 { // nothing dropped: the order is as it was
				return
			}
			w += copy(s.order[w:], s.order[k+1:])
			break
		}
	}
	s.order = s.order[:w]
}

// PeerHas is a no-op.
func (r *Random) PeerHas(int) {}

// PeerGone is a no-op.
func (r *Random) PeerGone(wire.Bitfield) {}
